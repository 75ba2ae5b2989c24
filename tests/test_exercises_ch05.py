"""Chapter 5's predict, interpret and extend exercises: the solutions pass, typical wrong answers fail
with the hint meant for them, and no failure gives the answer away."""

from __future__ import annotations

from pathlib import Path
import random
import sys

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.masking import MaskingConfig
from mlm_lessons.model import EncoderConfig, MaskedLM
from mlm_lessons.teaching.exercises.ch05 import labels_per_step, shuffled_evaluation
from mlm_lessons.training import TrainConfig

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402




@pytest.fixture(scope="module")
def texts(corpora):
    return corpora["python-docs"].texts("valid")[:60]


@pytest.fixture(scope="module")
def config():
    return TrainConfig(max_steps=10, batch_size=12, max_length=32, warmup_steps=1, eval_sequences=48, device="cpu",
                       masking=MaskingConfig(mask_ratio=0.4), eval_masking=MaskingConfig(), pack=True)


def test_labels_per_step(general_tok, texts, config):
    rows = mlm.pack_examples(general_tok.encode_chunks(texts, max_length=config.max_length), max_length=config.max_length)
    want = labels_per_step(general_tok, rows, config)
    eligible = [sum(i not in general_tok.special_ids for i in r["input_ids"]) for r in rows]
    assert want == pytest.approx(config.batch_size * sum(max(1, round(0.4 * n)) for n in eligible) / len(rows))
    context = dict(tokenizer=general_tok, rows=rows, config=config)
    result = mlm.check("05-labels-per-step", round(want * 1.05), **context)
    assert result and "[CLS] and [SEP]" in result.message
    rejected("05-labels-per-step", 0.4 * config.batch_size * config.max_length, "too high", **context)  # padding and specials counted
    rejected("05-labels-per-step", want * 0.15 / 0.4, "too low", **context)  # BERT's 15%, not the preset's 40%
    message = rejected("05-labels-per-step", None, "write your answer first", **context)
    assert f"{want:.3g}" not in message


def test_interpret_sparse():
    assert mlm.check("05-interpret-sparse", "b")
    assert mlm.check("05-interpret-sparse", " (B) ")
    for wrong in "acd":
        result = mlm.check("05-interpret-sparse", wrong)
        assert not result and result.message.startswith(f"not ({wrong}):") and "(b)" not in result.message
    rejected("05-interpret-sparse", None, "write your answer first")
    rejected("05-interpret-sparse", "e", "answer one of a, b, c, d")


def reference(model, tokenizer, texts, config, seed):
    return shuffled_evaluation(model, tokenizer, texts, config, seed)["mask_loss"]


def test_shuffled_words_on_a_small_model(general_tok, texts, config):
    torch.manual_seed(0)
    model = MaskedLM(EncoderConfig(vocab_size=general_tok.vocab_size, max_len=32, d_model=16, n_layers=1, n_heads=2, d_ff=32))
    context = dict(model=model, tokenizer=general_tok, texts=texts, config=config)
    result = mlm.check("05-shuffled-words", reference, **context)
    assert result and result.message.startswith("shuffling the words moves the model's [MASK] loss from")
    message = rejected("05-shuffled-words", lambda *a: 0.0, "too low", **context)
    assert f"{reference(model, general_tok, texts, config, 0):.3f}" not in message, "a wrong attempt is not told the number to find"


@pytest.fixture
def order_sensitive(monkeypatch, general_tok, texts):
    """``evaluate`` replaced by a stand-in for a model that reads word order: its [MASK] loss is
    1 + 3 × the share of neighbouring pieces that never follow each other in ``texts``, and its
    loss over all selected positions 0.3 lower. The checker's hints can be told apart with it."""
    import mlm_lessons.training as training

    specials = set(general_tok.special_ids)
    seen = set()
    for t in texts:
        ids = general_tok.encode(t)
        seen.update(zip(ids, ids[1:]))

    def evaluate(model, batches, device, precision="fp32"):
        unseen = total = 0
        for b in batches:
            ids = torch.where(b["labels"] != -100, b["labels"], b["input_ids"])
            for row, mask in zip(ids.tolist(), b["attention_mask"].tolist()):
                row = [i for i, m in zip(row, mask) if m and i not in specials]
                pairs = list(zip(row, row[1:]))
                unseen, total = unseen + sum(p not in seen for p in pairs), total + len(pairs)
        mask_loss = 1 + 3 * (unseen / total if total else 0.0)
        return {"loss": mask_loss - 0.3, "mask_loss": mask_loss}

    monkeypatch.setattr(training, "evaluate", evaluate)
    return evaluate


def test_shuffled_words_hints(general_tok, texts, config, order_sensitive):
    from mlm_lessons.training import eval_batches

    context = dict(model=None, tokenizer=general_tok, texts=texts, config=config, unigram=2.0)
    result = mlm.check("05-shuffled-words", reference, **context)
    assert result and "from 1.00 to" in result.message and "worse than the unigram guess (2.00)" in result.message
    assert mlm.check("05-shuffled-words", reference, **{**context, "unigram": 5.0}).message.endswith("the rest needs their order")

    def in_order(model, tokenizer, texts, config, seed):
        return order_sensitive(model, eval_batches(tokenizer, texts, config), "cpu")["mask_loss"]

    def texts_shuffled(model, tokenizer, texts, config, seed):
        texts = list(texts)
        random.Random(seed).shuffle(texts)
        return in_order(model, tokenizer, texts, config, seed)

    def all_selected(model, tokenizer, texts, config, seed):
        return shuffled_evaluation(model, tokenizer, texts, config, seed)["loss"]

    def characters(model, tokenizer, texts, config, seed):
        rng = random.Random(seed)
        shuffled = []
        for t in texts:
            chars = list(t)
            rng.shuffle(chars)
            shuffled.append("".join(chars))
        return in_order(model, tokenizer, shuffled, config, seed)

    def in_place(model, tokenizer, texts, config, seed):
        random.Random(seed).shuffle(texts)
        return reference(model, tokenizer, texts, config, seed)

    rejected("05-shuffled-words", in_order, "the loss of the texts in order", **context)
    rejected("05-shuffled-words", texts_shuffled, "shuffling the order of the texts changes little", **context)
    rejected("05-shuffled-words", all_selected, "return the loss at the [MASK] positions", **context)
    rejected("05-shuffled-words", characters, "not the characters", **context)
    rejected("05-shuffled-words", in_place, "changed the list `texts`", **context)
    want = reference(None, general_tok, texts, config, 0)
    for wrong in (in_order, all_selected, characters, lambda *a: 0.0):
        message = mlm.check("05-shuffled-words", wrong, **context).message
        assert f"{want:.3f}" not in message and f"{want:.2f}" not in message
