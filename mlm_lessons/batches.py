"""Batch sources: step ``s``'s batch as a function of ``(seed, s)`` alone, for each objective.

Every source pads with the one collate function of the package (:class:`~mlm_lessons.masking.MLMCollator`,
which pads with :func:`~mlm_lessons.masking.pad_examples` and, for dynamic masking, masks):

- :class:`PretrainBatches` – rows of a pretraining corpus for masked language modeling (new masks at
  every step, or one of ``k`` fixed masks per row: static masking) or for a causal LM (next-token labels);
- :class:`LabelledBatches` – encoded examples of a fine-tuning task, which carry their labels.

The rows of step ``s`` are consecutive slices of a fresh permutation per epoch (stream
``"data-order"``), so resuming a run at step ``s`` needs no sampler state.
"""

from __future__ import annotations

import torch

from ._checks import require_choice
from .masking import MaskingConfig, MLMCollator, mask_once, next_token_labels, pad_examples
from .seeding import stream_generator
from .settings import OBJECTIVES, check_accumulation

__all__ = ["step_indices", "static_mask", "PretrainBatches", "LabelledBatches"]


def step_indices(n: int, batch_size: int, seed: int, step: int, stream: str = "data-order") -> list[int]:
    """The indices of step ``step``'s global batch among ``n`` rows: consecutive slices of a fresh
    permutation per epoch (an epoch is ``n // batch_size`` steps; the last partial slice is dropped)."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(n, generator=stream_generator(seed, stream, epoch))
    return order[k * batch_size : (k + 1) * batch_size].tolist()


def static_mask(row: dict, index: int, copy: int, *, seed: int, masking: MaskingConfig, tokenizer) -> dict:
    """Training row ``index`` masked in its ``copy``-th fixed way (stream ``"static-mask"``): a
    function of ``(seed, index, copy)`` alone, whatever batch, epoch or padding it lands in."""
    return mask_once([row], tokenizer, masking, generator=stream_generator(seed, "static-mask", index, copy))[0]


class PretrainBatches:
    """The micro-batches of each pretraining step for one process (``rank`` of ``world``).

    ``objective="mlm"`` masks with ``masking``: afresh at every step (stream ``"step-mask"``), or,
    with ``static_masks=k``, with the ``epoch % k``-th of ``k`` fixed masks of each row (stream
    ``"static-mask"``, a function of the row and the copy alone: BERT's "dupe factor").
    ``objective="causal"`` labels every position with the next token.
    """

    def __init__(self, rows: list[dict], tokenizer, *, batch_size: int, grad_accum: int = 1, seed: int,
                 objective: str = "mlm", masking: MaskingConfig | None = None, static_masks: int = 0,
                 rank: int = 0, world: int = 1, pad_to_multiple_of: int | None = None):
        require_choice(objective, "objective", OBJECTIVES)
        if len(rows) < batch_size:
            raise ValueError(f"{len(rows)} training sequences are fewer than one batch of {batch_size}")
        check_accumulation(batch_size, grad_accum, world)
        self.rows, self.tokenizer, self.batch_size, self.grad_accum = rows, tokenizer, batch_size, grad_accum
        self.seed, self.objective, self.masking, self.static_masks = seed, objective, masking or MaskingConfig(), static_masks
        self.rank, self.world, self.pad_to_multiple_of = rank, world, pad_to_multiple_of
        self.micro = batch_size // (grad_accum * world)
        self.steps_per_epoch = max(1, len(rows) // batch_size)

    def __call__(self, step: int) -> list[dict]:
        indices = step_indices(len(self.rows), self.batch_size, self.seed, step)[self.rank :: self.world]
        out = []
        for m in range(self.grad_accum):
            part = indices[m * self.micro : (m + 1) * self.micro]
            if self.objective == "causal":
                b = pad_examples([self.rows[i] for i in part], pad_id=self.tokenizer.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)
                b.pop("word_ids", None)
                b["labels"] = next_token_labels(b["input_ids"], b["attention_mask"])
            elif self.static_masks:
                copy = (step // self.steps_per_epoch) % self.static_masks
                b = MLMCollator(self.tokenizer, pad_to_multiple_of=self.pad_to_multiple_of)([static_mask(self.rows[i], i, copy, seed=self.seed, masking=self.masking, tokenizer=self.tokenizer) for i in part])
            else:
                gen = stream_generator(self.seed, "step-mask", self.rank, step, m)
                b = MLMCollator(self.tokenizer, self.masking, generator=gen, pad_to_multiple_of=self.pad_to_multiple_of)(
                    [self.rows[i] for i in part])
            out.append(b)
        return out


class LabelledBatches:
    """Batches of a fine-tuning task's encoded examples (``input_ids`` and ``labels``, or a ``label``
    per example), drawn in a fresh order per epoch (stream ``"finetune-order"``). An epoch's last
    batch holds what is left, so every example is seen once per epoch. ``collate`` turns a list
    of items into a batch (default: :func:`~mlm_lessons.masking.pad_examples` with ``pad_id``)."""

    def __init__(self, items: list[dict], *, batch_size: int, seed: int, pad_id: int, collate=None):
        if not items:
            raise ValueError("no training examples to draw batches from")
        self.items, self.batch_size, self.seed, self.pad_id = items, batch_size, seed, pad_id
        self.collate = collate or (lambda chosen: pad_examples(chosen, pad_id=pad_id))
        self.steps_per_epoch = -(-len(items) // batch_size)

    def __call__(self, step: int) -> dict:
        epoch, k = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.items), generator=stream_generator(self.seed, "finetune-order", epoch))
        return self.collate([self.items[i] for i in order[k * self.batch_size : (k + 1) * self.batch_size].tolist()])
