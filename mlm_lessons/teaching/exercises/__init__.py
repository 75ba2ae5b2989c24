"""Exercise checkers: a student's answer in, an immediate verdict with a useful message out.

Every exercise of the book has an id (``"01-split"``) and a checker, in the module of its chapter
(``ch01`` ... ``ch10``). ``check(id, answer)`` returns a :class:`CheckResult` that is truthy when
the answer is right and shows as one line in a notebook::

    >>> check("01-roles", lambda s: s)                        # doctest: +ELLIPSIS
    ✘ 01-roles: ...
"""

from __future__ import annotations

from . import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10  # noqa: F401 - each registers its chapter's exercises
from .registry import CheckResult, Exercise, check, exercises, register

__all__ = ["CheckResult", "Exercise", "check", "exercises", "register"]
