"""Causal attention, next-token labels, static masking, the causal objective, frozen-encoder probes
and the refusal to export a causal model."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mlm_lessons as mlm
from mlm_lessons.finetuning import FinetuneConfig, build_model, finetune
from mlm_lessons.masking import IGNORE_INDEX, next_token_labels, pad_examples
from mlm_lessons.model import EncoderConfig, MaskedLM, language_model
from mlm_lessons.tasks import ClassificationExample, TaskData
from mlm_lessons.batches import static_mask, step_indices
from mlm_lessons.training import TrainConfig, eval_batches, evaluate, pretrain

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import WORDS, tiny_tokenizer_and_texts  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_MODEL = dict(max_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64)


def model(causal: bool, vocab_size: int = 50, seed: int = 0, **kw) -> MaskedLM:
    torch.manual_seed(seed)
    config = dict(max_len=16, d_model=32, n_layers=2, n_heads=2, d_ff=64, dropout=0.0)
    return language_model(EncoderConfig(vocab_size=vocab_size, causal=causal, **{**config, **kw})).eval()


def random_ids(b=1, t=12, vocab=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, vocab, (b, t), generator=g)


def tiny_config(**kw) -> TrainConfig:
    base = dict(max_steps=6, batch_size=8, max_length=16, warmup_steps=1, eval_every=100, eval_sequences=16,
                log_every=1, device="cpu", seed=1)
    return TrainConfig(**{**base, **kw})


# -- causal attention ------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_causal_model_ignores_the_right_context(norm):
    m = model(True, norm=norm)
    ids = random_ids()
    with torch.no_grad():
        base = m.encoder(ids)
        for j in range(ids.shape[1]):
            changed = ids.clone()
            changed[0, j] = 5 if ids[0, j] != 5 else 6
            out = m.encoder(changed)
            torch.testing.assert_close(out[0, :j], base[0, :j], rtol=0, atol=1e-6)  # left of j: untouched
            moved = (out[0, j:] - base[0, j:]).abs().amax(-1)
            assert (moved > 1e-4).all(), f"positions >= {j} must see the change at {j}"


def test_bidirectional_model_sees_the_right_context():
    m = model(False)
    ids = random_ids()
    changed = ids.clone()
    changed[0, -1] = 5 if ids[0, -1] != 5 else 6
    with torch.no_grad():
        moved = (m.encoder(changed) - m.encoder(ids)).abs().amax(-1)[0]
    assert (moved > 1e-4).all(), "every position sees the last token"


def test_causal_prefix_gives_the_same_outputs():
    """A causal model's outputs on a prefix are its outputs on the longer sequence, cut."""
    m = model(True)
    ids = random_ids(t=14)
    with torch.no_grad():
        full = m(ids).logits
        for n in (1, 5, 13):
            torch.testing.assert_close(m(ids[:, :n]).logits, full[:, :n], rtol=1e-5, atol=1e-5)


def test_causal_model_still_masks_padding():
    m = model(True)
    ids = random_ids(b=2, t=12, seed=1)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        padded = m.encoder(ids, mask)
        other = ids.clone()
        other[1, 7:] = 9  # different padding content: nothing real may move
        torch.testing.assert_close(m.encoder(other, mask)[1, :7], padded[1, :7], rtol=0, atol=1e-6)
        alone = m.encoder(ids[1:, :7])  # the real part on its own
        torch.testing.assert_close(padded[1, :7], alone[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(padded[0], m.encoder(ids[:1])[0], rtol=1e-5, atol=1e-5)


def test_causal_attention_weights_are_lower_triangular():
    m = model(True)
    ids = random_ids(b=2, t=10, seed=2)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    with torch.no_grad():
        hidden, maps = m.encoder(ids, mask, return_attention=True)
        # the spelled-out path computes what scaled_dot_product_attention computes
        torch.testing.assert_close(hidden, m.encoder(ids, mask), rtol=1e-5, atol=1e-5)
    assert len(maps) == 2
    above = torch.ones(10, 10, dtype=torch.bool).triu(1)
    for w in maps:
        assert w.shape == (2, 2, 10, 10)
        assert torch.all(w[..., above] == 0), "no query attends to a key on its right"
        assert torch.all(w[0, :, :, 6:] == 0), "no query attends to padding"
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 10))
        assert torch.all(w[..., 0, 0] == 1), "the first position sees only itself"
    with torch.no_grad():
        _, bi = model(False).encoder(ids, mask, return_attention=True)
    assert (bi[0][1][..., above] > 0).all(), "a bidirectional model attends to the right"


def test_causal_config_validation():
    with pytest.raises(ValueError, match="causal must be True or False, got 1"):
        EncoderConfig(vocab_size=10, causal=1)
    assert EncoderConfig(vocab_size=10).causal is False
    assert EncoderConfig(vocab_size=10, causal=True).to_dict()["causal"] is True


# -- next-token labels -----------------------------------------------------------------------------


def test_next_token_labels_by_hand():
    ids = torch.tensor([[2, 7, 8, 9, 3, 0, 0], [2, 10, 3, 0, 0, 0, 0], [2, 5, 6, 7, 8, 9, 3]])
    mask = (ids != 0).long()
    expected = torch.tensor([[7, 8, 9, 3, -100, -100, -100], [10, 3, -100, -100, -100, -100, -100],
                             [5, 6, 7, 8, 9, 3, -100]])
    assert torch.equal(next_token_labels(ids, mask), expected)
    # without a mask every position is real: a plain shift
    assert torch.equal(next_token_labels(ids), torch.cat([ids[:, 1:], torch.full((3, 1), -100)], 1))


@pytest.mark.parametrize("seed", range(5))
def test_next_token_labels_match_a_loop(seed):
    rng = random.Random(seed)
    b, t = rng.randint(1, 6), rng.randint(2, 20)
    ids = torch.randint(1, 100, (b, t), generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(b, t, dtype=torch.long)
    for i in range(b):
        n = rng.randint(1, t)
        mask[i, :n] = 1
        ids[i, n:] = 0
    expected = torch.full((b, t), IGNORE_INDEX)
    for i in range(b):
        for pos in range(t - 1):
            if mask[i, pos] and mask[i, pos + 1]:
                expected[i, pos] = ids[i, pos + 1]
    labels = next_token_labels(ids, mask)
    assert torch.equal(labels, expected) and labels.dtype == ids.dtype
    assert int((labels != IGNORE_INDEX).sum()) == int(mask.sum()) - b  # every real position but the last


def test_next_token_labels_errors():
    with pytest.raises(ValueError, match=r"input_ids must be \[batch, length\], got shape \(5,\)"):
        next_token_labels(torch.arange(5))
    with pytest.raises(ValueError, match=r"attention_mask \(2, 4\) must match input_ids \(2, 5\)"):
        next_token_labels(torch.ones(2, 5, dtype=torch.long), torch.ones(2, 4, dtype=torch.long))


# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"objective": "x"}, "objective must be 'mlm' .* or 'causal' .*, got 'x'"),
        ({"objective": "causal", "static_masks": 2}, "static_masks=2 has no meaning for the causal objective"),
        ({"static_masks": -1}, "static_masks must be an int >= 0, got -1"),
        ({"static_masks": 1.5}, "static_masks must be"),
        ({"static_masks": True}, "static_masks must be an int >= 0, got True"),
    ],
)
def test_train_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_objective_and_model_must_agree():
    tok, train, valid = tiny_tokenizer_and_texts(n_train=20, n_valid=5)
    with pytest.raises(ValueError, match=r"objective='mlm' needs a model with causal=False, this one has causal=True"):
        pretrain(EncoderConfig(vocab_size=tok.vocab_size, causal=True, **TINY_MODEL), tok, train, valid, tiny_config(), progress=False)
    with pytest.raises(ValueError, match=r"objective='causal' needs a model with causal=True, this one has causal=False"):
        pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid,
                 tiny_config(objective="causal"), progress=False)


# -- static masks ------------------------------------------------------------------------------------


def test_static_mask_is_a_function_of_seed_index_and_copy():
    tok, train, _ = tiny_tokenizer_and_texts(n_train=10)
    config = tiny_config(static_masks=3)
    examples = tok.encode_chunks(train, max_length=16)
    ex = max(examples, key=lambda e: len(e["input_ids"]))
    a = static_mask(ex, 4, 1, seed=config.seed, masking=config.masking, tokenizer=tok)
    assert a == static_mask(dict(ex), 4, 1, seed=config.seed, masking=config.masking, tokenizer=tok)  # same (seed, index, copy): same mask
    copies = [static_mask(ex, 4, c, seed=config.seed, masking=config.masking, tokenizer=tok) for c in range(6)]
    assert len({str(c) for c in copies}) > 1, "copies are masked differently"
    assert len({str(static_mask(ex, i, 1, seed=config.seed, masking=config.masking, tokenizer=tok)) for i in range(6)}) > 1, "indices are masked differently"
    assert a != static_mask(ex, 4, 1, seed=2, masking=config.masking, tokenizer=tok) or a != static_mask(ex, 4, 1, seed=3, masking=config.masking, tokenizer=tok)
    # a proper masked example: labels hold the original piece where selected, -100 elsewhere
    original = ex["input_ids"]
    assert len(a["input_ids"]) == len(a["labels"]) == len(original)
    selected = [i for i, y in enumerate(a["labels"]) if y != IGNORE_INDEX]
    assert len(selected) == mlm.num_to_select(len(original) - 2, 0.15)
    assert all(a["labels"][i] == original[i] for i in selected)
    assert all(a["input_ids"][i] == original[i] for i in range(len(original)) if i not in selected)


def _record_training_batches(monkeypatch):
    """Every training forward pass (the model in training mode) as a list of (input_ids, mask, labels)."""
    calls = []
    forward = MaskedLM.forward

    def recording(self, input_ids, attention_mask=None, labels=None):
        if self.training:
            calls.append((input_ids.clone(), attention_mask.clone(), labels.clone()))
        return forward(self, input_ids, attention_mask, labels)

    monkeypatch.setattr(MaskedLM, "forward", recording)
    return calls


def _seen(calls, n, config):
    """{(epoch, sequence index): (inputs, labels) without padding} for every training sequence seen."""
    per_epoch = max(1, n // config.batch_size)
    seen = {}
    for step, (ids, mask, labels) in enumerate(calls):
        indices = step_indices(n, config.batch_size, config.seed, step)
        assert len(indices) == ids.shape[0]
        for row, i in enumerate(indices):
            real = int(mask[row].sum())
            assert torch.all(labels[row, real:] == IGNORE_INDEX)
            seen[(step // per_epoch, i)] = (ids[row, :real].tolist(), labels[row, :real].tolist())
    return seen


def _run(monkeypatch, tok, train, valid, config, causal=False):
    calls = _record_training_batches(monkeypatch)
    pretrain(EncoderConfig(vocab_size=tok.vocab_size, causal=causal, dropout=0.0, **TINY_MODEL), tok, train, valid, config,
             progress=False)
    monkeypatch.undo()
    return calls


def test_static_masks_repeat_across_epochs_and_batches(monkeypatch):
    tok, train, valid = tiny_tokenizer_and_texts(n_train=20, n_valid=5)
    n = len(tok.encode_chunks(train, max_length=16))
    assert 16 <= n < 32
    small = tiny_config(static_masks=1, batch_size=4, max_steps=3 * (n // 4))  # three epochs
    large = tiny_config(static_masks=1, batch_size=8, max_steps=3 * (n // 8))
    seen_small = _seen(_run(monkeypatch, tok, train, valid, small), n, small)
    seen_large = _seen(_run(monkeypatch, tok, train, valid, large), n, large)
    examples = tok.encode_chunks(train, max_length=16)
    checked = 0
    for (epoch, i), (inputs, labels) in {**seen_small, **seen_large}.items():
        # the same masking whatever the epoch, the batch size and the batch it lands in ...
        expected = static_mask(examples[i], i, 0, seed=small.seed, masking=small.masking, tokenizer=tok)
        assert (inputs, labels) == (expected["input_ids"], expected["labels"]), (epoch, i)
        checked += 1
    assert checked > 2 * n and any(e > 0 for e, _ in seen_small)
    # ... and an actual mask: about 15% of the pieces labelled
    assert any(y != IGNORE_INDEX for _, labels in seen_small.values() for y in labels)


def test_two_static_copies_alternate(monkeypatch):
    tok, train, valid = tiny_tokenizer_and_texts(n_train=20, n_valid=5)
    n = len(tok.encode_chunks(train, max_length=16))
    config = tiny_config(static_masks=2, batch_size=8, max_steps=4 * (n // 8))  # four epochs: copies 0, 1, 0, 1
    seen = _seen(_run(monkeypatch, tok, train, valid, config), n, config)
    examples = tok.encode_chunks(train, max_length=16)
    differ = 0
    for (epoch, i), (inputs, labels) in seen.items():
        expected = static_mask(examples[i], i, epoch % 2, seed=config.seed, masking=config.masking, tokenizer=tok)
        assert (inputs, labels) == (expected["input_ids"], expected["labels"])
        if (epoch + 2, i) in seen:
            assert seen[(epoch + 2, i)] == (inputs, labels)
        if (epoch + 1, i) in seen and seen[(epoch + 1, i)] != (inputs, labels):
            differ += 1
    assert differ >= 3, "consecutive epochs use the other copy"


def test_dynamic_masks_change_between_epochs(monkeypatch):
    tok, train, valid = tiny_tokenizer_and_texts(n_train=20, n_valid=5)
    n = len(tok.encode_chunks(train, max_length=16))
    config = tiny_config(batch_size=8, max_steps=2 * (n // 8))
    seen = _seen(_run(monkeypatch, tok, train, valid, config), n, config)
    pairs = [(seen[(0, i)], seen[(1, i)]) for e, i in seen if e == 0 and (1, i) in seen]
    assert len(pairs) >= 4
    assert sum(a != b for a, b in pairs) >= len(pairs) - 1, "new masks every epoch"


# -- the causal objective ------------------------------------------------------------------------------


def test_causal_training_uses_next_token_labels_and_learns(monkeypatch):
    tok, train, valid = tiny_tokenizer_and_texts()
    config = tiny_config(objective="causal", max_steps=40, eval_every=40, lr=3e-3, warmup_steps=4, log_every=10)
    calls = _record_training_batches(monkeypatch)
    result = pretrain(EncoderConfig(vocab_size=tok.vocab_size, causal=True, dropout=0.0, **TINY_MODEL), tok, train, valid,
                      config, eval_at_start=True, progress=False)
    monkeypatch.undo()
    examples = tok.encode_chunks(train, max_length=16)
    assert len(calls) == 40
    for step, (ids, mask, labels) in enumerate(calls[:3]):
        assert torch.equal(labels, next_token_labels(ids, mask))
        assert not (ids == tok.mask_id).any(), "the causal objective corrupts nothing"
        indices = step_indices(len(examples), config.batch_size, config.seed, step)
        for row, i in enumerate(indices):
            assert ids[row, : int(mask[row].sum())].tolist() == examples[i]["input_ids"]
    evals = result.evaluations()
    assert [e["step"] for e in evals] == [0, 40]
    assert evals[-1]["valid_loss"] < evals[0]["valid_loss"] - 0.2  # 3.25 -> 2.90; words are uniform: ~2.9 is the floor
    assert evals[-1]["valid_loss"] < mlm.uniform_baseline(tok.vocab_size)


def test_causal_eval_batches_hold_next_token_labels():
    tok, _, valid = tiny_tokenizer_and_texts()
    config = tiny_config(objective="causal", eval_sequences=20)
    batches = eval_batches(tok, valid, config, batch_size=8)
    examples = tok.encode_chunks(valid, max_length=16)[:20]
    assert [b["input_ids"].shape[0] for b in batches] == [8, 8, 4]
    for k, b in enumerate(batches):
        assert set(b) == {"input_ids", "attention_mask", "labels"}
        assert torch.equal(b["labels"], next_token_labels(b["input_ids"], b["attention_mask"]))
        padded = pad_examples(examples[8 * k : 8 * k + 8], pad_id=tok.pad_id)
        assert torch.equal(b["input_ids"], padded["input_ids"]) and torch.equal(b["attention_mask"], padded["attention_mask"])
    # evaluate() on them: the token-mean next-token cross-entropy of a manual forward pass
    m = model(True, vocab_size=tok.vocab_size)
    total, count = 0.0, 0
    with torch.no_grad():
        for b in batches:
            logits = m(b["input_ids"], b["attention_mask"]).logits
            total += F.cross_entropy(logits.flatten(0, 1), b["labels"].flatten(), reduction="sum").item()
            count += int((b["labels"] != IGNORE_INDEX).sum())
    metrics = evaluate(m, batches, torch.device("cpu"))
    assert metrics["positions"] == count and metrics["loss"] == pytest.approx(total / count, rel=1e-5)


# -- a probe: fine-tuning with the encoder frozen ------------------------------------------------------


def _toy_task(seed=0, n_train=32, n_valid=12) -> TaskData:
    rng = random.Random(seed)

    def examples(n):
        return [ClassificationExample(" ".join(rng.choice(WORDS[10:] if i % 2 else WORDS[:10]) for _ in range(rng.randint(3, 8))),
                                      i % 2, "s") for i in range(n)]

    return TaskData("toy", "classification", ("a", "b"), examples(n_train), examples(n_valid), examples(n_valid))


def _ft_config(**kw) -> FinetuneConfig:
    return FinetuneConfig(**{**dict(lr=1e-2, batch_size=16, max_steps=12, eval_every=4, patience=10, max_length=16,
                                     device="cpu", seed=0), **kw})


def test_freeze_encoder_trains_the_head_only():
    tok = mlm.tokenizer_from_vocab(WORDS + ["."])
    task = _toy_task()
    config = EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL)  # dropout 0.1: eval mode must switch it off
    probe = build_model(task, config, pooling="mean", seed=0)
    encoder_before = {k: v.clone() for k, v in probe.encoder.state_dict().items()}
    head_before = {k: v.clone() for k, v in probe.classifier.state_dict().items()}
    modes = []
    encoder_forward = probe.encoder.forward

    def recording(*args, **kwargs):
        modes.append(probe.encoder.training)
        return encoder_forward(*args, **kwargs)

    probe.encoder.forward = recording
    result = finetune(probe, tok, task, _ft_config(freeze_encoder=True), evaluate_test=False)
    del probe.encoder.forward
    after = result.model.encoder.state_dict()
    assert all(torch.equal(after[k], v) for k, v in encoder_before.items()), "the encoder is left as it was"
    assert not all(torch.equal(result.model.classifier.state_dict()[k], v) for k, v in head_before.items())
    assert modes and not any(modes), "a frozen encoder runs in eval mode (no dropout) at every step"
    assert result.best_step > 0 and result.valid["accuracy"] > 0.5
    assert all(p.requires_grad for p in result.model.encoder.parameters()), "frozen for that run only"

    full = build_model(task, config, pooling="mean", seed=0)
    finetune(full, tok, task, _ft_config(), evaluate_test=False)
    assert not all(torch.equal(full.encoder.state_dict()[k], v) for k, v in encoder_before.items()), "control: unfrozen moves"


def test_freeze_encoder_validation():
    with pytest.raises(ValueError, match="freeze_encoder must be True or False, got 1"):
        FinetuneConfig(freeze_encoder=1)


# -- export ----------------------------------------------------------------------------------------------


def test_a_causal_model_is_not_exported():
    from mlm_lessons.hf import to_transformers

    with pytest.raises(ValueError, match=r"this model is causal \(causal=True\).*only bidirectional models can be exported"):
        to_transformers(model(True, norm="post"))
