"""The masked-loss objective against PyTorch's cross_entropy, its edge cases and the baselines."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import mlm_lessons as mlm
from mlm_lessons.objective import masked_accuracy, masked_lm_loss


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.integers(1, 20), st.integers(2, 50), st.floats(0.05, 1.0), st.integers(0, 2**31),
       st.sampled_from([torch.float64, torch.float32]))
def test_equals_cross_entropy(batch, length, vocab, share, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(batch, length, vocab, generator=g, dtype=torch.float64) * 3).to(dtype)
    labels = torch.randint(0, vocab, (batch, length), generator=g)
    labels[torch.rand(batch, length, generator=g) > share] = -100
    if (labels == -100).all():
        labels[0, 0] = 1
    reference = F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=-100).item()
    # float64: agreement to 1e-6 absolute; float32: to 1e-6 relative (a loss near 10 has an ulp near 1e-6,
    # and the two implementations add up in a different order)
    tolerance = 1e-6 * (1 if dtype == torch.float64 else max(1.0, abs(reference)))
    rows = logits[labels != -100]  # the same loss from logits computed only at the labelled positions
    for ours in (masked_lm_loss(logits, labels), masked_lm_loss(rows, labels), masked_lm_loss(rows, labels[labels != -100])):
        assert ours.dtype == dtype
        assert abs(ours.item() - reference) <= tolerance


def test_half_precision_logits_are_upcast():
    logits = torch.randn(2, 3, 50, dtype=torch.bfloat16)
    labels = torch.randint(0, 50, (2, 3))
    loss = masked_lm_loss(logits, labels)
    assert loss.dtype == torch.float32
    assert abs(loss.item() - F.cross_entropy(logits.float().reshape(-1, 50), labels.reshape(-1)).item()) < 1e-6


def test_gradients_equal_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(4, 9, 30, requires_grad=True)
    labels = torch.randint(0, 30, (4, 9))
    labels[:, ::2] = -100
    masked_lm_loss(logits, labels).backward()
    ours = logits.grad.clone()
    logits.grad = None
    F.cross_entropy(logits.reshape(-1, 30), labels.reshape(-1)).backward()
    assert torch.allclose(ours, logits.grad, atol=1e-7)


def test_nothing_masked_gives_zero_with_a_gradient_not_nan():
    logits = torch.randn(2, 5, 11, requires_grad=True)
    labels = torch.full((2, 5), -100)
    assert math.isnan(F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1)).item())  # what we avoid
    loss = masked_lm_loss(logits, labels)
    assert loss.item() == 0.0 and str(loss.item()) == "0.0" and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    assert masked_lm_loss(torch.randn(0, 11), labels).item() == 0.0
    assert masked_lm_loss(logits, labels, reduction="sequence").item() == 0.0


def test_reductions():
    logits = torch.zeros(2, 4, 5)  # uniform: every labelled position costs log 5
    logits[0, 0, 1] = 10.0  # sequence 0's first label (1) is almost certain
    labels = torch.tensor([[1, 2, -100, -100], [3, 3, 3, 3]])
    per_position = -F.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    token_mean = per_position[labels != -100].mean()
    sequence_mean = (per_position[0, :2].mean() + per_position[1].mean()) / 2
    assert masked_lm_loss(logits, labels).item() == pytest.approx(token_mean.item())
    assert masked_lm_loss(logits, labels, reduction="sequence").item() == pytest.approx(sequence_mean.item())
    assert masked_lm_loss(logits, labels, reduction="sum").item() == pytest.approx(per_position[labels != -100].sum().item())
    assert masked_lm_loss(logits, labels, reduction="sequence").item() < masked_lm_loss(logits, labels).item()


@pytest.mark.parametrize(
    "logits, labels, kwargs, message",
    [
        (torch.randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long), {}, r"need labels of shape \(2, 3\), got \(2, 4\)"),
        (torch.randn(2, 3, 5), torch.zeros(2, 3), {}, "labels must be a LongTensor"),
        (torch.randn(4, 5), torch.tensor([[1, -100, 2]]), {}, r"hold 2 labelled positions"),
        (torch.randn(5), torch.zeros(5, dtype=torch.long), {}, "logits must be"),
        (torch.randn(1, 2, 5), torch.tensor([[7, -100]]), {}, r"label 7 is outside the vocabulary \[0, 5\)"),
        (torch.randn(1, 2, 5), torch.tensor([[-5, -100]]), {}, r"label -5 is outside"),
        (torch.randn(1, 2, 5), torch.tensor([[1, 1]]), {"reduction": "mean"}, "reduction must be"),
        (torch.randn(2, 5), torch.tensor([1, 1]), {"reduction": "sequence"}, "needs logits of shape"),
    ],
)
def test_bad_input(logits, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        masked_lm_loss(logits, labels, **kwargs)


def test_accuracy_and_perplexity():
    logits = torch.tensor([[[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])
    assert masked_accuracy(logits, torch.tensor([[1, 1, -100]])) == 0.5
    assert math.isnan(masked_accuracy(logits, torch.full((1, 3), -100)))
    assert mlm.perplexity(math.log(8000)) == pytest.approx(8000)
    assert mlm.perplexity(torch.tensor(0.0)) == 1.0
    with pytest.raises(ValueError, match="got -1.0"):
        mlm.perplexity(-1.0)


def test_baselines():
    assert mlm.uniform_baseline(8000) == pytest.approx(math.log(8000))
    assert mlm.unigram_baseline(torch.tensor([5, 5, 5, 5])) == pytest.approx(math.log(4))
    assert mlm.unigram_baseline(torch.tensor([0, 3, 1])) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    # cross-entropy on other counts, Laplace-smoothed: p = (train + 1) / (total + V)
    expected = -(0.5 * math.log(4 / 7) + 0.5 * math.log(1 / 7))
    assert mlm.unigram_baseline(torch.tensor([3, 0, 1]), torch.tensor([1, 1, 0])) == pytest.approx(expected)
    with pytest.raises(ValueError, match="positive total"):
        mlm.unigram_baseline(torch.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        mlm.unigram_baseline(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="vocab_size must be a positive int"):
        mlm.uniform_baseline(0)


def test_token_counts_skip_specials(general_tok):
    texts = ["The tensor.", "A gradient of the tensor."]
    counts = mlm.token_counts(general_tok, texts)
    assert counts[:5].sum() == 0
    pieces = sum(len(general_tok.tokenize(t)) for t in texts)
    assert counts.sum() == pieces
    assert counts[general_tok.token_to_id("the")] == 2
    assert mlm.unigram_baseline(counts) < mlm.uniform_baseline(general_tok.vocab_size)


def _fated_batch(counts, n=400, length=40, seed=0, config=None):
    """Sequences drawn from the unigram of ``counts`` (ids 3.. ; 0-2 special), masked with their fates."""
    config = config or mlm.MaskingConfig(mask_ratio=0.4)
    g = torch.Generator().manual_seed(seed)
    probs = torch.as_tensor(counts, dtype=torch.float)
    ids = torch.multinomial(probs, n * length, replacement=True, generator=g).view(n, length)
    ids[:, 0] = 1  # [CLS]
    masked = mlm.mask_tokens_explained(ids, config, mask_token_id=2, vocab_size=len(counts), special_ids=(0, 1, 2), generator=g)
    return {"input_ids": masked.inputs, "labels": masked.labels, "fate": masked.fate}, config


def test_context_free_baselines_by_hand():
    counts = torch.tensor([0, 0, 0, 6, 3, 1])  # three specials, then words a, b, c
    u = (counts.double() + 1) / (counts.sum() + 6)
    config = mlm.MaskingConfig()  # 80/10/10
    batch = {  # a [MASK] over a, a random b over c, a kept c, an untouched position
        "input_ids": torch.tensor([[1, 2, 4, 5, 3]]),
        "labels": torch.tensor([[-100, 3, 5, 5, -100]]),
        "fate": torch.tensor([[0, mlm.Fate.MASKED, mlm.Fate.RANDOM, mlm.Fate.KEPT, 0]]),
    }
    got = mlm.context_free_baselines([batch], counts, config, special_ids=(0, 1, 2))
    alpha = lambda w: 0.1 * u[w] / (0.1 * u[w] + 0.1 / 3)  # noqa: E731  pool: 3 non-special tokens
    mask_loss = -math.log(u[3])
    random_loss = -math.log((1 - alpha(4)) * u[5])  # b shown, c the answer: no copy
    kept_loss = -math.log(alpha(5) + (1 - alpha(5)) * u[5])
    assert got["mask_loss"] == pytest.approx(mask_loss) and got["random_loss"] == pytest.approx(random_loss)
    assert got["kept_loss"] == pytest.approx(kept_loss)
    assert got["loss"] == pytest.approx((mask_loss + random_loss + kept_loss) / 3) and got["positions"] == 3
    assert got["unigram_loss"] == pytest.approx(-(math.log(u[3]) + 2 * math.log(u[5])) / 3)
    # accuracy: [MASK] → the most frequent word (a: right); b shown → copy b or a? c is right either way: wrong
    assert got["mask_accuracy"] == 1.0 and got["random_accuracy"] == 0.0
    assert got["kept_accuracy"] == float(alpha(5) + (1 - alpha(5)) * u[5] > (1 - alpha(5)) * u[3])


def test_context_free_baselines_are_the_best_context_free_guess():
    """On text drawn from a known unigram, no other copy weight does better than Bayes' α_w, and the
    mixed metric sits far below the unigram: copying a visible token is free."""
    counts = torch.tensor([0, 0, 0] + [int(1000 / (r + 1)) for r in range(30)])
    batch, config = _fated_batch(counts)
    best = mlm.context_free_baselines([batch], counts, config, special_ids=(0, 1, 2))
    u = (counts.double() + 1) / (counts.sum() + len(counts))
    keep = batch["labels"] != -100
    shown, labels, fate = batch["input_ids"][keep], batch["labels"][keep], batch["fate"][keep]
    visible = fate != mlm.Fate.MASKED
    base_alpha = 0.1 * u[shown] / (0.1 * u[shown] + 0.1 / 30)
    for scale in (0.0, 0.7, 1.3, 10.0):
        alpha = (base_alpha * scale).clamp(max=1 - 1e-9)
        p = alpha * (labels == shown) + (1 - alpha) * u[labels]
        other = float(-p[visible].log().mean())
        ours = (best["random_loss"] * best["random_positions"] + best["kept_loss"] * best["kept_positions"]) / int(visible.sum())
        assert ours <= other + 1e-3, scale
    assert best["mask_loss"] == pytest.approx(float(-u[labels[~visible]].log().mean()))
    assert best["loss"] < best["unigram_loss"] - 0.1 and best["kept_loss"] < 1.0 < best["mask_loss"]


def test_context_free_baselines_bad_input():
    counts = torch.tensor([0, 0, 0, 5, 5])
    batch, config = _fated_batch(counts, n=4, length=6)
    with pytest.raises(ValueError, match="every batch needs the 'fate'"):
        mlm.context_free_baselines([{k: v for k, v in batch.items() if k != "fate"}], counts, config, special_ids=(0, 1, 2))
    with pytest.raises(ValueError, match="MaskingConfig the batches were masked with"):
        mlm.context_free_baselines([batch], counts, 0.15, special_ids=(0, 1, 2))
    with pytest.raises(ValueError, match="outside train_counts"):
        mlm.context_free_baselines([batch], counts[:4], config, special_ids=(0, 1, 2))
