"""Validation shared by the configuration dataclasses."""

from __future__ import annotations


def require_ints(config, names: tuple[str, ...], minimum: int) -> None:
    """Raise a ValueError naming the first field of ``config`` that is not an int >= ``minimum``."""
    for name in names:
        v = getattr(config, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
            raise ValueError(f"{name} must be {wanted}, got {v!r}")


def check_step_settings(config) -> None:
    """The optimizer fields fine-tuning and contrastive configs share: ``lr``, ``warmup_ratio``,
    ``weight_decay``, ``clip_norm`` and ``precision``."""
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr!r}")
    if not 0 <= config.warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {config.warmup_ratio!r}")
    if config.weight_decay < 0 or config.clip_norm <= 0:
        raise ValueError(f"weight_decay must be >= 0 and clip_norm > 0, got {config.weight_decay!r} and {config.clip_norm!r}")
    if config.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {config.precision!r}")
