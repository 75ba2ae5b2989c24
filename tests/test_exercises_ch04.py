"""Chapter 4's exercises of the three kinds beside "write a function": predict, interpret, extend."""

from __future__ import annotations

import math
from pathlib import Path
import sys

import pytest

import mlm_lessons as mlm

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402




@pytest.fixture(scope="module")
def spread_context(general_tok, corpora):
    """The batch of section 4.7 (16 validation texts, 64 pieces)."""
    import torch

    collate = mlm.MLMCollator(general_tok, generator=torch.Generator().manual_seed(0), max_length=64)
    return {"tokenizer": general_tok, "batch": collate(corpora["python-docs"].texts("valid")[:16])}


def test_predict_spread(spread_context):
    import torch

    from mlm_lessons.teaching.exercises.ch04 import initial_logit_spread

    state = torch.random.get_rng_state()
    measured = initial_logit_spread(spread_context["tokenizer"].vocab_size, spread_context["batch"], 512)
    assert torch.equal(state, torch.random.get_rng_state()), "measuring leaves the global random state as it was"
    assert abs(measured - math.sqrt(512) * 0.02) < 0.03
    small = initial_logit_spread(spread_context["tokenizer"].vocab_size, spread_context["batch"], 128)
    assert abs(small - math.sqrt(128) * 0.02) < 0.02, "section 4.8's number"
    assert mlm.check("04-predict-spread", math.sqrt(512) * 0.02, **spread_context)
    message = rejected("04-predict-spread", None, "write your answer first", **spread_context)
    assert f"{measured:.3g}" not in message and "sqrt" not in message
    rejected("04-predict-spread", small, "too low", **spread_context)  # the width changes nothing
    message = rejected("04-predict-spread", 4 * small, "too high", **spread_context)  # linear in the width
    assert "does not quadruple it" in message


def test_interpret_shares():
    assert mlm.check("04-interpret-shares", "b")
    rejected("04-interpret-shares", None, "write your answer first")
    for wrong, says in (("a", "does not shrink"), ("c", "every row of the table is tied"), ("d", "the same tokenizer")):
        message = rejected("04-interpret-shares", wrong, says)
        assert "(b)" not in message


def test_interpret_shares_reasons_hold():
    """The reasons' numbers: width and depth six times, blocks about 216 times, embeddings 6 times."""
    from mlm_lessons.model import EncoderConfig, MaskedLM

    def parts(**sizes):
        import torch

        with torch.device("meta"):  # shapes only: no memory, no initialisation
            model = MaskedLM(EncoderConfig(vocab_size=8000, **sizes))
        blocks = sum(p.numel() for n, p in model.named_parameters() if ".blocks." in n)
        return model.encoder.tok_emb.weight.numel(), blocks

    small = parts(d_model=128, n_layers=2, n_heads=4, d_ff=512, max_len=64)
    bert = parts(d_model=768, n_layers=12, n_heads=12, d_ff=3072, max_len=512)
    assert bert[0] == 6 * small[0]
    assert 200 < bert[1] / small[1] < 220


def _reach(model, ids, attention_mask, j, mask_id, *, run_mask=True, count_all=False, in_place=False, as_flags=False):
    changed = ids if in_place else ids.clone()
    before = model(ids, attention_mask if run_mask else None).logits
    changed[0, j] = mask_id
    after = model(changed, attention_mask if run_mask else None).logits
    moved = (after - before)[0].abs().amax(-1) > 1e-6
    if as_flags:
        return moved
    return int(moved.sum() if count_all else moved[attention_mask[0].bool()].sum())


def test_reach(general_tok):
    import functools

    assert mlm.check("04-reach", _reach, tokenizer=general_tok)
    message = mlm.check("04-reach", _reach, tokenizer=general_tok).message
    assert "its own and those to its right" in message and "a replaced [PAD] changed 0" in message
    rejected("04-reach", lambda *a: 0, "nothing changed", tokenizer=general_tok)
    rejected("04-reach", functools.partial(_reach, count_all=True), "count only the real positions", tokenizer=general_tok)
    rejected("04-reach", functools.partial(_reach, run_mask=False), "run the model with the attention_mask", tokenizer=general_tok)
    rejected("04-reach", functools.partial(_reach, in_place=True), "modified ids", tokenizer=general_tok)
    rejected("04-reach", functools.partial(_reach, as_flags=True), "return one number", tokenizer=general_tok)
    # every real position, for the left-to-right model too: the failure names neither the count nor the length
    everything = lambda model, ids, mask, j, mask_id: int(mask.sum())  # noqa: E731
    message = rejected("04-reach", everything, "the left-to-right model", tokenizer=general_tok)
    real = int(general_tok.encode_batch(["Return a new tensor with the same size."]).attention_mask.sum())
    assert f"you counted {real} positions" in message, message
    assert not any(ch.isdigit() for ch in message.split("you counted")[0].replace("piece 5", "")), "no count before the answer's"
    assert str(real - 5) not in message, "nor the count the left-to-right model gives"
