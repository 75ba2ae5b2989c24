"""Chapter 1's exercises of the three kinds beside "write a function": predict, interpret, extend."""

from __future__ import annotations

import functools
from pathlib import Path
import sys

import pytest

import mlm_lessons as mlm

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402




def test_predict_moved(corpora):
    from mlm_lessons.teaching.exercises.ch01 import moved_share

    measured = moved_share(corpora)
    assert abs(measured - 0.185) < 0.03, "a new hash is a new uniform draw"
    assert mlm.check("01-predict-moved", 1 - (0.9**2 + 0.05**2 + 0.05**2), corpora=corpora)
    assert mlm.check("01-predict-moved", 0.2, corpora=corpora)
    message = rejected("01-predict-moved", None, "write your answer first", corpora=corpora)
    assert f"{measured:.3g}" not in message
    for wrong in (0.0, 0.05, 0.1):  # a small edit keeps the hash; only held-out documents move; ...
        rejected("01-predict-moved", wrong, "too low", corpora=corpora)
    for wrong in (0.5, 0.9):
        rejected("01-predict-moved", wrong, "too high", corpora=corpora)
    assert "new SHA-256" in mlm.check("01-predict-moved", 0.0, corpora=corpora).message, "the reason comes with a wrong guess too"
    with pytest.raises(TypeError):
        mlm.check("01-predict-moved", 0.2)  # the corpora are needed


def test_interpret_own_corpus():
    assert mlm.check("01-interpret-own-corpus", "b")
    assert mlm.check("01-interpret-own-corpus", "(B)")
    rejected("01-interpret-own-corpus", None, "write your answer first")
    for wrong, says in (("a", "trained on the train split only"), ("c", "8,000 entries"), ("d", "word length cannot explain")):
        message = rejected("01-interpret-own-corpus", wrong, says)
        assert "(b)" not in message and "b)" not in message, "a wrong letter is not told the right one"


@functools.lru_cache(maxsize=None)
def _tokenizer(vocab_size, texts):
    return mlm.train_tokenizer(list(texts), vocab_size=vocab_size)


def _pieces_per_word_at(vocab_size, train_texts, valid_texts, *, on="valid", what="pieces_per_word"):
    tok = _tokenizer(vocab_size, tuple(train_texts))
    return getattr(tok.fragmentation(valid_texts if on == "valid" else train_texts), what)


def test_vocab_size(corpora):
    assert mlm.check("01-vocab-size", _pieces_per_word_at, corpora=corpora)
    rejected("01-vocab-size", lambda v, train, valid: 1.0, "for both 1,000 and 4,000 entries", corpora=corpora)
    rejected("01-vocab-size", lambda v, train, valid: _pieces_per_word_at(5000 - v, train, valid),
             "does vocab_size reach train_tokenizer", corpora=corpora)
    rejected("01-vocab-size", functools.partial(_pieces_per_word_at, what="share_split"),
             "at least 1 – that is the share of words split", corpora=corpora)
    rejected("01-vocab-size", functools.partial(_pieces_per_word_at, on="train"),
             "too low (more than 1% from the package's measurement) – measure on valid_texts", corpora=corpora)
    reference = _pieces_per_word_at(1000, corpora["python-docs"].texts("train"), corpora["pytorch-docs"].texts("valid"))
    message = rejected("01-vocab-size", lambda *a: 1.05 * _pieces_per_word_at(*a), "too high", corpora=corpora)
    assert f"{reference:.3f}" not in message and f"{reference:.2f}" not in message, "a wrong attempt is not told the number to find"
    crashing = mlm.check("01-vocab-size", lambda *a: 1 / 0, corpora=corpora)
    assert not crashing and "raised ZeroDivisionError" in crashing.message
