"""Generation with a masked LM (Mask-Predict, sequential filling), with a causal model, and the
measures of what a generated text looks like."""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.generation import (
    attested_bigrams, distinct_ngrams, fill_sequentially, generate_causal, mask_predict, piece_bigrams, remask_schedule,
    repetition_rate, two_mask_test, word_bigrams,
)
from mlm_lessons.model import EncoderConfig, MaskedLM

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import WORDS, confident_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "the tensor [MASK] of a [MASK] [MASK] shape ."


@pytest.fixture(scope="module")
def tok():
    return mlm.tokenizer_from_vocab(WORDS + ["."])


def make_model(tok, causal=False, seed=0, max_len=16) -> MaskedLM:
    return confident_model(tok, causal=causal, seed=seed, max_len=max_len, std=0.5)


@pytest.fixture(scope="module")
def mlm_model(tok):
    return make_model(tok)


@pytest.fixture(scope="module")
def causal_model(tok):
    return make_model(tok, causal=True)


def counting(model):
    """Count the forward passes of ``model``."""
    calls = []
    forward = model.forward

    def wrapped(*args, **kwargs):
        calls.append(args[0].clone())
        return forward(*args, **kwargs)

    model.forward = wrapped
    return calls


def best_piece(model, ids: torch.Tensor, banned) -> tuple[torch.Tensor, torch.Tensor]:
    """(most likely piece, its probability) at every position, specials banned: a plain reference."""
    with torch.no_grad():
        logits = model(ids[None]).logits[0].clone()
    logits[:, sorted(banned)] = float("-inf")
    p = logits.softmax(-1)
    return p.argmax(-1), p.max(-1).values


# -- the schedule ------------------------------------------------------------------------------------


def test_remask_schedule_matches_the_formula():
    for n in range(0, 40):
        for T in range(1, 15):
            s = remask_schedule(n, T)
            assert s == [math.floor(n * (T - t) / T) for t in range(1, T + 1)], (n, T)
            assert len(s) == T and s[-1] == 0 and s == sorted(s, reverse=True) and all(0 <= k < max(n, 1) for k in s)
    assert remask_schedule(10, 4) == [7, 5, 2, 0]  # Ghazvininejad et al.: n (T - t) / T, rounded down
    assert remask_schedule(10, 1) == [0]


@pytest.mark.parametrize("n, iterations", [(-1, 3), (3, 0), (2.0, 3), (3, 1.5), (True, 3), (3, None)])
def test_remask_schedule_errors(n, iterations):
    with pytest.raises(ValueError, match="must be an int >= "):
        remask_schedule(n, iterations)


# -- Mask-Predict --------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 5, 14])
def test_mask_predict_from_scratch_gives_a_clean_sequence(tok, mlm_model, length):
    mlm_model.train()
    g = mask_predict(mlm_model, tok, length, iterations=4)
    assert mlm_model.training, "the model's mode is restored"
    assert len(g.ids) == length + 2 and g.ids[0] == tok.cls_id and g.ids[-1] == tok.sep_id
    assert not set(g.ids[1:-1]) & set(tok.special_ids), "no [MASK], [PAD], [UNK], ... in the output"
    assert g.text == tok.decode(g.ids) and g.steps[0] == ["[CLS]"] + ["[MASK]"] * length + ["[SEP]"]
    assert g.steps[-1] == [tok.id_to_token(i) for i in g.ids]
    if length > 5:
        assert len(set(g.ids[1:-1])) > 1, "the fixture's predictions depend on the context"


def test_mask_predict_changes_only_the_masks(tok, mlm_model):
    start = tok.encode(TEXT)
    g = mask_predict(mlm_model, tok, TEXT, iterations=3)
    masked = [i for i, x in enumerate(start) if x == tok.mask_id]
    assert len(g.ids) == len(start) and len(masked) == 3
    assert all(g.ids[i] == x for i, x in enumerate(start) if i not in masked)
    assert all(g.ids[i] not in tok.special_ids for i in masked)
    for step in g.steps:  # no intermediate state touches the given pieces
        assert all(step[i] == tok.id_to_token(x) for i, x in enumerate(start) if i not in masked)


def test_one_iteration_is_one_parallel_prediction(tok, mlm_model):
    """iterations=1: each mask takes the most likely piece of a single forward pass."""
    start = torch.tensor(tok.encode(TEXT))
    mlm_model.eval()
    best, _ = best_piece(mlm_model, start, tok.special_ids)
    calls = counting(mlm_model)
    g = mask_predict(mlm_model, tok, TEXT, iterations=1)
    del mlm_model.forward
    assert len(calls) == 1 and len(g.steps) == 2
    expected = torch.where(start == tok.mask_id, best, start)
    assert g.ids == expected.tolist()


def reference_mask_predict(model, tok, ids: torch.Tensor, T: int) -> tuple[list[int], int]:
    """Mask-Predict written out plainly: (final ids, number of forward passes)."""
    model.eval()
    ids = ids.clone()
    targets = ids == tok.mask_id
    n = int(targets.sum())
    masked, probs, passes = targets.clone(), torch.zeros(len(ids)), 0
    for t in range(1, T + 1):
        best, p = best_piece(model, ids, tok.special_ids)
        passes += 1
        ids[masked], probs[masked] = best[masked], p[masked]
        k = n * (T - t) // T
        if k == 0:
            break
        positions = targets.nonzero().flatten()
        lowest = positions[probs[positions].argsort()[:k]]
        masked = torch.zeros_like(targets)
        masked[lowest] = True
        ids[masked] = tok.mask_id
    return ids.tolist(), passes


@pytest.mark.parametrize("length, iterations", [(6, 3), (10, 4), (2, 5), (14, 10), (5, 1)])
def test_mask_predict_matches_a_reference(tok, mlm_model, length, iterations):
    start = torch.tensor([tok.cls_id] + [tok.mask_id] * length + [tok.sep_id])
    expected, passes = reference_mask_predict(mlm_model, tok, start, iterations)
    calls = counting(mlm_model)
    g = mask_predict(mlm_model, tok, length, iterations=iterations)
    del mlm_model.forward
    assert g.ids == expected
    schedule = remask_schedule(length, iterations)
    assert passes == len(calls) == schedule.index(0) + 1
    # the states: start, then a prediction and (while the schedule says so) a re-masking per pass
    assert len(g.steps) == 1 + 2 * passes - 1
    remasked = g.steps[2::2]
    assert [s.count("[MASK]") for s in remasked] == schedule[: passes - 1]
    assert all("[MASK]" not in s for s in g.steps[1::2])


def test_mask_predict_sampling_is_reproducible(tok, mlm_model):
    def run(seed, temperature=1.0):
        return mask_predict(mlm_model, tok, 12, iterations=3, temperature=temperature,
                            generator=torch.Generator().manual_seed(seed)).ids

    assert run(0) == run(0) and run(5) == run(5)
    assert len({tuple(run(s)) for s in range(4)}) > 1, "different seeds sample differently"
    assert not set(run(1)[1:-1]) & set(tok.special_ids)
    assert run(0, temperature=0) == mask_predict(mlm_model, tok, 12, iterations=3).ids, "temperature 0: greedy"


def test_mask_predict_errors(tok, mlm_model, causal_model):
    with pytest.raises(ValueError, match="this model is causal"):
        mask_predict(causal_model, tok, 5)
    with pytest.raises(ValueError, match="the text must contain \\[MASK\\]"):
        mask_predict(mlm_model, tok, "the tensor .")
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        mask_predict(mlm_model, tok, 5, temperature=-0.5)
    with pytest.raises(ValueError, match="length must be between 1 and max_len - 2 = 14, got 0"):
        mask_predict(mlm_model, tok, 0)
    with pytest.raises(ValueError, match="got 15"):
        mask_predict(mlm_model, tok, 15)
    with pytest.raises(ValueError, match="start must be a length"):
        mask_predict(mlm_model, tok, [4, 4])
    with pytest.raises(ValueError, match="start must be a length"):
        mask_predict(mlm_model, tok, True)
    with pytest.raises(ValueError, match="iterations must be an int >= 1"):
        mask_predict(mlm_model, tok, 5, iterations=0)
    with pytest.raises(ValueError, match="model must be a MaskedLM"):
        mask_predict(mlm_model.encoder, tok, 5)


# -- sequential filling --------------------------------------------------------------------------------


def _ids(tok, pieces):
    return torch.tensor([tok.token_to_id(p) for p in pieces])


@pytest.mark.parametrize("order", ["left-to-right", "confident"])
def test_fill_sequentially_fills_one_mask_per_step(tok, mlm_model, order):
    mlm_model.eval()
    start = tok.encode(TEXT)
    g = fill_sequentially(mlm_model, tok, TEXT, order=order)
    n = start.count(tok.mask_id)
    assert len(g.steps) == n + 1 and "[MASK]" not in g.steps[-1]
    assert [s.count("[MASK]") for s in g.steps] == list(range(n, -1, -1))
    assert g.steps[-1] == [tok.id_to_token(i) for i in g.ids] and len(g.ids) == len(start)
    filled = []
    for before, after in zip(g.steps, g.steps[1:]):
        changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        filled += changed
        assert len(changed) == 1 and before[changed[0]] == "[MASK]"
        pos = changed[0]
        open_positions = [i for i, p in enumerate(before) if p == "[MASK]"]
        best, prob = best_piece(mlm_model, _ids(tok, before), tok.special_ids)
        if order == "left-to-right":
            assert pos == open_positions[0]
        else:  # the position the model is surest of, given the choices so far
            assert pos == max(open_positions, key=lambda i: float(prob[i]))
        assert after[pos] == tok.id_to_token(int(best[pos]))
    assert sorted(filled) == [i for i, x in enumerate(start) if x == tok.mask_id]
    assert (filled == sorted(filled)) == (order == "left-to-right"), "this fixture is surest of a later mask first"


def test_fill_sequentially_from_scratch_and_errors(tok, mlm_model, causal_model):
    g = fill_sequentially(mlm_model, tok, 6, order="confident", temperature=0.8, generator=torch.Generator().manual_seed(0))
    assert len(g.ids) == 8 and not set(g.ids[1:-1]) & set(tok.special_ids) and len(g.steps) == 7
    again = fill_sequentially(mlm_model, tok, 6, order="confident", temperature=0.8, generator=torch.Generator().manual_seed(0))
    assert again.ids == g.ids
    with pytest.raises(ValueError, match="order must be 'left-to-right' or 'confident', got 'random'"):
        fill_sequentially(mlm_model, tok, 4, order="random")
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        fill_sequentially(mlm_model, tok, 4, temperature=-1)
    with pytest.raises(ValueError, match="this model is causal"):
        fill_sequentially(causal_model, tok, 4)


# -- causal generation ----------------------------------------------------------------------------------


def test_generate_causal_greedy_matches_a_loop(tok, causal_model):
    causal_model.train()
    g = generate_causal(causal_model, tok, "the tensor", max_new_tokens=8, temperature=0)
    assert causal_model.training
    causal_model.eval()
    ids = [tok.cls_id] + tok.encode("the tensor", add_special_tokens=False)
    assert g.ids[:3] == ids
    banned = set(tok.special_ids) - {tok.sep_id}
    for _ in range(8):
        with torch.no_grad():
            logits = causal_model(torch.tensor([ids])).logits[0, -1].clone()
        logits[sorted(banned)] = float("-inf")
        ids.append(int(logits.argmax()))
        if ids[-1] == tok.sep_id:
            break
    assert g.ids == ids and g.text == tok.decode(ids)
    assert len(g.ids) <= 3 + 8 and (len(g.ids) == 3 + 8 or g.ids[-1] == tok.sep_id)


def test_generate_causal_stops_at_sep_or_the_budget(tok):
    m = make_model(tok, causal=True)
    with torch.no_grad():
        m.head_bias[tok.sep_id] = 100.0  # [SEP] first: done at once
        m.head_bias[tok.mask_id] = 200.0  # specials other than [SEP] are never proposed
    g = generate_causal(m, tok, "the", max_new_tokens=5, temperature=0)
    assert g.ids == [tok.cls_id, tok.token_to_id("the"), tok.sep_id]
    with torch.no_grad():
        m.head_bias[tok.sep_id] = -100.0  # never [SEP]: runs to max_new_tokens
    g = generate_causal(m, tok, "the", max_new_tokens=5, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert len(g.ids) == 2 + 5 and not set(g.ids[1:]) & set(tok.special_ids)
    g = generate_causal(m, tok, "", max_new_tokens=40, temperature=0)
    assert len(g.ids) == m.config.max_len and g.ids[0] == tok.cls_id, "the model's max_len caps the length"
    with pytest.raises(ValueError, match="leaves no room below max_len=16; shorten it"):
        generate_causal(m, tok, " ".join(["the"] * 15), max_new_tokens=5)


def test_generate_causal_sampling_is_reproducible(tok, causal_model):
    def run(seed):
        return generate_causal(causal_model, tok, "a", max_new_tokens=10, temperature=1.5,
                               generator=torch.Generator().manual_seed(seed)).ids

    assert run(3) == run(3)
    assert len({tuple(run(s)) for s in range(4)}) > 1


def test_generate_causal_errors(tok, mlm_model, causal_model):
    with pytest.raises(ValueError, match="generate_causal needs a causal model"):
        generate_causal(mlm_model, tok, "the")
    with pytest.raises(ValueError, match="max_new_tokens must be a positive int, got 0"):
        generate_causal(causal_model, tok, "the", max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        generate_causal(causal_model, tok, "the", temperature=-1)


# -- measures ---------------------------------------------------------------------------------------------


def test_repetition_rate_by_hand(tok):
    cls, sep, pad = tok.cls_id, tok.sep_id, tok.pad_id
    assert repetition_rate(tok, [cls, 7, 7, 8, 7, sep]) == pytest.approx(1 / 3)  # (7,7) of (7,7) (7,8) (8,7)
    assert repetition_rate(tok, [cls, 7, 7, 7, 7, sep, pad]) == 1.0
    assert repetition_rate(tok, [cls, 7, 8, 9, sep]) == 0.0
    assert repetition_rate(tok, [cls, 7, tok.mask_id, 7, sep]) == 1.0, "specials are left out, not counted as pieces"
    assert repetition_rate(tok, [cls, 7, sep]) == 0.0 and repetition_rate(tok, []) == 0.0


def test_distinct_ngrams_by_hand(tok):
    cls, sep = tok.cls_id, tok.sep_id
    assert distinct_ngrams(tok, [cls, 7, 7, 7, 7, sep]) == pytest.approx(1 / 3)
    assert distinct_ngrams(tok, [cls, 7, 7, 7, 7, sep], n=1) == pytest.approx(1 / 4)
    assert distinct_ngrams(tok, [cls, 7, 8, 7, 8, 7, sep]) == pytest.approx(2 / 4)  # 78 87 78 87
    assert distinct_ngrams(tok, [cls, 7, 8, 9, 7, 8, sep], n=3) == pytest.approx(1.0)
    assert distinct_ngrams(tok, [cls, 7, sep]) == 1.0  # no bigram at all


def test_word_bigrams_and_attested_share(tok):
    counts = word_bigrams(["The tensor of the tensor.", "a new tensor"], tok)
    assert counts == Counter({("the", "tensor"): 2, ("tensor", "of"): 1, ("of", "the"): 1, ("tensor", "."): 1,
                              ("a", "new"): 1, ("new", "tensor"): 1})
    # pairs of "the new tensor ." : (the, new) no, (new, tensor) yes, (tensor, .) yes
    assert attested_bigrams("the new tensor .", tok, counts) == pytest.approx(2 / 3)
    assert attested_bigrams("tensor of the tensor", tok, counts) == 1.0
    assert attested_bigrams("bias weight", tok, counts) == 0.0
    assert attested_bigrams("tensor", tok, counts) == 0.0 and word_bigrams([], tok) == Counter()


def test_piece_bigrams_by_hand():
    counts = piece_bigrams([[2, 7, 8, 3], {"input_ids": [2, 7, 8, 7, 8, 3], "word_ids": [None, 0, 1, 2, 3, None]}, [5], []])
    assert counts == Counter({(2, 7): 2, (7, 8): 3, (8, 3): 2, (8, 7): 1})


# -- the two-mask test -------------------------------------------------------------------------------------


def reference_two_mask(model, tok, texts, n, reference, seed):
    """The same draws (texts and positions), with each prediction made by :func:`best_piece`."""
    import random

    model.eval()
    rng = random.Random(seed)
    candidates = [ids for ids in (tok.encode(t, max_length=model.config.max_len) for t in texts) if len(ids) >= 6]
    tally = Counter()
    for ids in rng.sample(candidates, n):
        t = rng.randrange(1, len(ids) - 2)
        x = torch.tensor(ids)
        x[t] = x[t + 1] = tok.mask_id
        best, _ = best_piece(model, x, tok.special_ids)
        parallel = (int(best[t]), int(best[t + 1]))
        x[t] = parallel[0]
        best, _ = best_piece(model, x, tok.special_ids)
        sequential = (parallel[0], int(best[t + 1]))
        for name, pair in (("parallel", parallel), ("sequential", sequential)):
            tally[f"{name}_right"] += pair == (ids[t], ids[t + 1])
            tally[f"{name}_attested"] += pair in reference
    return {k: tally[k] / n for k in ("parallel_right", "sequential_right", "parallel_attested", "sequential_attested")}


def test_two_mask_test_matches_a_reference(tok, mlm_model):
    from tiny_data import tiny_tokenizer_and_texts

    _, texts, _ = tiny_tokenizer_and_texts(n_train=40)
    # a reference with some of the model's pairs in it, so that the attested shares are neither 0 nor 1
    reference = piece_bigrams(tok.encode(t) for t in texts[:20])
    mlm_model.train()
    result = two_mask_test(mlm_model, tok, texts, n=25, reference=reference, seed=3)
    assert mlm_model.training
    expected = reference_two_mask(mlm_model, tok, texts, 25, reference, seed=3)
    assert result == {**expected, "pairs": 25}
    assert result == two_mask_test(mlm_model, tok, texts, n=25, reference=reference, seed=3), "deterministic for a seed"
    assert all(0 <= result[k] <= 1 for k in expected)
    everything = piece_bigrams([[a, b] for a in range(tok.vocab_size) for b in range(tok.vocab_size)])
    full = two_mask_test(mlm_model, tok, texts, n=25, reference=everything, seed=3)
    assert full["parallel_attested"] == full["sequential_attested"] == 1.0, "every pair is attested in a reference of all pairs"
    assert two_mask_test(mlm_model, tok, texts, n=25, reference=Counter(), seed=3)["parallel_attested"] == 0.0


def test_two_mask_test_counts_right_pairs(tok):
    """A stub model that always proposes "tensor": right exactly on the pairs "tensor tensor"."""
    from mlm_lessons.model import MaskedLMOutput

    tensor = tok.token_to_id("tensor")

    class Tensors(MaskedLM):
        def forward(self, input_ids, attention_mask=None, labels=None):
            logits = torch.full((*input_ids.shape, self.config.vocab_size), -10.0)
            logits[..., tensor] = 10.0
            return MaskedLMOutput(None, logits)

    stub = Tensors(EncoderConfig(vocab_size=tok.vocab_size, max_len=16, d_model=8, n_layers=1, n_heads=1, d_ff=8))
    texts = ["tensor tensor tensor tensor", "the the the the", "the tensor tensor the"]
    result = two_mask_test(stub, tok, texts[:2], n=2, reference=Counter({(tensor, tensor): 1}))
    assert result == {"parallel_right": 0.5, "sequential_right": 0.5, "parallel_attested": 1.0, "sequential_attested": 1.0,
                      "pairs": 2}
    # "the tensor tensor the": right only when the masks fall on the middle pair, one of the three positions
    hits = [two_mask_test(stub, tok, texts[2:], n=1, reference=Counter(), seed=s)["parallel_right"] for s in range(30)]
    assert set(hits) == {0.0, 1.0}
    # "tensor the tensor the": the left piece may be right, the pair never is
    assert {two_mask_test(stub, tok, ["tensor the tensor the"], n=1, reference=Counter(), seed=s)["sequential_right"]
            for s in range(30)} == {0.0}


def test_two_mask_test_errors(tok, mlm_model, causal_model):
    texts = ["the tensor of a .", "a new tensor"]  # 5 and 3 pieces, 7 and 5 with [CLS]/[SEP]: one candidate
    assert two_mask_test(mlm_model, tok, texts, n=1, reference=Counter())["pairs"] == 1
    with pytest.raises(ValueError, match="only 1 texts have 4 pieces or more; pass more texts or a smaller n"):
        two_mask_test(mlm_model, tok, texts, n=2, reference=Counter())
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        two_mask_test(mlm_model, tok, texts, n=0, reference=Counter())
    with pytest.raises(ValueError, match="two_mask_test needs a bidirectional MaskedLM"):
        two_mask_test(causal_model, tok, texts, n=1, reference=Counter())
