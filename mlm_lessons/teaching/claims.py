"""The book's claims about trained models, checked with tolerances instead of exact outputs.

A sentence such as "the validation loss ends well below the unigram baseline" is backed in a
chapter by a hidden cell::

    claim("unigram − validation loss (nats)", unigram - final["valid_loss"], above=0.2)

Training differs from one CPU, thread count, seed or library version to the next, so a trained
model's numbers are never checked digit for digit (``# NBVAL_CHECK_OUTPUT``); a claim states the
margin it needs instead, and that margin is chosen from measured spreads
(``benchmarks/notebook_spread.py``). Every claim is recorded with its value and bounds, so the
measurement script can read back how far each run was from failing.

``MLM_LESSONS_CLAIMS=record`` records without raising: a measurement run then sees every claim of
a chapter, failing ones included, instead of stopping at the first.

A chapter that re-runs one run of a stored benchmark compares the two only when the benchmark trained
the same model: the benchmark records its model (:func:`model_record`) and the chapter asks
:func:`same_model` first.
"""

from __future__ import annotations

import math
import os

__all__ = ["claim", "note", "recorded", "reset", "model_record", "same_model", "CLAIMS_ENV"]

#: ``record``: note failing claims instead of raising (for measurement runs).
CLAIMS_ENV = "MLM_LESSONS_CLAIMS"

_RECORD: list[dict] = []


def _mode() -> str:
    mode = os.environ.get(CLAIMS_ENV, "check").strip() or "check"
    if mode not in ("check", "record"):
        raise ValueError(f"{CLAIMS_ENV}={mode!r} must be 'check' (raise on a failing claim) or 'record' (note it and go on)")
    return mode


def claim(name: str, value: float, *, above: float | None = None, below: float | None = None) -> None:
    """Check that ``value`` lies strictly above ``above`` and/or strictly below ``below``.

    When it does not, raises ``AssertionError`` naming the claim, the value and the bound it missed
    (with ``MLM_LESSONS_CLAIMS=record``, goes on instead). Either way the claim is recorded with
    whether it held (:func:`recorded`). Like ``assert`` it returns nothing, so a notebook cell that
    ends with a claim shows no output.
    """
    mode = _mode()
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a claim needs a name that says what is measured, got {name!r}")
    if above is None and below is None:
        raise ValueError(f"claim {name!r} needs a bound: above=..., below=... or both")
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise ValueError(f"claim {name!r}: the value must be a number, got {type(value).__name__}; "
                         f"turn a comparison into a margin (a - b, above=0)")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"claim {name!r}: the value is NaN; a claim needs a measured number")
    if above is not None and below is not None and not above < below:
        raise ValueError(f"claim {name!r}: above={above!r} must be smaller than below={below!r}")
    holds = (above is None or value > above) and (below is None or value < below)
    _RECORD.append({"name": name, "value": value, "above": above, "below": below, "holds": holds})
    if not holds and mode == "check":
        bounds = " and ".join(f"{word} {bound:g}" for word, bound in (("above", above), ("below", below)) if bound is not None)
        raise AssertionError(f"claim {name!r} does not hold: {value:.4g} is not {bounds}")


def note(name: str, value: float) -> None:
    """Record a measured number without a bound: one the prose calls noise, or only reports, whose
    spread over runs the measurement script should show."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a note needs a name that says what is measured, got {name!r}")
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise ValueError(f"note {name!r}: the value must be a number, got {type(value).__name__}")
    _RECORD.append({"name": name, "value": float(value), "above": None, "below": None, "holds": None})


def recorded() -> list[dict]:
    """Every claim checked so far in this process: name, value, bounds and whether it held."""
    return [dict(entry) for entry in _RECORD]


def reset() -> None:
    """Forget the recorded claims (a measurement run calls it between chapters)."""
    _RECORD.clear()


def model_record(config) -> dict:
    """What a stored benchmark records of the model it trained: ``config`` (an ``EncoderConfig``) as a
    dict, without the vocabulary's fingerprint (a tokenizer retrained on the same text has the same one,
    and the vocabulary size stays)."""
    if not hasattr(config, "to_dict"):
        raise ValueError(f"model_record takes a model configuration (EncoderConfig), got {type(config).__name__}")
    return {k: v for k, v in config.to_dict().items() if k != "vocab_fingerprint"}


def same_model(stored: dict, config) -> bool:
    """Whether the stored benchmark record ``stored`` was made with ``config``'s model (layout and
    sizes). A record that names no model is not comparable: it predates the record of models."""
    if not isinstance(stored, dict):
        raise ValueError(f"same_model takes a stored benchmark record (a dict), got {type(stored).__name__}")
    return stored.get("model") == model_record(config)
