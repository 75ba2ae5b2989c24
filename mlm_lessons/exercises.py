"""Exercise checkers: a student's answer in, an immediate verdict with a useful message out.

Every exercise of the book has an id (``"01-split"``) and a checker. ``check(id, answer)`` returns a
:class:`CheckResult` that is truthy when the answer is right and shows as one line in a notebook::

    >>> check("01-roles", lambda s: s)                        # doctest: +ELLIPSIS
    ✘ 01-roles: ...
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable

__all__ = ["CheckResult", "Exercise", "check", "exercises", "register"]


@dataclass(frozen=True)
class CheckResult:
    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{'✔' if self.passed else '✘'} {self.exercise}: {self.message}"


@dataclass(frozen=True)
class Exercise:
    id: str
    chapter: int
    prompt: str
    checker: Callable[..., tuple[bool, str]]


_REGISTRY: dict[str, Exercise] = {}


def register(id: str, chapter: int, prompt: str):
    """Decorator: register ``checker(answer, **context) -> (passed, message)`` under ``id``."""

    def deco(checker):
        if id in _REGISTRY:
            raise ValueError(f"exercise {id!r} is registered twice")
        _REGISTRY[id] = Exercise(id, chapter, prompt, checker)
        return checker

    return deco


def exercises(chapter: int | None = None) -> list[Exercise]:
    """The registered exercises, of one chapter or all, in id order."""
    return [e for k, e in sorted(_REGISTRY.items()) if chapter is None or e.chapter == chapter]


def check(exercise_id: str, answer, **context) -> CheckResult:
    """Check ``answer`` against exercise ``exercise_id``; never raises because the answer is wrong."""
    if exercise_id not in _REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(_REGISTRY))}")
    try:
        passed, message = _REGISTRY[exercise_id].checker(answer, **context)
    except _AnswerError as exc:
        passed, message = False, str(exc)
    return CheckResult(exercise_id, bool(passed), message)


class _AnswerError(Exception):
    """The student's code failed; the message says on which input."""


def _call(fn, *args):
    if not callable(fn):
        raise _AnswerError(f"expected a function, got {type(fn).__name__}")
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - report any failure of the student's code
        last = traceback.extract_tb(exc.__traceback__)[-1]
        raise _AnswerError(
            f"your function raised {type(exc).__name__}: {exc} (line {last.lineno}) on input {args!r:.120}"
        ) from None


# -- chapter 1 ------------------------------------------------------------------------------


@register(
    "01-roles",
    1,
    "Write strip_roles(text) that replaces every Sphinx role :name:`content` by its content, "
    "shows only the last part of a ~-prefixed target, and keeps the title of `title <target>`.",
)
def _check_roles(answer) -> tuple[bool, str]:
    cases = [
        (":func:`torch.add`", "torch.add"),
        ("Adds :attr:`other` to :attr:`input`.", "Adds other to input."),
        (":class:`~torch.nn.Linear`", "Linear"),
        ("See :ref:`broadcasting <broadcasting-semantics>`.", "See broadcasting."),
        (":meth:`~Tensor.add_` works in place", "add_ works in place"),
        ("no roles here", "no roles here"),
    ]
    for given, want in cases:
        got = _call(answer, given)
        if got != want:
            return False, f"strip_roles({given!r}) returned {got!r}, expected {want!r}"
    return True, f"all {len(cases)} cases right"


@register(
    "01-leaks",
    1,
    "Write leaks(corpus) that returns how many distinct texts - compared after lowercasing and "
    "collapsing whitespace - appear in more than one of corpus.train, corpus.valid and corpus.test.",
)
def _check_leaks(answer) -> tuple[bool, str]:
    from .corpus import Corpus, Document

    def docs(*texts):
        return [Document(t, "exercise", "m", f"doc {i}", "text") for i, t in enumerate(texts)]

    cases = [
        (Corpus("clean", docs("a b c", "d e f"), docs("g h"), docs("i j")), 0, "no text is shared"),
        (Corpus("exact", docs("Same text here."), docs("Same text here."), []), 1, "one text in train and valid"),
        (Corpus("case", docs("Tensor  Shapes"), [], docs("tensor shapes")), 1, "equal after lowercasing and collapsing spaces"),
        (Corpus("three", docs("x y", "p q"), docs("X  y"), docs("x\ny", "P Q")), 2, "'x y' in all three splits, 'p q' in two"),
        (Corpus("within", docs("dup", "dup"), docs("other"), []), 0, "a duplicate inside one split is not a leak"),
    ]
    for corpus, want, why in cases:
        got = _call(answer, corpus)
        if got != want:
            return False, f"on corpus {corpus.name!r} ({why}) you counted {got!r}, expected {want}"
    return True, f"all {len(cases)} corpora counted right"


@register(
    "01-fragmentation",
    1,
    "Write pieces_per_word(tokenizer, words) that returns (mean pieces per word, share of words cut "
    "into two or more pieces) for a list of words.",
)
def _check_fragmentation(answer, *, tokenizer) -> tuple[bool, str]:
    words = ["autograd", "tensor", "the", "backpropagation", "gradient", "of", "dtype", "matrix"]
    frag = tokenizer.fragmentation([" ".join(words)])
    got = _call(answer, tokenizer, words)
    if not (isinstance(got, tuple) and len(got) == 2):
        return False, f"return a pair (pieces per word, share split), got {got!r:.80}"
    want = (frag.pieces_per_word, frag.share_split)
    if all(abs(float(g) - w) < 1e-9 for g, w in zip(got, want)):
        return True, f"pieces per word {want[0]:.3f}, share split {want[1]:.3f}"
    return False, f"got {tuple(round(float(g), 4) for g in got)}, expected {tuple(round(w, 4) for w in want)}"



@register(
    "01-closer",
    1,
    "Predict: on numpy-docs, are the general tokenizer's pieces per word closer to its value on "
    "python-docs or on pytorch-docs? Answer with the corpus name.",
)
def _check_closer(answer, *, tokenizer, corpora) -> tuple[bool, str]:
    if answer not in ("python-docs", "pytorch-docs"):
        return False, f"answer 'python-docs' or 'pytorch-docs', got {answer!r}"
    ppw = {name: tokenizer.fragmentation(corpora[name].texts("valid")).pieces_per_word
           for name in ("python-docs", "pytorch-docs", "numpy-docs")}
    truth = min(("python-docs", "pytorch-docs"), key=lambda n: abs(ppw[n] - ppw["numpy-docs"]))
    detail = ", ".join(f"{n} {v:.3f}" for n, v in ppw.items())
    if answer == truth:
        return True, f"right: pieces per word {detail}"
    return False, f"not this time: pieces per word {detail}; look at which words numpy-docs shares with each"
