"""comparison's shared scikit-learn plumbing and its use of the task kinds."""

from __future__ import annotations

import random
import sys
from types import SimpleNamespace

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons import comparison
from mlm_lessons.masking import IGNORE_INDEX, pad_examples
from mlm_lessons.model import EncoderConfig, MaskedLM, evaluating
from mlm_lessons.tasks import KINDS, TaggingExample, TaskData, encode_tagging

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


def test_every_kind_has_a_bag_of_words():
    assert set(comparison._BAG_OF_WORDS) == set(KINDS)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_word_states_are_the_first_piece_states_chunk_by_chunk(batch_size):
    tok = mlm.tokenizer_from_vocab(WORDS)
    torch.manual_seed(0)
    model = MaskedLM(EncoderConfig(vocab_size=tok.vocab_size, max_len=8, d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0))
    rng = random.Random(0)
    # 3 to 14 words against max_len 8: several chunks per example; "\x07" has no piece at all
    examples = [TaggingExample(tuple(ws), tuple(int(w == "alpha") for w in ws), "s")
                for ws in ([rng.choice(WORDS + ["\x07"]) for _ in range(rng.randint(3, 14))] for _ in range(15))]
    states, where = comparison._word_states(model.encoder, tok, examples, batch_size)

    # what token_probe did before it used tasks.first_pieces: a gather per chunk, then torch.cat
    chunks = encode_tagging(tok, examples, model.encoder.config.max_len)
    rows, expected_where = [], []
    with torch.no_grad(), evaluating(model.encoder):
        for i in range(0, len(chunks), batch_size):
            items = chunks[i : i + batch_size]
            b = pad_examples(items, pad_id=tok.pad_id)
            out = model.encoder(b["input_ids"], b["attention_mask"]).float()
            for j, item in enumerate(items):
                rows.append(out[j, (b["labels"][j] != IGNORE_INDEX).nonzero().flatten().tolist()])
                expected_where += [(item["example"], w) for w in item["words"]]
    expected = torch.cat(rows)
    assert states.dtype == expected.dtype and torch.equal(states, expected)
    assert where == expected_where
    assert len(where) < sum(len(ex.words) for ex in examples)  # the erased words have no row


def test_choose_C_keeps_the_first_best_on_validation():
    fitted = []

    class FakeLR:
        def __init__(self, C, max_iter, random_state):
            self.C = C
            fitted.append((C, max_iter, random_state))

        def fit(self, x, y):
            return self

    task = TaskData("t", "classification", ("a", "b"))
    valid = {0.1: 0.5, 1.0: 0.8, 10.0: 0.8, 100.0: 0.2}
    score = lambda clf, split: {"macro_f1": valid[clf.C] if split == "valid" else -clf.C}
    out = comparison._choose_C(SimpleNamespace(LogisticRegression=FakeLR), task, list(valid), None, None, score,
                               max_iter=7, seed=3)
    assert out == {"C": 1.0, "valid": {"macro_f1": 0.8}, "test": {"macro_f1": -1.0}}  # a tie keeps the first
    assert fitted == [(c, 7, 3) for c in valid]


def test_without_sklearn_the_error_names_the_routine(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(ImportError, match="token_probe needs scikit-learn"):
        comparison._sklearn("token_probe")
    with pytest.raises(ImportError, match="bag_of_words needs scikit-learn"):
        comparison.bag_of_words(TaskData("t", "classification", ("a", "b")))
