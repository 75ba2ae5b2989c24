"""Scoring sentences: pseudo-log-likelihood, causal log-likelihood, minimal pairs."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mlm_lessons as mlm
from mlm_lessons.model import EncoderConfig, MaskedLM
from mlm_lessons.scoring import (
    causal_log_likelihood, minimal_pairs, pair_accuracy, pll_of_ids, pseudo_log_likelihood, sentences,
)

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import WORDS, confident_model, tiny_tokenizer_and_texts  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["the tensor .", "a new tensor with the same shape .", "gradient", "the input of a layer is the output of a module and the bias ."]


@pytest.fixture(scope="module")
def tok():
    return mlm.tokenizer_from_vocab(WORDS + ["."])


def make_model(tok, causal: bool) -> MaskedLM:
    return confident_model(tok, causal=causal, seed=1, max_len=24, std=0.3)


@pytest.fixture(scope="module")
def mlm_model(tok):
    return make_model(tok, causal=False)


@pytest.fixture(scope="module")
def causal_model(tok):
    return make_model(tok, causal=True)


def naive_pll(model, tok, text: str) -> float:
    """Salazar et al.'s definition, one sequence and one masked position at a time."""
    model.eval()
    ids = tok.encode(text)
    total = 0.0
    with torch.no_grad():
        for t in range(1, len(ids) - 1):
            masked = list(ids)
            masked[t] = tok.mask_id
            logits = model(torch.tensor([masked])).logits[0, t]
            total += float(logits.double().log_softmax(-1)[ids[t]])
    return total


def test_pll_matches_the_definition(tok, mlm_model):
    mlm_model.train()
    scores = pseudo_log_likelihood(mlm_model, tok, TEXTS)
    assert mlm_model.training, "the model's mode is restored"
    expected = [naive_pll(mlm_model, tok, t) for t in TEXTS]
    assert scores == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert all(s < 0 for s in scores) and len({round(s, 3) for s in scores}) == len(TEXTS)
    # padding and batching change nothing: one copy per batch, odd batch sizes, everything at once
    for batch_size in (1, 5, 128):
        assert pseudo_log_likelihood(mlm_model, tok, TEXTS, batch_size=batch_size) == pytest.approx(scores, rel=1e-5, abs=1e-5)
    assert pseudo_log_likelihood(mlm_model, tok, TEXTS[::-1]) == pytest.approx(scores[::-1], rel=1e-5, abs=1e-5)
    assert pseudo_log_likelihood(mlm_model, tok, []) == []


def test_pll_of_ids_scores_encoded_sequences(tok, mlm_model):
    encoded = [tok.encode(t) for t in TEXTS]
    expected = pseudo_log_likelihood(mlm_model, tok, TEXTS)
    assert pll_of_ids(mlm_model, encoded, mask_id=tok.mask_id, pad_id=tok.pad_id) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    as_tensors = [torch.tensor(ids) for ids in encoded]
    assert pll_of_ids(mlm_model, as_tensors, mask_id=tok.mask_id, pad_id=tok.pad_id, batch_size=3) == pytest.approx(
        expected, rel=1e-5, abs=1e-5)
    # nothing between [CLS] and [SEP]: nothing scored, 0
    assert pll_of_ids(mlm_model, [[tok.cls_id, tok.sep_id], encoded[0]], mask_id=tok.mask_id, pad_id=tok.pad_id) == \
        pytest.approx([0.0, expected[0]], rel=1e-5, abs=1e-5)
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            pll_of_ids(mlm_model, encoded, mask_id=tok.mask_id, pad_id=tok.pad_id, batch_size=bad)


def test_pll_depends_on_the_order_of_the_words(tok, mlm_model):
    a, b = pseudo_log_likelihood(mlm_model, tok, ["the new tensor .", "new the tensor ."])
    assert a != pytest.approx(b, abs=1e-3)


def test_pll_errors(tok, mlm_model, causal_model):
    with pytest.raises(ValueError, match="pseudo_log_likelihood needs a bidirectional MaskedLM"):
        pseudo_log_likelihood(causal_model, tok, ["the tensor"])
    with pytest.raises(ValueError, match="pseudo_log_likelihood needs a bidirectional MaskedLM"):
        pseudo_log_likelihood(mlm_model.encoder, tok, ["the tensor"])
    with pytest.raises(ValueError, match="texts must be a list of str; wrap a single text"):
        pseudo_log_likelihood(mlm_model, tok, "the tensor")
    with pytest.raises(ValueError, match="text 1 has 25 pieces with \\[CLS\\]/\\[SEP\\], more than max_len=24"):
        pseudo_log_likelihood(mlm_model, tok, ["the", " ".join(["tensor"] * 23)])
    with pytest.raises(ValueError, match="text 0 .* has no piece to score"):
        pseudo_log_likelihood(mlm_model, tok, [""])
    # exactly max_len pieces is fine
    assert len(pseudo_log_likelihood(mlm_model, tok, [" ".join(["tensor"] * 22)])) == 1


def naive_cll(model, tok, text: str) -> float:
    model.eval()
    ids = torch.tensor(tok.encode(text))
    with torch.no_grad():
        logits = model(ids[None]).logits[0]
    # the prediction at t - 1 for every piece t between [CLS] and [SEP]
    return -float(F.cross_entropy(logits[: len(ids) - 2].double(), ids[1:-1], reduction="sum"))


def test_causal_log_likelihood_matches_cross_entropy(tok, causal_model):
    causal_model.train()
    scores = causal_log_likelihood(causal_model, tok, TEXTS)
    assert causal_model.training
    assert scores == pytest.approx([naive_cll(causal_model, tok, t) for t in TEXTS], rel=1e-5, abs=1e-5)
    assert causal_log_likelihood(causal_model, tok, TEXTS, batch_size=1) == pytest.approx(scores, rel=1e-5, abs=1e-5)
    assert causal_log_likelihood(causal_model, tok, TEXTS, batch_size=3) == pytest.approx(scores, rel=1e-5, abs=1e-5)
    # a true log-likelihood: the score of a text is the score of its prefix plus the rest (chain rule)
    ids = tok.encode("a new tensor with the same shape .")
    with torch.no_grad():
        logp = causal_model.eval()(torch.tensor([ids])).logits[0].log_softmax(-1)
    prefix = float(sum(logp[t - 1, ids[t]] for t in range(1, 4)))
    # [SEP] is not scored, and a causal model does not look ahead: the prefix alone scores the same
    assert causal_log_likelihood(causal_model, tok, ["a new tensor"])[0] == pytest.approx(prefix, rel=1e-5)
    assert scores[1] == pytest.approx(prefix + float(sum(logp[t - 1, ids[t]] for t in range(4, len(ids) - 1))), rel=1e-5)


def test_causal_log_likelihood_errors(tok, mlm_model, causal_model):
    with pytest.raises(ValueError, match="causal_log_likelihood needs a causal model"):
        causal_log_likelihood(mlm_model, tok, ["the tensor"])
    with pytest.raises(ValueError, match="texts must be a list of str"):
        causal_log_likelihood(causal_model, tok, "the tensor")
    with pytest.raises(ValueError, match="more than max_len=24"):
        causal_log_likelihood(causal_model, tok, [" ".join(["tensor"] * 30)])


# -- sentences and minimal pairs -------------------------------------------------------------------


def test_sentences():
    texts = ["First one. Second one!  Third,\nstill third? Fourth", "   ", "no split here. lower case follows. Done."]
    assert sentences(texts) == ["First one.", "Second one!", "Third, still third?", "Fourth",
                                "no split here. lower case follows.", "Done."]
    assert sentences([]) == []
    with pytest.raises(ValueError, match="texts must be a list of str"):
        sentences("One. Two.")


def test_minimal_pairs_swap_two_neighbouring_words(tok):
    _, texts, _ = tiny_tokenizer_and_texts(n_train=60)
    pairs = minimal_pairs(texts, tok, n=20, seed=0)
    assert len(pairs) == 20 and len(set(pairs)) == 20
    originals = {" ".join(tok.words(t)) for t in texts}
    for original, swapped in pairs:
        a, b = original.split(), swapped.split()
        assert original in originals
        assert Counter(a) == Counter(b) and len(a) == len(b) and 6 <= len(a) <= 20
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        assert len(diff) == 2 and diff[1] == diff[0] + 1, "one swap of neighbours"
        i = diff[0]
        assert (b[i], b[i + 1]) == (a[i + 1], a[i])
        assert tok.words(swapped) == b, "both sides tokenise to the same pieces, reordered"
    assert minimal_pairs(texts, tok, n=20, seed=0) == pairs, "deterministic for a seed"
    assert minimal_pairs(texts, tok, n=20, seed=1) != pairs
    short = minimal_pairs(texts, tok, n=5, min_words=4, max_words=6)
    assert all(4 <= len(o.split()) <= 6 for o, _ in short)


def test_minimal_pairs_swap_every_position(tok):
    text = "the new tensor of a layer"
    swapped_at = set()
    for seed in range(60):
        [(original, swapped)] = minimal_pairs([text], tok, n=1, seed=seed)
        a, b = original.split(), swapped.split()
        swapped_at.add(min(i for i in range(6) if a[i] != b[i]))
    assert swapped_at == {0, 1, 2, 3, 4}, "any neighbouring pair, the first and the last included"


def test_minimal_pairs_skip_equal_neighbours_and_errors(tok):
    for seed in range(5):  # a swap of two equal words changes nothing: that text is never used
        [(original, swapped)] = minimal_pairs(["tensor tensor tensor tensor tensor tensor", "the new tensor of a layer"],
                                              tok, n=1, seed=seed)
        assert original == "the new tensor of a layer" and swapped != original
    with pytest.raises(ValueError, match="only 0 texts of 6–20 words make a pair, 1 were asked for"):
        minimal_pairs(["tensor tensor tensor tensor tensor tensor", "too short ."], tok, n=1)
    _, texts, _ = tiny_tokenizer_and_texts(n_train=10)
    with pytest.raises(ValueError, match="were asked for; pass more texts or a smaller n"):
        minimal_pairs(texts, tok, n=50)
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        minimal_pairs(texts, tok, n=0)


def test_pair_accuracy():
    assert pair_accuracy([1.0, 2.0, 3.0], [0.0, 2.0, 4.0]) == pytest.approx(1 / 3)  # a tie is not a win
    assert pair_accuracy([-1.0, -2.0], [-3.0, -5.0]) == 1.0
    assert pair_accuracy([0.0], [1.0]) == 0.0
    with pytest.raises(ValueError, match="need two equally long, non-empty lists of scores, got 2 and 1"):
        pair_accuracy([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="got 0 and 0"):
        pair_accuracy([], [])


def test_a_trained_mlm_prefers_the_original_order():
    """End to end on the tiny corpus: train briefly, then the PLL prefers real word order more often than not."""
    from mlm_lessons.training import TrainConfig, pretrain

    tok, _, _ = tiny_tokenizer_and_texts()
    # texts with a fixed word order, so that order is learnable: "the X of a Y is the same ."
    rng = random.Random(0)
    nouns = ["tensor", "gradient", "module", "layer", "weight", "bias", "input", "output"]
    ordered = [f"the {rng.choice(nouns)} of a {rng.choice(nouns)} is the same ." for _ in range(300)]
    config = TrainConfig(max_steps=60, batch_size=16, max_length=16, lr=3e-3, warmup_steps=5, eval_every=60,
                         eval_sequences=16, log_every=60, device="cpu", seed=0)
    result = pretrain(EncoderConfig(vocab_size=tok.vocab_size, max_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64,
                                    dropout=0.0), tok, ordered, ordered[:20], config, progress=False)
    pairs = minimal_pairs(ordered[:100], tok, n=20, seed=0)
    original = pseudo_log_likelihood(result.model, tok, [a for a, _ in pairs])
    swapped = pseudo_log_likelihood(result.model, tok, [b for _, b in pairs])
    assert pair_accuracy(original, swapped) >= 0.9
