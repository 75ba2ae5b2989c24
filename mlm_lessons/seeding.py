"""Seeds: every random draw of a run comes from a named stream of one seed.

A run draws many things – the order of the data in each epoch, the masks of each step, the dropout
of each step, a static copy of each sequence's mask, the one mask of the validation text, the order
and dropout of a fine-tuning run. Each is a *stream* with a name; a stream's seed is a function of
``(seed, stream, position...)`` alone (``position`` being the epoch, the step, the rank ...), so a
run resumed at step ``s`` draws exactly what an uninterrupted run draws there, and two streams never
share draws. The seeds come from :class:`numpy.random.SeedSequence`, whose ``spawn_key`` is made for
exactly this: independent child seeds named by a path of integers.

``$MLM_LESSONS_SEED_OFFSET`` (:func:`seed_offset`) shifts every training seed, so the book's tests can
run each chapter on another training run of the same recipe.
"""

from __future__ import annotations

import os

import numpy as np
import torch

__all__ = ["STREAMS", "stream_seed", "stream_generator", "seed_offset", "SEED_OFFSET_ENV", "set_training_seed"]

#: The named streams and their fixed place in the spawn key (never renumber one: it would change
#: what every run with that stream draws).
STREAMS = {
    "data-order": 1,  # the permutation of the training rows in each epoch
    "step-mask": 2,  # dynamic masking: the masks of each step and micro-batch
    "dropout": 3,  # torch's global generator at each step (dropout)
    "static-mask": 4,  # static masking: the k-th fixed mask of each training row
    "eval-mask": 5,  # the one mask of the validation text
    "finetune-order": 6,  # a fine-tuning run's order of the labelled examples in each epoch
    "finetune-dropout": 7,  # a fine-tuning run's dropout at each step
}


def stream_seed(seed: int, stream: str, *position: int) -> int:
    """A 63-bit seed for draw ``position`` (epoch, step, rank, ...) of ``stream`` in a run seeded ``seed``."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; the streams are {', '.join(STREAMS)}")
    for value in (seed, *position):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"seeds and positions must be ints >= 0, got {value!r} (seed={seed!r}, position={position!r})")
    state = np.random.SeedSequence(int(seed), spawn_key=(STREAMS[stream], *map(int, position))).generate_state(1, np.uint64)
    return int(state[0]) & 0x7FFFFFFFFFFFFFFF  # torch.Generator.manual_seed takes a signed 64-bit int


def stream_generator(seed: int, stream: str, *position: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`stream_seed`."""
    return torch.Generator().manual_seed(stream_seed(seed, stream, *position))


#: Environment variable that shifts every training seed (see :func:`seed_offset`).
SEED_OFFSET_ENV = "MLM_LESSONS_SEED_OFFSET"


def seed_offset() -> int:
    """The number ``$MLM_LESSONS_SEED_OFFSET`` adds to every training seed (0 when it is unset).

    It moves what training draws – initial weights, data order, the masks of each step, dropout,
    a fine-tuning head's initialisation – to another run of the same recipe, without touching a
    line of the code that asked for ``seed=0``. Measuring instruments keep their seeds: the fixed
    evaluation mask, subsamples of labels, sampling from a trained model. The book's tests run the
    notebooks with an offset, so an output that depends on one particular training run cannot pass
    as an exact one.
    """
    raw = os.environ.get(SEED_OFFSET_ENV, "").strip()
    if not raw:
        return 0
    try:
        offset = int(raw)
    except ValueError:
        offset = -1
    if offset < 0:
        raise ValueError(f"{SEED_OFFSET_ENV}={raw!r} must be a whole number >= 0 (the shift added to training seeds); "
                         f"unset it, or set it to 0, for the seeds as written")
    return offset


def set_training_seed(seed: int) -> None:
    """Seed torch's generators (CPU and every GPU): model initialisation and dropout."""
    torch.manual_seed(seed)
