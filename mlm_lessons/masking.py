"""Masking: choose the positions a masked language model must predict, and corrupt them.

The recipe of BERT (Devlin et al., 2019): among the positions that hold real text (never
``[CLS]``, ``[SEP]`` or padding), select about 15%; of the selected positions, replace 80% by
``[MASK]``, 10% by a random token and leave 10% unchanged. The labels hold the original token at
every selected position and ``-100`` (ignored by the loss) everywhere else.

Random draws happen in a fixed order, so that a notebook can re-derive the result step by step:
1. one uniform number per position (``exact``: the k smallest eligible scores are selected;
   ``bernoulli``: a score below ``mask_ratio`` selects) – per *word* with ``whole_word=True``; with
   spans (``span_p``), two per word: the order in which words start a span, and the span's length;
2. one uniform number per position deciding its fate: below ``p_mask`` -> ``[MASK]``, below
   ``p_mask + p_random`` -> random token, otherwise kept;
3. one random index per position into the non-special vocabulary (used where the fate is random).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

from .settings import MaskingConfig

__all__ = [
    "IGNORE_INDEX", "MaskingConfig", "MaskedBatch", "mask_tokens", "mask_tokens_explained",
    "Fate", "MLMCollator", "mask_once", "num_to_select", "span_lengths", "pack_examples", "pad_examples", "expected_counts", "next_token_labels",
]

#: Label value of positions that are not predicted (PyTorch's ``cross_entropy`` default ``ignore_index``).
IGNORE_INDEX = -100


class Fate:
    """What happened to a position: codes of :attr:`MaskedBatch.fate`."""

    UNTOUCHED = 0  # not selected: no label, input unchanged
    MASKED = 1  # selected, replaced by [MASK]
    RANDOM = 2  # selected, replaced by a random (non-special) token
    KEPT = 3  # selected, left unchanged
    NAMES = ("untouched", "[MASK]", "random", "kept")


def num_to_select(n_eligible: int, mask_ratio: float) -> int:
    """How many of ``n_eligible`` positions the ``exact`` selection picks: ``max(1, round(ratio * n))``.

    ``round`` is Python's (halves go to the even neighbour), and a sequence with nothing eligible
    gets 0.
    """
    if n_eligible < 0:
        raise ValueError(f"n_eligible must be >= 0, got {n_eligible}")
    return 0 if n_eligible == 0 else max(1, round(mask_ratio * n_eligible))


def expected_counts(
    input_ids: torch.Tensor,
    config: MaskingConfig,
    *,
    special_ids: Iterable[int],
    word_ids: Sequence[Sequence[int | None]] | None = None,
) -> dict[str, float]:
    """The expected number of positions of each fate when masking this batch with ``config``.

    ``exact`` selects ``num_to_select(n)`` units per sequence, ``bernoulli`` ``mask_ratio * n`` on
    average; with whole words, each word is chosen with the same probability, so the expected
    number of selected pieces is that probability times the number of pieces. With spans the budget
    of ``num_to_select(pieces)`` is the count (reached unless no word left unselected fits in what
    remains of it – a long word near the end of the budget).
    """
    specials = torch.tensor(sorted({int(s) for s in special_ids}), dtype=torch.long, device=input_ids.device)
    eligible = ~torch.isin(input_ids, specials)
    pieces = eligible.sum(1).tolist()
    if config.spans:
        units = pieces
    elif config.whole_word:
        if word_ids is None:
            raise ValueError("whole_word=True needs word_ids")
        words = _word_index(word_ids, eligible)
        units = [len(set(row[row >= 0].tolist())) for row in words]
    else:
        units = pieces
    selected = 0.0
    for n_units, n_pieces in zip(units, pieces):
        if n_units == 0:
            continue
        share = num_to_select(n_units, config.mask_ratio) / n_units if config.selection == "exact" else config.mask_ratio
        selected += share * n_pieces
    total = float(input_ids.numel())
    return {
        "untouched": total - selected,
        "[MASK]": selected * config.p_mask,
        "random": selected * config.p_random,
        "kept": selected * config.p_keep,
    }


@dataclass
class MaskedBatch:
    """The result of masking, with the fate of every position (see :class:`Fate`)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    fate: torch.Tensor

    @property
    def selected(self) -> torch.Tensor:
        return self.fate != Fate.UNTOUCHED

    def counts(self) -> dict[str, int]:
        """How many positions had each fate."""
        return {name: int((self.fate == code).sum()) for code, name in enumerate(Fate.NAMES)}


@functools.lru_cache(maxsize=32)
def _id_tables(specials: tuple[int, ...], vocab_size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A lookup table ``is_special[id]`` and the non-special ids (the pool random replacements come from)."""
    is_special = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    is_special[list(specials)] = True
    return is_special, (~is_special).nonzero().flatten()


def _check_inputs(input_ids, mask_token_id, vocab_size, special_ids) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(input_ids, torch.Tensor):
        raise ValueError(f"input_ids must be a torch.LongTensor [batch, length], got {type(input_ids).__name__}")
    if input_ids.dtype != torch.long:
        raise ValueError(f"input_ids must be a LongTensor (torch.long), got dtype {input_ids.dtype}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape [batch, length], got shape {tuple(input_ids.shape)}")
    if not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    specials = tuple(sorted({int(s) for s in special_ids}))
    bad = [s for s in specials if not 0 <= s < vocab_size]
    if bad:
        raise ValueError(f"special id {bad[0]} is outside the vocabulary [0, {vocab_size})")
    if len(specials) >= vocab_size:
        raise ValueError(f"all {vocab_size} ids are special: no token is left to draw random replacements from")
    if not isinstance(mask_token_id, int) or not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id must be an id in [0, {vocab_size}), got {mask_token_id!r}")
    if input_ids.numel():
        lo, hi = (int(v) for v in torch.aminmax(input_ids))
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"input_ids hold id {lo if lo < 0 else hi}, outside the vocabulary [0, {vocab_size})")
    return _id_tables(specials, vocab_size, str(input_ids.device))


def _uniform(shape, generator, device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else torch.device(device)
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def _word_index(word_ids, eligible: torch.Tensor) -> torch.Tensor:
    """``word_ids`` (lists with None) as a LongTensor, -1 where no word or not eligible."""
    batch, length = eligible.shape
    if len(word_ids) != batch:
        raise ValueError(f"word_ids has {len(word_ids)} sequences, input_ids has {batch}")
    rows = []
    for b, ids in enumerate(word_ids):
        ids = list(ids)
        if len(ids) > length:
            raise ValueError(f"word_ids[{b}] has {len(ids)} entries, longer than the sequence length {length}")
        if any(w is not None and (not isinstance(w, int) or w < 0) for w in ids):
            raise ValueError(f"word_ids[{b}] must hold non-negative ints or None, got {ids[:12]}")
        rows.append([-1 if w is None else w for w in ids] + [-1] * (length - len(ids)))
    index = torch.tensor(rows, dtype=torch.long, device=eligible.device).reshape(batch, length)
    return torch.where(eligible, index, torch.full_like(index, -1))


def _select(units_eligible: torch.Tensor, config: MaskingConfig, scores: torch.Tensor) -> torch.Tensor:
    """Select among units (positions or words), one score per unit, row by row."""
    if config.selection == "bernoulli":
        return units_eligible & (scores < config.mask_ratio)
    n = units_eligible.sum(dim=1)
    # max(1, round(ratio * n)) with Python's rounding (half to even), 0 when nothing is eligible
    k = torch.clamp(torch.round(n.double() * config.mask_ratio), min=1).long() * (n > 0)
    k_max = int(k.max()) if k.numel() else 0
    if k_max == 0:
        return torch.zeros_like(units_eligible)
    # the k smallest scores of each row; ineligible units score 2.0 and never make it
    ranked = torch.where(units_eligible, scores, torch.full_like(scores, 2.0))
    smallest = ranked.topk(k_max, dim=1, largest=False, sorted=True).indices
    take = torch.arange(k_max, device=scores.device)[None, :] < k[:, None]
    return torch.zeros_like(units_eligible).scatter_(1, smallest, take)


def span_lengths(draws: torch.Tensor, span_p: float, max_span: int) -> torch.Tensor:
    """Span lengths in words from uniform draws in [0, 1), by the inverse CDF of the geometric
    distribution with parameter ``span_p`` truncated to 1 … ``max_span``:
    P(ℓ) ∝ (1 − p)^(ℓ−1) p, renormalised over those lengths (as SpanBERT's code does; with p = 0.2
    and 10 words the mean is 3.8, the paper's figure)."""
    if span_p >= 1:
        return torch.ones_like(draws, dtype=torch.long)
    q = 1.0 - span_p
    scaled = draws.double() * (1.0 - q ** max_span)  # the CDF's range over 1 … max_span
    lengths = 1 + torch.floor(torch.log1p(-scaled) / math.log(q))
    return lengths.clamp(1, max_span).long()


def _select_spans(words: torch.Tensor, word_eligible: torch.Tensor, config: MaskingConfig, order: torch.Tensor,
                  length: torch.Tensor) -> torch.Tensor:
    """Spans of words, row by row, until the row's budget of pieces is spent.

    Every eligible word is a candidate start once, in the order of its ``order`` draw (smallest
    first); its span runs over the next ``span_lengths`` words (their ``length`` draw at the start
    word), skipping words already selected and stopping at the first word that would exceed the
    budget. A word that does not fit when its own turn as a start comes never fits later, so at the
    end no unselected word fits in what remains of the budget.
    """
    batch, n_words = word_eligible.shape
    sizes = torch.zeros(batch, n_words, dtype=torch.long, device=words.device)
    rows = torch.arange(batch, device=words.device)[:, None].expand_as(words)
    sizes.index_put_((rows[words >= 0], words[words >= 0]), torch.ones_like(words[words >= 0]), accumulate=True)
    spans = span_lengths(length, config.span_p, config.max_span)
    ranked = torch.where(word_eligible, order, torch.full_like(order, 2.0)).argsort(dim=1).tolist()
    chosen = torch.zeros_like(word_eligible)
    sizes_l, spans_l, eligible_l = sizes.tolist(), spans.tolist(), word_eligible.tolist()
    for b in range(batch):
        size, ok = sizes_l[b], eligible_l[b]
        budget = num_to_select(sum(size), config.mask_ratio)
        taken, used = set(), 0
        for start in ranked[b]:
            if not ok[start] or used >= budget:
                break
            for w in range(start, min(start + spans_l[b][start], n_words)):
                if not ok[w] or w in taken:
                    continue
                if used + size[w] > budget:
                    break
                taken.add(w)
                used += size[w]
        if taken:
            chosen[b, sorted(taken)] = True
    return chosen


def _mask(input_ids, config, mask_token_id, vocab_size, special_ids, generator, word_ids):
    """The masking itself; returns inputs, labels and the boolean maps of the three fates."""
    if not isinstance(config, MaskingConfig):
        raise ValueError(f"config must be a MaskingConfig, got {type(config).__name__}")
    is_special, pool = _check_inputs(input_ids, mask_token_id, vocab_size, special_ids)
    device = input_ids.device
    eligible = ~is_special[input_ids]
    batch, length = input_ids.shape

    # 1. selection: one score per position (or per word)
    if config.whole_word:
        if word_ids is None:
            raise ValueError("whole_word=True needs word_ids (per sequence, e.g. from MLMTokenizer.encode_batch)")
        words = _word_index(word_ids, eligible)
        n_words = int(words.max()) + 1 if words.numel() else 0
        word_eligible = torch.zeros(batch, max(n_words, 1), dtype=torch.bool, device=device)
        if n_words:
            rows = torch.arange(batch, device=device)[:, None].expand_as(words)
            word_eligible[rows[words >= 0], words[words >= 0]] = True
        if config.spans:
            order = _uniform(word_eligible.shape, generator, device)
            span_draw = _uniform(word_eligible.shape, generator, device)
            chosen = _select_spans(words, word_eligible, config, order, span_draw)
        else:
            chosen = _select(word_eligible, config, _uniform(word_eligible.shape, generator, device))
        selected = torch.gather(chosen, 1, words.clamp(min=0)) & (words >= 0)
    else:
        selected = _select(eligible, config, _uniform((batch, length), generator, device))

    # 2. fate of each selected position; 3. a random non-special token for each position
    fate_draw = _uniform((batch, length), generator, device)
    random_index = torch.randint(
        len(pool), (batch, length), generator=generator,
        device=generator.device if generator is not None else device,
    ).to(device)
    is_mask = selected & (fate_draw < config.p_mask)
    is_random = selected & ~is_mask & (fate_draw < config.p_mask + config.p_random)

    inputs = torch.where(is_random, pool[random_index], input_ids)
    inputs = inputs.masked_fill(is_mask, mask_token_id)
    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)
    return inputs, labels, selected, is_mask, is_random


def mask_tokens_explained(
    input_ids: torch.Tensor,
    config: MaskingConfig,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_ids: Iterable[int],
    generator: torch.Generator | None = None,
    word_ids: Sequence[Sequence[int | None]] | None = None,
) -> MaskedBatch:
    """:func:`mask_tokens`, also returning the fate of every position (see :class:`Fate`)."""
    inputs, labels, selected, is_mask, is_random = _mask(
        input_ids, config, mask_token_id, vocab_size, special_ids, generator, word_ids
    )
    fate = selected.long() * Fate.KEPT
    fate[is_mask] = Fate.MASKED
    fate[is_random] = Fate.RANDOM
    return MaskedBatch(inputs, labels, fate)


def mask_tokens(
    input_ids: torch.Tensor,
    config: MaskingConfig,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_ids: Iterable[int],
    generator: torch.Generator | None = None,
    word_ids: Sequence[Sequence[int | None]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch for MLM: returns ``(inputs, labels)``; ``input_ids`` itself is not modified.

    - ``input_ids``: LongTensor [batch, length]; positions holding any of ``special_ids`` are never
      selected (pass the tokenizer's ``special_ids``: padding, ``[CLS]``, ``[SEP]``, ...).
    - Selected positions become ``[MASK]`` (share ``p_mask``), a token drawn uniformly from the
      non-special vocabulary (``p_random``; it may by chance equal the original), or stay
      (``p_keep``). ``labels`` holds the original id there and ``IGNORE_INDEX`` (-100) elsewhere.
    - ``generator``: a seeded ``torch.Generator`` makes the result reproducible.
    - ``word_ids``: per sequence, each position's word index or None (the format of
      ``tokenizers``' ``Encoding.word_ids``); with ``config.whole_word`` the selection picks words
      and all their pieces are selected together.
    """
    inputs, labels, *_ = _mask(input_ids, config, mask_token_id, vocab_size, special_ids, generator, word_ids)
    return inputs, labels


def pack_examples(examples: Sequence[dict], *, max_length: int) -> list[dict]:
    """Concatenate consecutive examples into rows of at most ``max_length`` tokens (*packing*).

    Short documents leave most of a padded batch empty: python-docs' chunks of 64 fill 60% of
    their rows. Packing puts ``[CLS] a … [SEP] [CLS] b … [SEP]`` into one row, in order, starting
    a new row where the next example would not fit, so that a step computes on text instead of
    padding (RoBERTa's "full sentences" input; attention crosses the ``[SEP]``). Examples are never
    cut. ``word_ids`` are shifted so that words of different examples stay different (whole-word
    masking); ``labels`` and ``fate`` are carried along when every example has them.
    """
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    keys = [k for k in ("input_ids", "word_ids", "labels", "fate") if examples and all(k in ex for ex in examples)]
    rows: list[dict] = []
    row: dict = {}
    words = 0
    for i, ex in enumerate(examples):
        if "input_ids" not in ex:
            raise ValueError(f"example {i} has no 'input_ids' (keys: {sorted(ex)})")
        n = len(ex["input_ids"])
        if n > max_length:
            raise ValueError(f"example {i} has {n} tokens, more than max_length={max_length}; "
                             f"cut the text first (MLMTokenizer.encode_chunks) or raise max_length")
        if row and len(row["input_ids"]) + n > max_length:
            rows.append(row)
            row, words = {}, 0
        if not row:
            row = {k: [] for k in keys}
        for k in keys:
            if k == "word_ids":
                row[k] += [None if w is None else w + words for w in ex[k]]
            else:
                row[k] += list(ex[k])
        if "word_ids" in keys:
            words += 1 + max((w for w in ex["word_ids"] if w is not None), default=-1)
    if row:
        rows.append(row)
    return rows


def pad_examples(examples: Sequence[dict], *, pad_id: int, pad_to_multiple_of: int | None = None) -> dict:
    """Pad examples ``{"input_ids": [...], "word_ids"?: [...], "labels"?: [...]}`` to a batch: the
    one collate function of the package (pretraining, evaluation and fine-tuning all pad with it).

    Returns ``input_ids`` and ``attention_mask`` (and ``labels``, padded with -100, and ``fate``,
    padded with ``Fate.UNTOUCHED``, when every example has them) as LongTensors, and ``word_ids``
    padded with None when every example has them. Examples of a classification task carry one
    ``label`` each instead of ``labels``: they become ``labels`` of shape [batch]. Other keys are
    left out.
    """
    if not examples:
        raise ValueError("cannot pad an empty list of examples")
    for i, ex in enumerate(examples):
        if "input_ids" not in ex:
            raise ValueError(f"example {i} has no 'input_ids' (keys: {sorted(ex)})")
    width = max(len(ex["input_ids"]) for ex in examples)
    if pad_to_multiple_of:
        width = math.ceil(width / pad_to_multiple_of) * pad_to_multiple_of
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, ex in enumerate(examples):
        n = len(ex["input_ids"])
        ids[i, :n] = torch.as_tensor(ex["input_ids"], dtype=torch.long)
        mask[i, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if all("labels" in ex for ex in examples):
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        for i, ex in enumerate(examples):
            labels[i, : len(ex["labels"])] = torch.as_tensor(ex["labels"], dtype=torch.long)
        batch["labels"] = labels
    elif all("label" in ex for ex in examples):
        batch["labels"] = torch.tensor([ex["label"] for ex in examples], dtype=torch.long)
    if all("fate" in ex for ex in examples):
        fate = torch.full((len(examples), width), Fate.UNTOUCHED, dtype=torch.long)
        for i, ex in enumerate(examples):
            fate[i, : len(ex["fate"])] = torch.as_tensor(ex["fate"], dtype=torch.long)
        batch["fate"] = fate
    if all("word_ids" in ex for ex in examples):
        batch["word_ids"] = [list(ex["word_ids"]) + [None] * (width - len(ex["word_ids"])) for ex in examples]
    return batch


class MLMCollator:
    """A ``collate_fn`` for a DataLoader: pad a list of examples and mask the batch afresh.

    Examples are strings (tokenized on the fly) or dicts with ``input_ids`` (and ``word_ids`` for
    whole-word masking). Every call draws new masks – *dynamic* masking, as RoBERTa does. Examples
    that already carry ``labels`` (see :func:`mask_once`) are only padded – *static* masking.
    """

    def __init__(
        self,
        tokenizer,
        config: MaskingConfig | None = None,
        *,
        max_length: int = 128,
        generator: torch.Generator | None = None,
        pad_to_multiple_of: int | None = None,
    ):
        self.tokenizer = tokenizer
        self.config = config or MaskingConfig()
        self.max_length = max_length
        self.generator = generator
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, examples: Sequence) -> dict:
        if not examples:
            raise ValueError("the batch is empty")
        if all(isinstance(e, str) for e in examples):
            examples = self.tokenizer.encode_examples(list(examples), max_length=self.max_length)
        elif not all(isinstance(e, dict) for e in examples):
            raise ValueError("examples must all be strings or all dicts with 'input_ids'")
        batch = pad_examples(examples, pad_id=self.tokenizer.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)
        word_ids = batch.pop("word_ids", None)
        if "labels" in batch:  # masked once already (static masking)
            return batch
        batch["input_ids"], batch["labels"] = mask_tokens(
            batch["input_ids"], self.config, mask_token_id=self.tokenizer.mask_id,
            vocab_size=self.tokenizer.vocab_size, special_ids=self.tokenizer.special_ids,
            generator=self.generator, word_ids=word_ids,
        )
        return batch


def mask_once(
    examples: Sequence[dict],
    tokenizer,
    config: MaskingConfig | None = None,
    *,
    copies: int = 1,
    generator: torch.Generator | None = None,
) -> list[dict]:
    """*Static* masking: mask every example ``copies`` times, once and for all.

    Returns ``copies * len(examples)`` examples with ``input_ids`` already corrupted, ``labels``, and
    the ``fate`` of every position (see :class:`Fate`: which labelled positions hold ``[MASK]``, a
    random token or their own token, so that an evaluation can score them apart); original BERT
    prepared its data like this with ``copies=10`` (its "dupe factor"), so that each sentence is seen
    with at most 10 different masks however long training runs.
    """
    if not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be a positive int, got {copies!r}")
    config = config or MaskingConfig()
    out = []
    for _ in range(copies):
        for ex in examples:
            ids = torch.as_tensor(ex["input_ids"], dtype=torch.long)[None]
            masked = mask_tokens_explained(
                ids, config, mask_token_id=tokenizer.mask_id, vocab_size=tokenizer.vocab_size,
                special_ids=tokenizer.special_ids, generator=generator,
                word_ids=[ex["word_ids"]] if config.whole_word else None,
            )
            out.append({"input_ids": masked.inputs[0].tolist(), "labels": masked.labels[0].tolist(),
                        "fate": masked.fate[0].tolist()})
    return out


def next_token_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The labels of a left-to-right (causal) language model, for comparison with MLM: at position
    ``t`` the token at ``t + 1``; -100 at the last position and wherever the next position is padding.
    Every real position but the last is a target, against about 15% in MLM."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids {tuple(input_ids.shape)}")
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    real_next = attention_mask[:, 1:].bool()
    labels[:, :-1] = torch.where(real_next, input_ids[:, 1:], torch.full_like(input_ids[:, 1:], IGNORE_INDEX))
    return labels
