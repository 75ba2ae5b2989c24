"""Validation shared by the configuration dataclasses."""

from __future__ import annotations


def require_ints(config, names: tuple[str, ...], minimum: int) -> None:
    """Raise a ValueError naming the first field of ``config`` that is not an int >= ``minimum``."""
    for name in names:
        v = getattr(config, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
            raise ValueError(f"{name} must be {wanted}, got {v!r}")
