"""Chapter 10's predict, interpret and extend exercises: right answers pass, wrong ones fail with the
intended hint, and nothing a wrong attempt is told gives the answer away."""

from __future__ import annotations

import numpy as np
from pathlib import Path
import pytest
import sys

import mlm_lessons as mlm
from mlm_lessons.synthetic import random_language

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402




@pytest.fixture(scope="module")
def lang():
    """The chapter's language."""
    return random_language(n_topics=4, shared_states=2, topic_states=4, vocab_size=40, stay=0.0, sharpness=0.05,
                           transition_sharpness=0.2, seed=0)


def test_predict_all_masked(lang):
    from mlm_lessons.masking import MaskingConfig
    from mlm_lessons.teaching.exercises.ch10 import all_masked_optimum
    from mlm_lessons.training import TrainConfig, eval_batches

    texts = [lang.text(x) for x in lang.sample(200, 24, seed=1)[0]]
    tok = lang.tokenizer()
    measured = all_masked_optimum(lang, texts)
    # what the chapter's cell measures: the limits at every position of batches with every word masked
    every = MaskingConfig(mask_ratio=1.0, p_mask=1.0, p_random=0.0, p_keep=0.0)
    config = TrainConfig(max_length=32, pack=False, eval_masking=every)
    limits = lang.limits(eval_batches(tok, texts, config), tok)
    assert len(limits["optimum"]) == 200 * 24
    assert np.isclose(limits["optimum"].mean(), measured) and np.isclose(limits["no_context"].mean(), measured)
    context = dict(language=lang, texts=texts)
    rejected("10-predict-all-masked", None, "write your answer first", **context)
    ok = mlm.check("10-predict-all-masked", measured + 0.05, **context)
    assert ok and "marginal" in ok.message
    rejected("10-predict-all-masked", 2.37, "too low", **context)  # a straight line through section 10.6's sweep
    rejected("10-predict-all-masked", 4.0, "too high", **context)


def test_interpret_bayes():
    assert mlm.check("10-interpret-bayes", "d")
    for wrong in "abc":
        result = mlm.check("10-interpret-bayes", wrong)
        assert not result and "(d)" not in result.message and result.message.startswith(f"not ({wrong}):")
    rejected("10-interpret-bayes", None, "write your answer first")


def _worth(language, sentences, *, sign=1, probabilities=False, left="left", total=False):
    """The solution (right side's worth per position), or with a known mistake."""
    out = []
    for x in sentences:
        positions = np.arange(len(x))
        both = np.array([language.masked_conditionals(x, [i])[0, x[i]] for i in positions])
        other = language.left_conditionals(x)[positions, x]
        if left == "nothing":
            other = language.masked_conditionals(x, positions)[positions, x]
        elif left == "off by one":  # the left-only prediction of the position before
            other = language.left_conditionals(x)[np.maximum(positions - 1, 0), x]
        out.append(both - other if probabilities else np.log(both) - np.log(other))
    out = sign * np.array(out)
    return out.sum(0) if total else out.mean(0)


def test_right_side(lang):
    from mlm_lessons.teaching.exercises.ch10 import right_side_worth

    limits = {"left_only": np.array([2.2, 2.3]), "optimum": np.array([1.9, 2.0])}
    context = dict(language=lang, limits=limits)
    want = right_side_worth(lang, lang.sample(100, 24, seed=17)[0])
    assert abs(want[-1]) < 1e-9 and want[0] > want.mean() > 0.3
    ok = mlm.check("10-right-side", _worth, **context)
    assert ok and "more than the 0.300 of section 10.3" in ok.message
    assert mlm.check("10-right-side", right_side_worth, **context)
    for wrong, says in [
        (lambda language, s: np.zeros(s.shape[1]), "zero everywhere"),
        (lambda language, s: _worth(language, s, sign=-1), "the sign is flipped"),
        (lambda language, s: _worth(language, s, probabilities=True), "a difference of probabilities"),
        (lambda language, s: _worth(language, s, left="nothing"), "against nothing seen"),
        (lambda language, s: _worth(language, s, total=True), "the sum over the sentences"),
        (lambda language, s: _worth(language, s, left="off by one"), "at the last position"),
        (lambda language, s: want if language is lang else np.ones(s.shape[1]), "independent of each other"),
        (lambda language, s: want[:-1], "of shape (24,)"),
    ]:
        message = rejected("10-right-side", wrong, says, **context)
        if "independent" not in says:
            assert all(f"{v:.3f}" not in message for v in (want.mean(), want[0], want[5])), message
