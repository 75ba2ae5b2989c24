"""Exercise checkers: right answers pass, wrong answers fail with a message that helps."""

from __future__ import annotations

import re
from collections import Counter

import pytest

import mlm_lessons as mlm
from mlm_lessons.exercises import exercises


def test_every_chapter_one_exercise_is_registered():
    assert [e.id for e in exercises(1)] == ["01-closer", "01-fragmentation", "01-leaks", "01-roles"]
    assert all(e.prompt for e in exercises())


def strip_roles(text):
    def content(m):
        body = m.group(2)
        titled = re.match(r"(.*?)\s*<[^<>]+>$", body)
        if titled:
            return titled.group(1)
        return body[1:].rsplit(".", 1)[-1] if body.startswith("~") else body

    return re.sub(r":(\w+):`([^`]+)`", content, text)


def test_roles():
    assert mlm.check("01-roles", strip_roles)
    naive = mlm.check("01-roles", lambda t: re.sub(r":(\w+):`([^`]+)`", r"\2", t))
    assert not naive and "expected 'Linear'" in naive.message
    crashing = mlm.check("01-roles", lambda t: t.no_such_method())
    assert not crashing and "raised AttributeError" in crashing.message
    assert repr(crashing).startswith("✘ 01-roles:")
    assert not mlm.check("01-roles", "not a function")


def test_leaks():
    def leaks(corpus):
        sets = [{" ".join(d.text.split()).lower() for d in s} for s in (corpus.train, corpus.valid, corpus.test)]
        return sum(n > 1 for n in Counter(t for s in sets for t in s).values())

    assert mlm.check("01-leaks", leaks)
    exact_only = mlm.check("01-leaks", lambda c: len({d.text for d in c.train} & ({d.text for d in c.valid} | {d.text for d in c.test})))
    assert not exact_only and "case" in exact_only.message


def test_fragmentation(general_tok):
    def right(tok, words):
        n = [len(tok.tokenize(w)) for w in words]
        return sum(n) / len(n), sum(k > 1 for k in n) / len(n)

    assert mlm.check("01-fragmentation", right, tokenizer=general_tok)
    assert not mlm.check("01-fragmentation", lambda tok, words: (1.0, 0.0), tokenizer=general_tok)
    assert "return a pair" in mlm.check("01-fragmentation", lambda tok, words: 1.0, tokenizer=general_tok).message


def test_closer(general_tok, corpora):
    results = {a: bool(mlm.check("01-closer", a, tokenizer=general_tok, corpora=corpora)) for a in ("python-docs", "pytorch-docs")}
    assert sorted(results.values()) == [False, True]
    assert "answer 'python-docs' or 'pytorch-docs'" in mlm.check("01-closer", "numpy", tokenizer=general_tok, corpora=corpora).message


def test_unknown_exercise():
    with pytest.raises(ValueError, match="unknown exercise '99-x'; known: 01-closer"):
        mlm.check("99-x", None)
