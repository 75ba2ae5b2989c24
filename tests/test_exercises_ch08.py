"""Chapter 8's predict, interpret and extend exercises: the solutions pass, typical wrong answers fail
with the hint meant for them, and no failure gives the answer away."""

from __future__ import annotations

from collections import Counter
import math
from pathlib import Path
import re
import sys
from types import SimpleNamespace

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.retrieval import rank_metrics, summary_task
from mlm_lessons.teaching.exercises.ch08 import count_cosine_scores, majority_floor

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402




def test_majority_floor():
    example = lambda label: SimpleNamespace(label=label)  # noqa: E731
    # the train split's largest class is 1; the test split's is 0
    task = SimpleNamespace(train=[example(y) for y in [1] * 5 + [0] * 4 + [2]], test=[example(y) for y in [1] * 3 + [0] * 5 + [2] * 2],
                           num_labels=3, label_names=("zero", "one", "two"))
    floor = majority_floor(task)
    share = 0.3  # class 1 on the test split: recall 1, precision 0.3
    assert floor["label"] == 1 and floor["accuracy"] == pytest.approx(share)
    assert floor["macro_f1"] == pytest.approx(2 * share / (1 + share) / 3)
    result = mlm.check("08-majority-floor", 0.15, task=task)
    assert result and "'one'" in result.message and "never predicted" in result.message
    rejected("08-majority-floor", 2 * 0.5 / 1.5 / 3, "too high", task=task)  # the test split's largest class
    rejected("08-majority-floor", share, "too high", task=task)  # the accuracy
    rejected("08-majority-floor", 1 / 3, "too high", task=task)  # chance over three classes
    message = rejected("08-majority-floor", None, "write your answer first", task=task)
    assert f"{floor['macro_f1']:.3g}" not in message


def test_interpret_paired():
    assert mlm.check("08-interpret-paired", "b")
    for wrong in "acd":
        result = mlm.check("08-interpret-paired", wrong)
        assert not result and result.message.startswith(f"not ({wrong}):") and "(b)" not in result.message
    rejected("08-interpret-paired", None, "write your answer first")


@pytest.fixture(scope="module")
def pairs(corpora):
    test = summary_task(corpora["pytorch-docs"]).test
    return [p.query for p in test], [p.target for p in test]


def solution(queries, documents):
    def counts(text):
        return Counter(re.findall(r"\w+", text.lower()))

    def length(v):
        return math.sqrt(sum(n * n for n in v.values())) or 1.0

    qs, ds = [counts(q) for q in queries], [counts(d) for d in documents]
    return [[sum(n * d[w] for w, n in q.items()) / (length(q) * length(d)) for d in ds] for q in qs]


def variant(words, binary=False, normalise=True):
    def score(queries, documents):
        def vector(text):
            c = Counter(words(text))
            return Counter(dict.fromkeys(c, 1)) if binary else c

        def length(v):
            return (math.sqrt(sum(n * n for n in v.values())) or 1.0) if normalise else 1.0

        qs, ds = [vector(q) for q in queries], [vector(d) for d in documents]
        return [[sum(n * d[w] for w, n in q.items()) / (length(q) * length(d)) for d in ds] for q in qs]

    return score


def test_count_cosine(pairs):
    queries, documents = pairs
    context = dict(queries=queries, documents=documents)
    result = mlm.check("08-count-cosine", solution, **context)
    assert result and "BM25 on the same pairs" in result.message
    assert mlm.check("08-count-cosine", lambda q, d: torch.tensor(count_cosine_scores(q, d)), **context)
    words = lambda t: re.findall(r"\w+", t.lower())  # noqa: E731
    rejected("08-count-cosine", variant(words, normalise=False), "divide the dot product", **context)
    rejected("08-count-cosine", lambda q, d: [[0.0] * len(d) for _ in q], "take the cosine of the two count vectors", **context)
    rejected("08-count-cosine", variant(lambda t: t.lower().split()), "str.split() keeps punctuation", **context)
    rejected("08-count-cosine", variant(words, binary=True), "count how often each word occurs", **context)
    rejected("08-count-cosine", lambda q, d: solution(q, d)[:-1], "expected (5, 5)", **context)
    rejected("08-count-cosine", lambda q, d: [row[:-1] for row in solution(q, d)], "expected (5, 5)", **context)
    rejected("08-count-cosine", lambda q, d: None, "matrix of numbers", **context)
    want = rank_metrics(count_cosine_scores(queries, documents))["mrr"]
    for wrong in (variant(lambda t: t.lower().split()), variant(words, binary=True)):
        message = mlm.check("08-count-cosine", wrong, **context).message
        assert f"{want:.3f}" not in message and f"{want:.2f}" not in message, "a wrong attempt is not told the number to find"
