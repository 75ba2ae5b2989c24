"""Chapter 3's exercises of the three kinds beside "write a function": predict, interpret, extend."""

from __future__ import annotations

import math
from pathlib import Path
import sys

import pytest

import mlm_lessons as mlm

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402




@pytest.fixture(scope="module")
def section_one(general_tok, corpora):
    """The batch and random logits of section 3.1."""
    import torch

    collate = mlm.MLMCollator(general_tok, generator=torch.Generator().manual_seed(0))
    labels = collate(corpora["python-docs"].texts("valid")[:8])["labels"]
    logits = torch.randn(*labels.shape, general_tok.vocab_size, generator=torch.Generator().manual_seed(1))
    return {"logits": logits, "labels": labels}


def test_predict_flat(general_tok, section_one):
    log_v = math.log(general_tok.vocab_size)
    measured = mlm.masked_lm_loss(section_one["logits"] / 10, section_one["labels"]).item()
    assert abs(measured - log_v) < 0.05
    assert mlm.check("03-predict-flat", log_v, **section_one)
    message = rejected("03-predict-flat", None, "write your answer first", **section_one)
    assert f"{measured:.3g}" not in message and "log V" not in message
    unchanged = mlm.masked_lm_loss(section_one["logits"], section_one["labels"]).item()
    rejected("03-predict-flat", unchanged, "too high", **section_one)  # the temperature changes nothing
    message = rejected("03-predict-flat", unchanged / 10, "too low", **section_one)  # the loss divided by 10
    assert "not the loss divided by 10" in message
    rejected("03-predict-flat", 0.0, "too low", **section_one)


def test_interpret_mixed():
    assert mlm.check("03-interpret-mixed", "b")
    rejected("03-interpret-mixed", None, "write your answer first")
    for wrong, says in (("a", "needs no context"), ("c", "already far below log V"), ("d", "whichever split")):
        message = rejected("03-interpret-mixed", wrong, says)
        assert "(b)" not in message


@pytest.fixture(scope="module")
def mixed_context(general_tok, corpora):
    corpus = corpora["python-docs"]
    return {"tokenizer": general_tok, "texts": corpus.texts("valid"), "counts": mlm.token_counts(general_tok, corpus.texts("train"))}


def _gap(tokenizer, texts, counts, masking, *, batches_with=None, baseline_with=None, sign=1):
    from mlm_lessons.training import TrainConfig, eval_batches

    batches = eval_batches(tokenizer, texts, TrainConfig(max_length=64, eval_sequences=512, masking=batches_with or masking))
    free = mlm.context_free_baselines(batches, counts, baseline_with or masking, tokenizer.special_ids)
    return sign * (free["unigram_loss"] - free["loss"])


def test_mixed_gap(mixed_context):
    from mlm_lessons.teaching.exercises.ch03 import mixed_gap

    bert = mlm.MaskingConfig()
    assert mlm.check("03-mixed-gap", _gap, **mixed_context)
    assert mlm.check("03-mixed-gap", mixed_gap, **mixed_context)
    rejected("03-mixed-gap", lambda *a: 0.0, "too low", **mixed_context)
    rejected("03-mixed-gap", lambda *a: _gap(*a, sign=-1), "the sign is flipped", **mixed_context)
    rejected("03-mixed-gap", lambda t, x, c, masking: _gap(t, x, c, masking, batches_with=bert, baseline_with=bert),
             "must be 0 – mask the texts with the masking you are given", **mixed_context)
    rejected("03-mixed-gap", lambda t, x, c, masking: _gap(t, x, c, masking, baseline_with=bert),
             "must be 0 – give context_free_baselines the masking the batches were made with", **mixed_context)
    # masked with BERT's recipe whatever the masking, but scored with the one given: caught with 40% kept
    rejected("03-mixed-gap", lambda t, x, c, masking: _gap(t, x, c, masking, batches_with=bert), "40%", **mixed_context)
    want = mixed_gap(**mixed_context, masking=bert)
    message = rejected("03-mixed-gap", lambda *a: _gap(*a) + 0.1, "too high", **mixed_context)
    assert f"{want:.3f}" not in message and f"{want:.2f}" not in message, "a wrong attempt is not told the number to find"
