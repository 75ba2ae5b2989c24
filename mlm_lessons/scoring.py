"""Scoring sentences: what an MLM does well (chapter 9).

A masked LM gives no probability of a whole sentence, but it can score one. The *pseudo-log-
likelihood* (Salazar et al. 2020) masks each piece in turn and adds up the log-probability the
model gives the true piece from everything else::

    PLL(W) = Σ_t log P(w_t | W without w_t)

– one forward pass per piece, all of them batched. A causal model scores the same pieces from the
left only: Σ_t log P(w_t | w_<t), a true log-likelihood. :func:`minimal_pairs` makes the test:
a sentence against itself with two neighbouring words swapped; a good scorer prefers the original.
"""

from __future__ import annotations

import random
import re
from typing import Sequence

import torch

from .masking import pad_examples
from .model import CausalLM, MaskedLM, eval_mode

__all__ = ["pseudo_log_likelihood", "pll_of_ids", "causal_log_likelihood", "sentences", "minimal_pairs", "pair_accuracy"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def sentences(texts: Sequence[str]) -> list[str]:
    """The sentences of ``texts``: split after ``.``, ``!`` or ``?`` followed by space and a capital."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of str; wrap a single text: [text]")
    return [s.strip() for t in texts for s in _SENTENCE_END.split(" ".join(t.split())) if s.strip()]


def _encode(model, tokenizer, texts) -> list[list[int]]:
    if isinstance(texts, str):
        raise ValueError("texts must be a list of str; wrap a single text: [text]")
    out = []
    for i, t in enumerate(texts):
        ids = tokenizer.encode(t)
        if len(ids) > model.config.max_len:
            raise ValueError(f"text {i} has {len(ids)} pieces with [CLS]/[SEP], more than max_len={model.config.max_len}; shorten it")
        if len(ids) < 3:
            raise ValueError(f"text {i} ({t!r}) has no piece to score")
        out.append(ids)
    return out


@torch.no_grad()
def pseudo_log_likelihood(model: MaskedLM, tokenizer, texts: Sequence[str], *, batch_size: int = 128) -> list[float]:
    """The PLL of each text: for every piece between ``[CLS]`` and ``[SEP]``, a copy of the text
    with that piece masked; the log-probability of the piece there, summed per text (nats)."""
    if not isinstance(model, MaskedLM) or isinstance(model, CausalLM):
        raise ValueError("pseudo_log_likelihood needs a bidirectional MaskedLM; score a causal model with causal_log_likelihood")
    return pll_of_ids(model, _encode(model, tokenizer, texts), mask_id=tokenizer.mask_id, pad_id=tokenizer.pad_id,
                      batch_size=batch_size)


@eval_mode
@torch.no_grad()
def pll_of_ids(model: MaskedLM, sequences: Sequence[Sequence[int]], *, mask_id: int, pad_id: int, batch_size: int = 128) -> list[float]:
    """:func:`pseudo_log_likelihood` of already encoded sequences (``[CLS] … [SEP]``): the first and
    last ids are not scored."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    encoded = [list(map(int, ids)) for ids in sequences]
    device = next(model.parameters()).device
    copies = [(i, t, ids) for i, ids in enumerate(encoded) for t in range(1, len(ids) - 1)]
    scores = [0.0] * len(encoded)
    for start in range(0, len(copies), batch_size):
        part = copies[start : start + batch_size]
        padded = pad_examples([{"input_ids": ids[:t] + [mask_id] + ids[t + 1 :]} for _, t, ids in part], pad_id=pad_id)
        logits = model(padded["input_ids"].to(device), padded["attention_mask"].to(device)).logits.float()
        rows = torch.arange(len(part), device=device)
        positions = torch.tensor([t for _, t, _ in part], device=device)
        truth = torch.tensor([ids[t] for _, t, ids in part], device=device)
        logp = logits[rows, positions].log_softmax(-1)[rows, truth]
        for (i, _, _), value in zip(part, logp.tolist()):
            scores[i] += value
    return scores


@eval_mode
@torch.no_grad()
def causal_log_likelihood(model: MaskedLM, tokenizer, texts: Sequence[str], *, batch_size: int = 128) -> list[float]:
    """Σ log P(piece | pieces to its left) over the same pieces the PLL scores (those between
    ``[CLS]`` and ``[SEP]``), from a causal model."""
    if not isinstance(model, CausalLM):
        raise ValueError("causal_log_likelihood needs a causal model (a CausalLM); score an MLM with pseudo_log_likelihood")
    encoded = _encode(model, tokenizer, texts)
    device = next(model.parameters()).device
    scores = []
    for start in range(0, len(encoded), batch_size):
        part = encoded[start : start + batch_size]
        padded = pad_examples([{"input_ids": ids} for ids in part], pad_id=tokenizer.pad_id)
        logp = model(padded["input_ids"].to(device), padded["attention_mask"].to(device)).logits.float().log_softmax(-1)
        for row, ids in enumerate(part):
            # the prediction made at t - 1 for each piece t = 1 … n (the piece after [CLS] up to the last before [SEP])
            targets = torch.tensor(ids[1:-1], device=device)
            scores.append(float(logp[row, torch.arange(len(ids) - 2, device=device), targets].sum()))
    return scores


def minimal_pairs(texts: Sequence[str], tokenizer, *, n: int, seed: int = 0, min_words: int = 6, max_words: int = 20) -> list[tuple[str, str]]:
    """``n`` pairs (original, two neighbouring words swapped) from texts of ``min_words`` to
    ``max_words`` words (words as the tokenizer splits them, so both sides have the same pieces).
    Pairs whose swap changes nothing (two equal words) are skipped."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = random.Random(seed)
    candidates = [t for t in texts if min_words <= len(tokenizer.words(t)) <= max_words]
    rng.shuffle(candidates)
    pairs = []
    for text in candidates:
        words = tokenizer.words(text)
        i = rng.randrange(len(words) - 1)
        if words[i] == words[i + 1]:
            continue
        swapped = words[:i] + [words[i + 1], words[i]] + words[i + 2 :]
        pairs.append((" ".join(words), " ".join(swapped)))
        if len(pairs) == n:
            return pairs
    raise ValueError(f"only {len(pairs)} texts of {min_words}–{max_words} words make a pair, {n} were asked for; pass more texts or a smaller n")


def pair_accuracy(original_scores: Sequence[float], altered_scores: Sequence[float]) -> float:
    """Share of pairs whose original scores strictly higher than its altered version."""
    if len(original_scores) != len(altered_scores) or not len(original_scores):
        raise ValueError(f"need two equally long, non-empty lists of scores, got {len(original_scores)} and {len(altered_scores)}")
    return sum(a > b for a, b in zip(original_scores, altered_scores)) / len(original_scores)
