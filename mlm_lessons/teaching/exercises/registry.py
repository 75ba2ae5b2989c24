"""The registry of exercises and what every checker shares: calling the student's function safely,
naming a known mistake, reading numbers and lists out of an answer.

The checkers themselves live in one module per chapter (``ch01`` ... ``ch10``), each registering its
exercises with :func:`register`.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable

__all__ = ["CheckResult", "Exercise", "check", "exercises", "register", "AnswerError", "call_answer", "name_mistake", "as_number",
           "as_list", "first_mismatch", "judge_prediction", "judge_choice", "NO_PREDICTION", "masked_batch"]


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
    except AnswerError as exc:
        passed, message = False, str(exc)
    return CheckResult(exercise_id, bool(passed), message)


class AnswerError(Exception):
    """The student's code failed; the message says on which input."""


def call_answer(fn, *args, hints: dict[type[Exception], str] | None = None):
    """``fn(*args)``; a failure becomes an :class:`AnswerError` that says where, plus the hint that
    ``hints`` gives for the kind of exception (the known mistake that raises it)."""
    if not callable(fn):
        raise AnswerError(f"expected a function, got {type(fn).__name__}")
    try:
        return fn(*args)
    except NotImplementedError:
        raise AnswerError("not written yet: replace `raise NotImplementedError` with your code") from None
    except Exception as exc:  # noqa: BLE001 - report any failure of the student's code
        last = traceback.extract_tb(exc.__traceback__)[-1]
        hint = next((f" – {h}" for kind, h in (hints or {}).items() if isinstance(exc, kind)), "")
        raise AnswerError(
            f"your function raised {type(exc).__name__}: {exc} (line {last.lineno}) on input {args!r:.120}{hint}"
        ) from None


def name_mistake(got, mistakes, same) -> str:
    """Name the mistake: `` – hint`` for the first ``(wrong answer, hint)`` of ``mistakes`` that ``got``
    matches by ``same(got, wrong)`` (the answer a known mistake gives), or '' when none does."""
    for wrong, hint in mistakes:
        try:
            matches = bool(same(got, wrong))
        except Exception:  # noqa: BLE001 - an answer of another type or shape matches no known mistake
            matches = False
        if matches:
            return f" – {hint}"
    return ""


def as_number(got) -> float:
    """``got`` - a Python number or a one-element tensor - as a float."""
    try:
        return float(got)
    except (TypeError, ValueError, RuntimeError):
        shape = getattr(got, "shape", None)
        what = f"a tensor of shape {tuple(shape)}" if shape is not None else f"{got!r:.80}"
        raise AnswerError(f"return one number, got {what}") from None


def as_list(got) -> list:
    try:
        return list(got)
    except TypeError:
        raise AnswerError(f"return a list, got {got!r:.80}") from None


def first_mismatch(answer, cases, describe) -> tuple[bool, str] | None:
    """Run ``answer(*args)`` for each ``(args, expected)``; on the first wrong result return
    ``(False, describe(args, got, expected))``, or None when all are right."""
    for args, want in cases:
        got = call_answer(answer, *args)
        if got != want:
            return False, describe(args, got, want)
    return None


# -- the three kinds of exercise beside "write a function" ---------------------------------------
#
# *predict, then run*: the student writes a number before a cell shows it; the checker compares it
# with the measurement and says why the measurement is what it is, close or not.
# *interpret*: a multiple-choice question on a result of the chapter; a wrong choice gets the reason
# it is wrong, never the right letter.
# *extend*: a small experiment with the package, checked by its outcome (each chapter's own checker).
# None of them prints the answer before the student has committed one, so an attempt cell that
# holds ``None`` stores an output that reveals nothing.

#: What a predict or interpret checker says before an answer is given.
NO_PREDICTION = "write your answer first ({what}), then run the check again: the verdict and its reason come once you have"


def judge_prediction(answer, measured: float, *, within: float, why: str, relative: bool = True, digits: int = 3,
                     what: str = "a number") -> tuple[bool, str]:
    """A prediction against its measurement: right when it lies within ``within`` of ``measured``
    (a share of it with ``relative=True``, else an absolute distance). The message gives both
    numbers and ``why`` – the reason the measurement is what it is – whether the guess was close or
    not. ``None`` (nothing predicted yet) gets :data:`NO_PREDICTION` and no number."""
    if answer is None or answer is ...:
        return False, NO_PREDICTION.format(what=what)
    if isinstance(answer, bool):
        raise AnswerError(f"predict {what}, got {answer!r}")
    got = as_number(answer)
    gap = abs(got - measured)
    limit = within * abs(measured) if relative else within
    side = "high" if got > measured else "low"
    verdict = "close" if gap <= limit else f"too {side} by {gap:.{digits}g}"
    tolerance = f"{within:.0%} of it" if relative else f"{within:g}"
    return gap <= limit, f"you predicted {got:.{digits}g}; the measurement is {measured:.{digits}g} ({verdict}; within {tolerance} counts). {why}"


def judge_choice(answer, options: dict[str, str], right: str) -> tuple[bool, str]:
    """A multiple-choice answer: ``options`` maps each letter to the reason that choice is right
    (for ``right``) or wrong (for the others). A wrong choice gets its own reason, not the right
    letter; ``None`` gets :data:`NO_PREDICTION`."""
    if right not in options:
        raise ValueError(f"the right choice {right!r} is not among the options {sorted(options)}")
    letters = ", ".join(sorted(options))
    if answer is None or answer is ...:
        return False, NO_PREDICTION.format(what=f"one of {letters}")
    choice = str(answer).strip().strip("()").lower()
    if choice not in options:
        raise AnswerError(f"answer one of {letters}, got {answer!r:.40}")
    if choice == right:
        return True, f"({choice}) – {options[choice]}"
    return False, f"not ({choice}): {options[choice]}"


def masked_batch(tokenizer, texts, config, *, seed: int = 0, max_length: int = 64):
    """``texts`` encoded as one batch and masked with ``config`` and a generator seeded ``seed``: the
    reference measurements of the masking exercises start here. Returns ``(batch, MaskedBatch)``."""
    import torch

    from ...masking import mask_tokens_explained

    batch = tokenizer.encode_batch(list(texts), max_length=max_length)
    out = mask_tokens_explained(batch.input_ids, config, mask_token_id=tokenizer.mask_id, vocab_size=tokenizer.vocab_size,
                                special_ids=tokenizer.special_ids, generator=torch.Generator().manual_seed(seed),
                                word_ids=batch.word_ids)
    return batch, out
