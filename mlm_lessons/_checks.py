"""Validation: one rule per kind of value, each raising a ValueError that names the value and the fix.

A configuration declares its rules beside its fields – :func:`integer`, :func:`number`,
:func:`choice`, :func:`flag` – and calls :func:`validate` in ``__post_init__``; what involves two
fields at once is checked there by hand. A function checks its arguments with
:func:`require_int`, :func:`require_number` and :func:`require_choice`, the same rules. Nothing
here imports PyTorch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


def _listed(allowed, notes: dict | None = None) -> str:
    quoted = [repr(a) + (f" ({notes[a]})" if notes and a in notes else "") for a in allowed]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def require_int(value, name: str, minimum: int = 1, *, why: str = "") -> int:
    """``value`` if it is an int (not a bool) >= ``minimum``; else a ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {wanted}{why}, got {value!r}")
    return value


def require_ints(config, names: tuple[str, ...], minimum: int) -> None:
    """:func:`require_int` for each of ``config``'s fields ``names``."""
    for name in names:
        require_int(getattr(config, name), name, minimum)


def _interval(above, at_least, below, at_most) -> str:
    low = f"({above}" if above is not None else f"[{at_least}" if at_least is not None else None
    high = f"{below})" if below is not None else f"{at_most}]" if at_most is not None else None
    if low and high:
        return f"in {low}, {high}"
    if low:
        return f"> {above}" if above is not None else f">= {at_least}"
    return f"< {below}" if below is not None else f"<= {at_most}"


def require_number(value, name: str, *, above=None, at_least=None, below=None, at_most=None, why: str = ""):
    """``value`` if it is a number within the bounds given (``above``/``below`` exclusive,
    ``at_least``/``at_most`` inclusive); else a ValueError naming ``name`` and the interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (above is None or value > above) and (at_least is None or value >= at_least)
    ok = ok and (below is None or value < below) and (at_most is None or value <= at_most)
    if not ok:
        raise ValueError(f"{name} must be {_interval(above, at_least, below, at_most)}{why}, got {value!r}")
    return value


def require_choice(value, name: str, allowed, *, why: str = "", notes: dict | None = None):
    """``value`` if it is one of ``allowed`` (a named constant of the settings); else a ValueError
    listing them (each with its ``notes``, where given)."""
    if value not in allowed:
        raise ValueError(f"{name} must be {_listed(allowed, notes)}{why}, got {value!r}")
    return value


def require_flag(value, name: str) -> bool:
    """``value`` if it is True or False; else a ValueError naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


# -- declared beside a configuration's fields ------------------------------------------------------


def _field(default, rule: Callable[[str, Any], Any], **kwargs):
    return dataclasses.field(default=default, metadata={"rule": rule}, **kwargs)


def integer(default, *, minimum: int = 1, optional: bool = False, why: str = ""):
    """A field that holds an int >= ``minimum`` (or None, when ``optional``)."""
    return _field(default, lambda name, v: None if optional and v is None else require_int(v, name, minimum, why=why))


def number(default, *, above=None, at_least=None, below=None, at_most=None, why: str = ""):
    """A field that holds a number within the bounds given (see :func:`require_number`)."""
    return _field(default, lambda name, v: require_number(v, name, above=above, at_least=at_least, below=below,
                                                          at_most=at_most, why=why))


def choice(default, allowed, *, why: str = "", notes: dict | None = None):
    """A field that holds one of ``allowed``."""
    return _field(default, lambda name, v: require_choice(v, name, allowed, why=why, notes=notes))


def flag(default: bool):
    """A field that holds True or False."""
    return _field(default, lambda name, v: require_flag(v, name))


def validate(config) -> None:
    """Apply every rule ``config``'s fields declare, in field order."""
    for f in dataclasses.fields(config):
        rule = f.metadata.get("rule")
        if rule is not None:
            rule(f.name, getattr(config, f.name))


def require_device(value, name: str = "device") -> str:
    """A device name a configuration may hold: 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    if not isinstance(value, str) or (value not in ("auto", "cpu", "cuda", "mps") and not value.startswith("cuda:")):
        raise ValueError(f"{name} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {value!r}")
    return value


def device(default: str = "auto"):
    """A field that holds a device name (:func:`require_device`)."""
    return _field(default, lambda name, v: require_device(v, name))
