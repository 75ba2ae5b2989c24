"""Chapter 7's predict, interpret and extend exercises: the solutions pass, typical wrong answers fail
with the hint meant for them, and no failure gives the answer away."""

from __future__ import annotations

import copy
import math
from pathlib import Path
import sys

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.model import EncoderConfig, MaskedLM
from mlm_lessons.teaching.exercises.ch07 import _losses, blend_weights
from mlm_lessons.training import TrainConfig, eval_batches
from mlm_lessons.word_bits import WordBits

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402




def test_uniform_bits(general_tok):
    scored = WordBits(words=200, characters=1000, pieces=250, nats=1234.0)
    want = 250 * math.log2(general_tok.vocab_size) / 1000
    result = mlm.check("07-uniform-bits", round(want, 1), scored=scored, tokenizer=general_tok)
    assert result and f"{want:.3g}" in result.message and "1.25 pieces and 5.00 characters" in result.message
    rejected("07-uniform-bits", math.log2(general_tok.vocab_size) / 5, "too low", scored=scored, tokenizer=general_tok)  # one piece a word
    rejected("07-uniform-bits", 250 * math.log(general_tok.vocab_size) / 1000, "too low", scored=scored, tokenizer=general_tok)  # nats
    rejected("07-uniform-bits", 250 * math.log2(general_tok.vocab_size) / 200, "too high", scored=scored, tokenizer=general_tok)  # per word
    message = rejected("07-uniform-bits", None, "write your answer first", scored=scored, tokenizer=general_tok)
    assert f"{want:.3g}" not in message


def test_interpret_kept():
    assert mlm.check("07-interpret-kept", "c")
    for wrong in "abd":
        result = mlm.check("07-interpret-kept", wrong)
        assert not result and result.message.startswith(f"not ({wrong}):") and "(c)" not in result.message
    rejected("07-interpret-kept", None, "write your answer first")


@pytest.fixture(scope="module")
def two_models(general_tok, corpora):
    """A small general model and an 'adapted' one of the same configuration: its weights moved far
    from the general ones, so that every blend scores differently."""
    torch.manual_seed(0)
    general = MaskedLM(EncoderConfig(vocab_size=general_tok.vocab_size, max_len=32, d_model=16, n_layers=1, n_heads=2, d_ff=32))
    adapted = copy.deepcopy(general)
    with torch.no_grad():
        for p in adapted.parameters():
            p.mul_(4.0).add_(0.1 * torch.randn_like(p))
    config = TrainConfig(max_steps=10, max_length=32, warmup_steps=1, eval_sequences=48, device="cpu")
    context = dict(general=general, adapted=adapted, tokenizer=general_tok, domain_texts=corpora["pytorch-docs"].texts("valid")[:40],
                   general_texts=corpora["python-docs"].texts("valid")[:40], config=config)
    return general, adapted, context


def solution(general, adapted, alpha):
    mixed = copy.deepcopy(general)
    theirs = adapted.state_dict()
    mixed.load_state_dict({name: (1 - alpha) * w + alpha * theirs[name] for name, w in general.state_dict().items()})
    return mixed


def test_blend(two_models):
    general, adapted, context = two_models
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (general, adapted)]
    result = mlm.check("07-blend", solution, **context)
    assert result and result.message.startswith("halfway (alpha 0.5), the [MASK] loss is")
    assert mlm.check("07-blend", blend_weights, **context)
    assert all(torch.equal(m.state_dict()[k], v) for m, state in zip((general, adapted), before) for k, v in state.items())

    def in_place(general, adapted, alpha):
        general.load_state_dict(solution(general, adapted, alpha).state_dict())
        return general

    rejected("07-blend", lambda g, a, alpha: solution(g, a, 1 - alpha), "swapped", **context)
    rejected("07-blend", lambda g, a, alpha: copy.deepcopy(g), "those are the general model's weights", **context)
    rejected("07-blend", lambda g, a, alpha: copy.deepcopy(a), "those are the adapted model's weights", **context)
    rejected("07-blend", lambda g, a, alpha: g, "returned one of the two models", **context)
    rejected("07-blend", lambda g, a, alpha: solution(g, a, alpha).state_dict(), "should return a MaskedLM", **context)
    rejected("07-blend", lambda g, a, alpha: solution(g, a, 0.5 if alpha == 0 else alpha), "must give the general model's weights", **context)
    rejected("07-blend", in_place, "changed the general model's weights", **copy.deepcopy(context))

    # right at 0.25 and at both ends, but not halfway: the losses give it away, and not the package's
    def wrong_halfway(g, a, alpha):
        return solution(g, a, 0.25 if alpha == 0.5 else alpha)

    message = rejected("07-blend", wrong_halfway, "more than 0.01 nats from the package's blend's", **context)
    batches = {"domain": eval_batches(context["tokenizer"], context["domain_texts"], context["config"])}
    want = _losses(blend_weights(general, adapted, 0.5), batches)["domain"]
    assert f"{want:.3f}" not in message and f"{want:.2f}" not in message, "a wrong attempt is not told the number to find"
