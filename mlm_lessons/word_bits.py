"""Bits per character at masked words: a score two tokenizers can share (chapter 7).

A masked-token loss in nats per piece cannot compare two tokenizers: a piece of one vocabulary
covers more text than a piece of another, and the loss of a long piece is naturally higher. The
remedy is to score the same *text* under both. :func:`choose_words` picks, with a seed and without
looking at any vocabulary, the words to hide in every text (the same words for every tokenizer
given); :func:`masked_word_bits` hides all pieces of those words and asks the model for each word
piece by piece, left to right – the first piece with the whole word hidden, the next with the
first revealed, and so on – so that a word's score is a true log-probability of its spelling,
whatever the number of pieces::

    log P(word | context) = Σ_j log P(piece_j | context, piece_1 … piece_{j-1})

Summed over the hidden words and divided by their characters (``ln 2`` turning nats into bits),
it gives bits per character: lower is better, and the unit is the same for every tokenizer.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

import torch

from .masking import pad_examples
from .model import MaskedLM, eval_mode
from .tokenizer import MLMTokenizer, check_texts

__all__ = ["choose_words", "WordBits", "masked_word_bits", "characters_per_piece"]


def characters_per_piece(tokenizer: MLMTokenizer, texts: Sequence[str]) -> float:
    """How much text one piece holds: the characters of ``texts``' words (after normalisation)
    over their pieces. A row of ``n`` pieces covers about ``n`` times this many characters."""
    texts = check_texts(texts, "texts")
    pieces = sum(len(ids) for ids in tokenizer.piece_ids(texts))
    if not pieces:
        raise ValueError("texts hold no piece to count; give non-empty texts")
    return sum(len(w) for t in texts for w in tokenizer.words(t)) / pieces


def _eligible(word: str) -> bool:
    return any(ch.isalnum() for ch in word)


def choose_words(texts: Sequence[str], tokenizers: Sequence[MLMTokenizer], *, ratio: float = 0.15, seed: int = 0) -> list[list[int]]:
    """For each text, the indices (into ``tokenizer.words(text)``) of the words to hide.

    A word is eligible when it holds a letter or digit and no tokenizer of ``tokenizers`` reads it as
    ``[UNK]`` (an ``[UNK]`` prediction says nothing about the characters). Of the ``n`` eligible
    words of a text, ``max(1, round(ratio * n))`` are drawn (none when ``n`` is 0) by a generator
    seeded with ``seed`` and the text's index, so the choice is the same for every tokenizer. The
    tokenizers must split every text into the same words (same normalisation and pre-tokenizer).
    """
    texts = check_texts(texts, "texts")
    tokenizers = list(tokenizers)
    if not tokenizers or not all(isinstance(t, MLMTokenizer) for t in tokenizers):
        raise ValueError("tokenizers must be a non-empty list of MLMTokenizer (those whose scores will be compared)")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be a share of the words in (0, 1], got {ratio!r}")
    chosen = []
    for i, text in enumerate(texts):
        words = tokenizers[0].words(text)
        for other in tokenizers[1:]:
            if other.words(text) != words:
                raise ValueError(f"text {i} splits into different words under the tokenizers given; compare tokenizers that share "
                                 "normalisation and pre-tokenizer (e.g. both from train_tokenizer with the same lowercase)")
        unknown = set()
        for tok in tokenizers:
            ids, word_ids = tok.piece_ids_with_words(text)
            unknown.update(w for piece, w in zip(ids, word_ids) if piece == tok.unk_id and w is not None)
        eligible = [w for w, word in enumerate(words) if _eligible(word) and w not in unknown]
        k = max(1, round(ratio * len(eligible))) if eligible else 0
        chosen.append(sorted(random.Random(f"{seed}-{i}").sample(eligible, k)))
    return chosen


@dataclass(frozen=True)
class WordBits:
    """What :func:`masked_word_bits` measured: hidden words, their characters and pieces, and the
    summed negative log-probability of their spelling (nats)."""

    words: int
    characters: int
    pieces: int
    nats: float

    @property
    def bits_per_character(self) -> float:
        return self.nats / math.log(2) / self.characters

    @property
    def bits_per_word(self) -> float:
        return self.nats / math.log(2) / self.words

    @property
    def pieces_per_word(self) -> float:
        return self.pieces / self.words

    def as_row(self) -> dict:
        return {"hidden words": self.words, "characters": self.characters, "pieces per word": round(self.pieces_per_word, 3),
                "bits per word": round(self.bits_per_word, 3), "bits per character": round(self.bits_per_character, 4)}


def _windows(ids: list[int], word_ids: list[int | None], budget: int) -> list[tuple[int, int]]:
    """Consecutive spans of at most ``budget`` pieces that end at word boundaries (a word longer
    than ``budget`` is cut), as in :meth:`MLMTokenizer.encode_chunks`."""
    spans, start = [], 0
    while start < len(ids):
        end = min(start + budget, len(ids))
        if end < len(ids) and word_ids[end] is not None and word_ids[end] == word_ids[end - 1]:
            cut = end - 1
            while cut > start and word_ids[cut] == word_ids[cut - 1]:
                cut -= 1
            end = cut if cut > start else end
        spans.append((start, end))
        start = end
    return spans


@eval_mode
@torch.no_grad()
def masked_word_bits(model: MaskedLM, tokenizer: MLMTokenizer, texts: Sequence[str], chosen: Sequence[Sequence[int]], *,
                     max_length: int | None = None, batch_size: int = 64) -> WordBits:
    """Score the words ``chosen`` (from :func:`choose_words`) of ``texts`` with ``model``.

    Each text is cut into windows of ``max_length`` pieces (``[CLS]`` and ``[SEP]`` included; the
    model's ``max_len`` by default) at word boundaries; in every window all pieces of the chosen
    words are replaced by ``[MASK]``, then revealed one piece per word and pass, left to right,
    each piece scored before it is revealed. Other words stay visible.
    """
    if not isinstance(model, MaskedLM):
        raise ValueError(f"masked_word_bits needs a MaskedLM, got {type(model).__name__}")
    texts = check_texts(texts, "texts")
    if len(chosen) != len(texts):
        raise ValueError(f"chosen has {len(chosen)} entries for {len(texts)} texts; pass choose_words(texts, ...) for these texts")
    max_length = model.config.max_len if max_length is None else max_length
    if not isinstance(max_length, int) or not 3 <= max_length <= model.config.max_len:
        raise ValueError(f"max_length must be an int in [3, {model.config.max_len}] (the model's max_len), got {max_length!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    # every pass: (input ids, [(position, target id)])
    passes: list[tuple[list[int], list[tuple[int, int]]]] = []
    n_words = n_chars = n_pieces = 0
    for i, (text, hide) in enumerate(zip(texts, chosen)):
        words = tokenizer.words(text)
        hide = set(hide)
        if any(not isinstance(w, int) or not 0 <= w < len(words) for w in hide):
            raise ValueError(f"chosen[{i}] holds word indices outside 0..{len(words) - 1}; use choose_words with the same texts")
        ids, word_ids = tokenizer.piece_ids_with_words(text)
        present = {w for w in word_ids if w is not None}
        n_words += len(hide & present)
        n_chars += sum(len(words[w]) for w in hide & present)
        for start, end in _windows(ids, word_ids, max_length - 2):
            window = [tokenizer.cls_id] + ids[start:end] + [tokenizer.sep_id]
            owner = [None] + word_ids[start:end] + [None]
            order: dict[int, list[int]] = {}  # word -> its positions in this window, left to right
            for pos, w in enumerate(owner):
                if w is not None and w in hide:
                    order.setdefault(w, []).append(pos)
            if not order:
                continue
            n_pieces += sum(len(p) for p in order.values())
            for j in range(max(len(p) for p in order.values())):
                inputs = list(window)
                targets = []
                for positions in order.values():
                    for rank, pos in enumerate(positions):
                        if rank >= j:
                            inputs[pos] = tokenizer.mask_id
                        if rank == j:
                            targets.append((pos, window[pos]))
                passes.append((inputs, targets))
    if n_words == 0:
        raise ValueError("no word to score: chosen is empty for every text; give longer texts or a larger ratio to choose_words")
    device = next(model.parameters()).device
    nats = 0.0
    for start in range(0, len(passes), batch_size):
        part = passes[start : start + batch_size]
        padded = pad_examples([{"input_ids": ids} for ids, _ in part], pad_id=tokenizer.pad_id)
        logp = model(padded["input_ids"].to(device), padded["attention_mask"].to(device)).logits.float().log_softmax(-1)
        rows = torch.tensor([r for r, (_, t) in enumerate(part) for _ in t], device=device)
        positions = torch.tensor([pos for _, t in part for pos, _ in t], device=device)
        truth = torch.tensor([tid for _, t in part for _, tid in t], device=device)
        nats -= float(logp[rows, positions, truth].sum())
    return WordBits(n_words, n_chars, n_pieces, nats)
