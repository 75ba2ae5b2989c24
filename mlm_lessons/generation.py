"""Generating text with a masked LM (chapter 9), and with a left-to-right model for comparison.

An MLM predicts every masked position *independently* given the visible ones: ask it for two
neighbouring masks at once and it picks the best first piece and the best second piece, each
blind to the other's choice. :func:`mask_predict` (Ghazvininejad et al. 2019) starts from masks
and refines: predict every masked position, re-mask the least confident ones, predict again, with
the number re-masked falling linearly to zero over ``iterations``. :func:`fill_sequentially`
fills one mask at a time, each choice seen by the next. :func:`generate_causal` samples a causal
(left-to-right) model token by token, the way GPT-style models generate.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import torch

from .model import CausalLM, MaskedLM, eval_mode

__all__ = ["remask_schedule", "Generation", "mask_predict", "fill_sequentially", "generate_causal",
           "repetition_rate", "distinct_ngrams", "attested_bigrams", "word_bigrams", "piece_bigrams", "two_mask_test"]


def remask_schedule(n: int, iterations: int) -> list[int]:
    """How many of ``n`` generated positions Mask-Predict masks again after iteration ``t`` = 1 … T:
    ``floor(n · (T − t) / T)``, ending at 0."""
    for name, value in (("n", n), ("iterations", iterations)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "n" else 1):
            raise ValueError(f"{name} must be an int >= {0 if name == 'n' else 1}, got {value!r}")
    return [n * (iterations - t) // iterations for t in range(1, iterations + 1)]


@dataclass
class Generation:
    """A generated sequence: its ids (with ``[CLS]``/``[SEP]``), its text, and – for Mask-Predict and
    sequential filling – every intermediate state, as lists of pieces (``[MASK]`` where masked)."""

    ids: list[int]
    text: str
    steps: list[list[str]] = field(default_factory=list)


def _start(model, tokenizer, start) -> torch.Tensor:
    if not isinstance(model, MaskedLM):
        raise ValueError(f"model must be a MaskedLM, got {type(model).__name__}")
    if isinstance(model, CausalLM):
        raise ValueError("this model is causal: it sees only the left context; use generate_causal")
    if isinstance(start, int) and not isinstance(start, bool):
        if not 1 <= start <= model.config.max_len - 2:
            raise ValueError(f"length must be between 1 and max_len - 2 = {model.config.max_len - 2}, got {start}")
        ids = [tokenizer.cls_id] + [tokenizer.mask_id] * start + [tokenizer.sep_id]
    elif isinstance(start, str):
        if "[MASK]" not in start:
            raise ValueError(f"the text must contain [MASK] where pieces should be generated, got {start!r}")
        ids = tokenizer.encode(start, max_length=model.config.max_len)
    else:
        raise ValueError(f"start must be a length (int) or a text with [MASK]s (str), got {type(start).__name__}")
    return torch.tensor(ids, device=next(model.parameters()).device)


def _pick(logits: torch.Tensor, banned: list[int], temperature: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(piece, its probability) per row; specials are never proposed."""
    logits = logits.float().clone()
    logits[..., banned] = float("-inf")
    probs = logits.softmax(-1)
    if temperature == 0:
        p, tok = probs.max(-1)
        return tok, p
    sampled = torch.multinomial((logits / temperature).softmax(-1).cpu(), 1, generator=generator).squeeze(-1).to(logits.device)
    return sampled, probs.gather(-1, sampled[..., None]).squeeze(-1)


def _check_temperature(temperature) -> None:
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0: always the most likely piece), got {temperature!r}")


def _pieces(tokenizer, ids: torch.Tensor) -> list[str]:
    return [tokenizer.id_to_token(i) for i in ids.tolist()]


@eval_mode
@torch.no_grad()
def mask_predict(model: MaskedLM, tokenizer, start: int | str, *, iterations: int = 10, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> Generation:
    """Mask-Predict: generate ``start`` pieces from all-``[MASK]`` (an int), or fill the ``[MASK]``s
    of a text (a str). Each iteration predicts every masked position at once and keeps, at each,
    the piece and its probability; then the :func:`remask_schedule` count of least probable
    generated pieces is masked again. ``temperature=0`` takes the most likely piece."""
    _check_temperature(temperature)
    remask_schedule(1, iterations)  # validates iterations
    ids = _start(model, tokenizer, start)
    targets = ids == tokenizer.mask_id
    n = int(targets.sum())
    probs = torch.zeros(len(ids), device=ids.device)
    masked = targets.clone()
    banned = sorted(tokenizer.special_ids)
    steps = [_pieces(tokenizer, ids)]
    for count in remask_schedule(n, iterations):
        logits = model(ids[None]).logits[0]
        tok, p = _pick(logits, banned, temperature, generator)
        ids = torch.where(masked, tok, ids)
        probs = torch.where(masked, p, probs)
        steps.append(_pieces(tokenizer, ids))
        if count == 0:
            break
        # the least confident generated pieces go back under [MASK]
        confidence = torch.where(targets, probs, torch.full_like(probs, float("inf")))
        masked = torch.zeros_like(targets)
        masked[confidence.topk(count, largest=False).indices] = True
        ids = torch.where(masked, torch.full_like(ids, tokenizer.mask_id), ids)
        steps.append(_pieces(tokenizer, ids))
    return Generation(ids.tolist(), tokenizer.decode(ids.tolist()), steps)


@eval_mode
@torch.no_grad()
def fill_sequentially(model: MaskedLM, tokenizer, start: int | str, *, order: str = "left-to-right",
                      temperature: float = 0.0, generator: torch.Generator | None = None) -> Generation:
    """Fill the masks one at a time, re-predicting the rest after each choice: ``order=
    "left-to-right"`` takes the leftmost mask, ``"confident"`` the one the model is surest of."""
    if order not in ("left-to-right", "confident"):
        raise ValueError(f"order must be 'left-to-right' or 'confident', got {order!r}")
    _check_temperature(temperature)
    ids = _start(model, tokenizer, start)
    banned = sorted(tokenizer.special_ids)
    steps = [_pieces(tokenizer, ids)]
    while (ids == tokenizer.mask_id).any():
        open_positions = (ids == tokenizer.mask_id).nonzero().flatten()
        tok, p = _pick(model(ids[None]).logits[0][open_positions], banned, temperature, generator)
        k = 0 if order == "left-to-right" else int(p.argmax())
        ids[open_positions[k]] = tok[k]
        steps.append(_pieces(tokenizer, ids))
    return Generation(ids.tolist(), tokenizer.decode(ids.tolist()), steps)


@eval_mode
@torch.no_grad()
def generate_causal(model: MaskedLM, tokenizer, prompt: str = "", *, max_new_tokens: int = 40, temperature: float = 1.0,
                    generator: torch.Generator | None = None) -> Generation:
    """Sample a causal model (a ``CausalLM``) piece by piece after ``[CLS]`` and ``prompt``, until
    ``[SEP]`` or ``max_new_tokens``. ``temperature=0`` takes the most likely piece each time."""
    if not isinstance(model, CausalLM):
        raise ValueError("generate_causal needs a causal model (a CausalLM) trained with objective='causal'")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    _check_temperature(temperature)
    device = next(model.parameters()).device
    ids = [tokenizer.cls_id] + tokenizer.encode(prompt, add_special_tokens=False)
    if len(ids) >= model.config.max_len:
        raise ValueError(f"the prompt has {len(ids) - 1} pieces, which with [CLS] leaves no room below max_len={model.config.max_len}; shorten it")
    banned = sorted(set(tokenizer.special_ids) - {tokenizer.sep_id})
    for _ in range(max_new_tokens):
        if len(ids) >= model.config.max_len:
            break
        logits = model(torch.tensor([ids], device=device)).logits[0, -1]
        tok, _ = _pick(logits, banned, temperature, generator)
        ids.append(int(tok))
        if ids[-1] == tokenizer.sep_id:
            break
    return Generation(ids, tokenizer.decode(ids))


# -- what a generated text looks like -------------------------------------------------------------


def _content(tokenizer, ids) -> list[int]:
    specials = set(tokenizer.special_ids)
    return [i for i in ids if i not in specials]


def repetition_rate(tokenizer, ids) -> float:
    """Share of pieces identical to the piece just before them (specials left out): the stutter of
    parallel decoding ("the the", "tensor tensor")."""
    ids = _content(tokenizer, ids)
    if len(ids) < 2:
        return 0.0
    return sum(a == b for a, b in zip(ids, ids[1:])) / (len(ids) - 1)


def distinct_ngrams(tokenizer, ids, n: int = 2) -> float:
    """Distinct n-grams of pieces over all n-grams (1.0: nothing repeats)."""
    ids = _content(tokenizer, ids)
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def word_bigrams(texts, tokenizer) -> Counter:
    """Counts of adjacent word pairs (as the tokenizer splits words) over ``texts``."""
    counts: Counter = Counter()
    for text in texts:
        words = tokenizer.words(text)
        counts.update(zip(words, words[1:]))
    return counts


def attested_bigrams(text: str, tokenizer, reference: Counter) -> float:
    """Share of the text's adjacent word pairs that occur in ``reference`` (from
    :func:`word_bigrams` over real text): a model-free check of local fluency."""
    words = tokenizer.words(text)
    pairs = list(zip(words, words[1:]))
    if not pairs:
        return 0.0
    return sum(p in reference for p in pairs) / len(pairs)


def piece_bigrams(sequences) -> Counter:
    """Counts of adjacent piece-id pairs over encoded sequences (``{"input_ids": [...]}`` or id lists)."""
    counts: Counter = Counter()
    for seq in sequences:
        ids = seq["input_ids"] if isinstance(seq, dict) else seq
        counts.update(zip(ids, ids[1:]))
    return counts


@eval_mode
@torch.no_grad()
def two_mask_test(model: MaskedLM, tokenizer, texts, *, n: int, reference: Counter, seed: int = 0) -> dict:
    """The independence assumption, measured: in ``n`` texts mask two neighbouring pieces and fill
    them (a) in one pass, each position's most likely piece on its own, and (b) one after the other,
    the left one first and then the right one given it. Returns, for both, the share of pairs
    exactly right and the share of predicted pairs that occur as neighbours in ``reference``
    (:func:`piece_bigrams` of the training data)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(model, CausalLM):
        raise ValueError("two_mask_test needs a bidirectional MaskedLM")
    rng = random.Random(seed)
    candidates = [ids for ids in (tokenizer.encode(t, max_length=model.config.max_len) for t in texts) if len(ids) >= 6]
    if len(candidates) < n:
        raise ValueError(f"only {len(candidates)} texts have 4 pieces or more; pass more texts or a smaller n")
    device = next(model.parameters()).device
    banned = sorted(tokenizer.special_ids)
    tally = {"parallel_right": 0, "sequential_right": 0, "parallel_attested": 0, "sequential_attested": 0}
    for ids in rng.sample(candidates, n):
        t = rng.randrange(1, len(ids) - 2)
        truth = (ids[t], ids[t + 1])
        x = torch.tensor(ids, device=device)
        x[t] = x[t + 1] = tokenizer.mask_id
        first, _ = _pick(model(x[None]).logits[0, t : t + 2], banned, 0.0, None)
        parallel = (int(first[0]), int(first[1]))
        x[t] = parallel[0]  # sequential: keep the left choice, predict the right one again
        second, _ = _pick(model(x[None]).logits[0, t + 1], banned, 0.0, None)
        sequential = (parallel[0], int(second))
        for name, pair in (("parallel", parallel), ("sequential", sequential)):
            tally[f"{name}_right"] += pair == truth
            tally[f"{name}_attested"] += pair in reference
    return {k: v / n for k, v in tally.items()} | {"pairs": n}
