"""What the exercise tests share: a wrong answer must fail with the message that names its mistake."""

from __future__ import annotations

import mlm_lessons as mlm


def rejected(exercise_id, answer, says, **context) -> str:
    """``answer`` fails ``exercise_id`` with a message that contains ``says``; returns the message."""
    result = mlm.check(exercise_id, answer, **context)
    assert not result and says in result.message, result.message
    return result.message
