"""The training engine and its seams: named seed streams, batch sources, the optimizer step, early
stopping, the run directory, the model's identity, and the package's layout rules."""

from __future__ import annotations

import ast
import math
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.batches import LabelledBatches, PretrainBatches, static_mask, step_indices
from mlm_lessons.engine import EarlyStopping, StepCore, lr_factor, param_groups
from mlm_lessons.model import CausalLM, EncoderConfig, MaskedLM, eval_mode, evaluating, language_model
from mlm_lessons.rundir import RunDir
from mlm_lessons.seeding import STREAMS, stream_generator, stream_seed

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import tiny_tokenizer_and_texts  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

PACKAGE = Path(mlm.__file__).parent
TINY_MODEL = dict(max_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64)


# -- seed streams ---------------------------------------------------------------------------------


def test_stream_seeds_come_from_numpy_seed_sequence():
    want = int(np.random.SeedSequence(7, spawn_key=(STREAMS["step-mask"], 0, 12, 1)).generate_state(1, np.uint64)[0])
    assert stream_seed(7, "step-mask", 0, 12, 1) == want & (2**63 - 1)
    assert stream_seed(7, "step-mask", 0, 12, 1) == stream_seed(7, "step-mask", 0, 12, 1)
    seeds = {stream_seed(s, name, *pos) for s in (0, 1) for name in STREAMS for pos in ((), (0,), (1,), (0, 1), (1, 0))}
    assert len(seeds) == 2 * len(STREAMS) * 5, "seeds, streams and positions never collide"
    a, b = stream_generator(3, "data-order", 2), stream_generator(3, "data-order", 2)
    assert torch.equal(torch.randperm(50, generator=a), torch.randperm(50, generator=b))
    assert len(set(STREAMS.values())) == len(STREAMS)


@pytest.mark.parametrize("args, message", [
    ((0, "dropouts"), "unknown stream 'dropouts'"),
    ((-1, "dropout"), "ints >= 0, got -1"),
    ((0, "dropout", 1.5), "ints >= 0, got 1.5"),
    ((0, "dropout", True), "ints >= 0, got True"),
])
def test_stream_seed_errors(args, message):
    with pytest.raises(ValueError, match=message):
        stream_seed(*args)


# -- batch sources ----------------------------------------------------------------------------------


def test_step_indices_are_epoch_permutations():
    n, batch = 23, 5
    per_epoch = n // batch
    for epoch in range(3):
        seen = [i for k in range(per_epoch) for i in step_indices(n, batch, 0, epoch * per_epoch + k)]
        assert len(seen) == len(set(seen)) == per_epoch * batch  # no row twice in an epoch; the remainder is dropped
    assert step_indices(n, batch, 0, 0) != step_indices(n, batch, 0, per_epoch), "a fresh order every epoch"
    assert step_indices(n, batch, 0, 2) == step_indices(n, batch, 0, 2) != step_indices(n, batch, 1, 2)


def test_pretrain_batches_split_the_global_batch_between_ranks():
    tok, train, _ = tiny_tokenizer_and_texts(n_train=60)
    rows = tok.encode_chunks(train, max_length=16)
    one = PretrainBatches(rows, tok, batch_size=8, seed=0, objective="causal")
    ranks = [PretrainBatches(rows, tok, batch_size=8, grad_accum=2, seed=0, objective="causal", rank=r, world=2) for r in (0, 1)]
    whole = one(5)[0]
    parts = [b for source in ranks for b in source(5)]
    assert len(parts) == 4 and all(b["input_ids"].shape[0] == 2 for b in parts)
    rows_seen = sorted(tuple(r[m.bool()].tolist()) for b in parts for r, m in zip(b["input_ids"], b["attention_mask"]))
    assert rows_seen == sorted(tuple(r[m.bool()].tolist()) for r, m in zip(whole["input_ids"], whole["attention_mask"]))
    assert torch.equal(whole["labels"], mlm.masking.next_token_labels(whole["input_ids"], whole["attention_mask"]))


def test_pretrain_batches_mask_as_mlm_collator_and_static_mask():
    tok, train, _ = tiny_tokenizer_and_texts(n_train=60)
    rows = tok.encode_chunks(train, max_length=16)
    source = PretrainBatches(rows, tok, batch_size=4, seed=3)
    b = source(7)[0]
    indices = step_indices(len(rows), 4, 3, 7)
    want = mlm.MLMCollator(tok, mlm.MaskingConfig(), generator=stream_generator(3, "step-mask", 0, 7, 0))([rows[i] for i in indices])
    assert all(torch.equal(b[k], want[k]) for k in ("input_ids", "attention_mask", "labels"))
    static = PretrainBatches(rows, tok, batch_size=4, seed=3, static_masks=2)
    epoch = static.steps_per_epoch
    for step, copy in ((0, 0), (epoch, 1), (2 * epoch, 0)):
        got = static(step)[0]
        for row, i in enumerate(step_indices(len(rows), 4, 3, step)):
            expect = static_mask(rows[i], i, copy, seed=3, masking=mlm.MaskingConfig(), tokenizer=tok)
            n = len(expect["input_ids"])
            assert got["input_ids"][row, :n].tolist() == expect["input_ids"] and got["labels"][row, :n].tolist() == expect["labels"]
    with pytest.raises(ValueError, match="fewer than one batch of 1000"):
        PretrainBatches(rows, tok, batch_size=1000, seed=0)
    with pytest.raises(ValueError, match="divisible by grad_accum × processes = 3 × 1"):
        PretrainBatches(rows, tok, batch_size=4, grad_accum=3, seed=0)
    with pytest.raises(ValueError, match="objective must be 'mlm' or 'causal'"):
        PretrainBatches(rows, tok, batch_size=4, seed=0, objective="clm")


def test_labelled_batches_see_every_example_once_an_epoch():
    items = [{"input_ids": [2, 5 + i % 3, 3], "label": i % 2} for i in range(10)]
    source = LabelledBatches(items, batch_size=4, seed=1, pad_id=0)
    assert source.steps_per_epoch == 3
    for epoch in range(2):
        batches = [source(epoch * 3 + k) for k in range(3)]
        assert [b["labels"].shape[0] for b in batches] == [4, 4, 2]
        assert sum(int(b["labels"].sum()) for b in batches) == 5  # every example once: five of label 1
    assert not torch.equal(source(0)["input_ids"], source(3)["input_ids"]) or not torch.equal(source(0)["labels"], source(3)["labels"])
    with pytest.raises(ValueError, match="no training examples"):
        LabelledBatches([], batch_size=4, seed=0, pad_id=0)


def test_pad_examples_is_the_one_collate_function():
    tagged = [{"input_ids": [2, 7, 3], "labels": [-100, 1, -100], "words": [0]}, {"input_ids": [2, 3], "labels": [-100, -100], "words": []}]
    b = mlm.masking.pad_examples(tagged, pad_id=0)
    assert b["input_ids"].tolist() == [[2, 7, 3], [2, 3, 0]] and b["labels"].tolist() == [[-100, 1, -100], [-100, -100, -100]]
    assert set(b) == {"input_ids", "attention_mask", "labels"}, "other keys are left out"
    classified = mlm.masking.pad_examples([{"input_ids": [2, 7, 3], "label": 1}, {"input_ids": [2, 3], "label": 0}], pad_id=0)
    assert classified["labels"].tolist() == [1, 0] and classified["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_encode_batch_pads_with_the_tokenizers_library():
    tok = mlm.tokenizer_from_vocab(["the", "cat", "sat", "##s"])
    longest = tok.encode_batch(["the cats sat", "the"], max_length=8)
    assert longest.input_ids.tolist() == [[2, 5, 6, 8, 7, 3], [2, 5, 3, 0, 0, 0]]
    assert longest.attention_mask.tolist() == [[1] * 6, [1, 1, 1, 0, 0, 0]]
    assert longest.word_ids[1] == [None, 0, None, None, None, None]
    fixed = tok.encode_batch(["the cats sat"], max_length=8, padding="max_length", return_tensors=None)
    assert fixed["input_ids"] == [[2, 5, 6, 8, 7, 3, 0, 0]] and fixed["attention_mask"] == [[1, 1, 1, 1, 1, 1, 0, 0]]
    assert tok.encode_batch(["the cats sat", "the"], max_length=4, padding=False, return_tensors=None)["input_ids"] == [[2, 5, 6, 3], [2, 5, 3]]
    assert tok.encode("the cats") == [2, 5, 6, 8, 3], "padding is switched off again afterwards"


# -- the optimizer step -----------------------------------------------------------------------------


def test_lr_factor():
    factor = partial(lr_factor, warmup_steps=4, total_steps=12)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(8) == pytest.approx(0.5) and factor(12) == 0.0 and factor(20) == 0.0
    assert lr_factor(12, warmup_steps=0, total_steps=12, min_lr_ratio=0.1) == pytest.approx(0.1)


def _model(seed=0):
    torch.manual_seed(seed)
    return MaskedLM(EncoderConfig(vocab_size=30, max_len=16, d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0))


def _batch(seed, rows, length=10):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 30, (rows, length), generator=g)
    labels = torch.where(torch.rand(rows, length, generator=g) < 0.3, ids, torch.full_like(ids, -100))
    labels[0, 1] = ids[0, 1]  # at least one label per batch
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def test_step_core_accumulates_a_token_mean_over_micro_batches():
    """Two micro-batches of different label counts update the weights as one batch of both does."""
    a, b = _batch(1, 3), _batch(2, 5)
    both = {k: torch.cat([a[k], b[k]]) for k in a}
    kwargs = dict(lr=1e-2, total_steps=10, device=torch.device("cpu"), clip_norm=1e9)
    split_model, joint_model = _model(), _model()
    split_loss, _ = StepCore(split_model, **kwargs).step([a, b])
    joint_loss, _ = StepCore(joint_model, **kwargs).step([both])
    assert split_loss.item() == pytest.approx(joint_loss.item(), rel=1e-5)
    reference = _model()(both["input_ids"], both["attention_mask"], both["labels"]).loss
    assert joint_loss.item() == pytest.approx(reference.item(), rel=1e-6)
    for p, q in zip(split_model.parameters(), joint_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


def test_step_core_matches_a_hand_written_adamw_step():
    model, ref = _model(), _model()
    b = _batch(3, 4)
    core = StepCore(model, lr=1e-2, total_steps=10, warmup_steps=2, weight_decay=0.01, device=torch.device("cpu"), clip_norm=0.5)
    core.step([b])
    opt = torch.optim.AdamW(param_groups(ref, 0.01), lr=1e-2, betas=(0.9, 0.98), eps=1e-6)
    for group in opt.param_groups:
        group["lr"] = 1e-2 * lr_factor(0, warmup_steps=2, total_steps=10)
    ref(b["input_ids"], b["attention_mask"], b["labels"]).loss.backward()
    torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
    opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    assert core.lr == pytest.approx(1e-2 * lr_factor(1, warmup_steps=2, total_steps=10))
    state = core.state_dict()
    assert set(state) == {"optimizer", "scheduler", "scaler"} and state["scheduler"]["last_epoch"] == 1


def test_step_core_trains_only_what_it_is_given():
    model = _model()
    frozen = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    heads = torch.nn.ModuleDict({"dense": model.head_dense, "ln": model.head_ln})
    model.encoder.requires_grad_(False)
    StepCore(model, lr=1e-2, total_steps=5, device=torch.device("cpu"), trainable=heads).step([_batch(4, 4)])
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in frozen.items())


def test_early_stopping():
    model = _model()
    lower = EarlyStopping(2, min_delta=0.1)
    assert [lower.update(x, s, model) for s, x in enumerate([5.0, 4.0, 3.95, 3.92], 1)] == [False, False, False, True]
    assert (lower.best_step, lower.best_score) == (2, 4.0), "an improvement of less than min_delta does not count"
    higher = EarlyStopping(1, higher_is_better=True, start_from=model)
    assert (higher.best_step, higher.best_score) == (0, -math.inf)
    with torch.no_grad():
        model.head_bias.add_(1.0)
    assert higher.update(0.5, 10, model) is False and higher.update(0.5, 20, model) is True  # equal is no improvement
    with torch.no_grad():
        model.head_bias.add_(1.0)
    higher.restore(model)
    assert torch.equal(model.head_bias, torch.ones(30)), "the best weights (step 10) are back"
    never = EarlyStopping(None)
    assert not any(never.update(x, s, model) for s, x in enumerate([1.0, 2.0, 3.0, 4.0])) and never.best_state is None
    with pytest.raises(ValueError, match="patience must be a positive int"):
        EarlyStopping(0)
    with pytest.raises(ValueError, match="min_delta must be >= 0"):
        EarlyStopping(2, min_delta=-1)


# -- the run directory ------------------------------------------------------------------------------


def test_run_directory(tmp_path):
    tok = mlm.tokenizer_from_vocab(["a", "b"])
    run = RunDir(tmp_path / "run")
    assert not run.has_checkpoint() and run.finished(10) is None
    run.save(tokenizer=tok, history=[{"step": 4}], config={"x": 1}, step=4, stopped_at=None)
    assert run.has_checkpoint() and run.finished(10) is None, "a run interrupted at step 4 of 10 is not finished"
    assert run.load()["history"] == [{"step": 4}] and (run.path / "config.json").read_text().strip().startswith("{")
    run.save(tokenizer=tok, history=[], config={}, step=6, stopped_at=6)
    assert run.finished(10)["stopped_at"] == 6, "a run that stopped early is finished"
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoint.pt", "config.json", "metrics.json", "tokenizer.json"]


# -- the model's identity ---------------------------------------------------------------------------


def test_causal_lm_is_its_own_class():
    config = EncoderConfig(vocab_size=20, **TINY_MODEL)
    causal = EncoderConfig(**{**config.to_dict(), "causal": True})
    assert type(language_model(config)) is MaskedLM and type(language_model(causal)) is CausalLM
    with pytest.raises(ValueError, match=r"a MaskedLM needs EncoderConfig\(causal=False\), got causal=True; use CausalLM"):
        MaskedLM(causal)
    with pytest.raises(ValueError, match=r"a CausalLM needs EncoderConfig\(causal=True\), got causal=False; use MaskedLM"):
        CausalLM(config)


def test_pretrain_records_the_vocabulary_and_load_run_checks_it(tmp_path):
    tok, train, valid = tiny_tokenizer_and_texts(n_train=40, n_valid=8)
    result = pretrain_tiny(tok, train, valid, tmp_path)
    assert result.model.config.vocab_fingerprint == tok.fingerprint
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["model_config"]["vocab_fingerprint"] == tok.fingerprint
    from mlm_lessons.rundir import load_run

    model, own, _ = load_run(tmp_path)
    assert own == tok and model.config == result.model.config
    mlm.tokenizer_from_vocab(["x"]).save(tmp_path / "tokenizer.json")  # another vocabulary next to the checkpoint
    with pytest.raises(ValueError, match="vocabulary"):
        load_run(tmp_path)


def pretrain_tiny(tok, train, valid, out_dir):
    from mlm_lessons.training import TrainConfig, pretrain

    config = TrainConfig(max_steps=2, batch_size=4, max_length=16, warmup_steps=1, eval_every=2, log_every=1, device="cpu")
    return pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, config, out_dir=out_dir, progress=False)


def test_evaluating_restores_the_mode_even_after_an_error():
    model = _model().train()
    with pytest.raises(RuntimeError):
        with evaluating(model):
            assert not model.training
            raise RuntimeError("boom")
    assert model.training
    seen = []

    @eval_mode
    def look(m):
        seen.append(getattr(m, "training", None))
        return "done"

    assert look(model) == "done" and seen == [False] and model.training
    assert look("not a model") == "done", "nothing to switch: the function's own checks decide"


def test_wordpiece_tokenizer_is_where_every_tokenizer_is_built():
    tok, _, _ = tiny_tokenizer_and_texts()
    rebuilt = mlm.tokenizer.wordpiece_tokenizer(tok.get_vocab(), lowercase=True)
    assert rebuilt == tok and rebuilt.to_json() == tok.to_json()


# -- layout: the chain, the teaching layer, and their seams ------------------------------------------


def _imports(path: Path):
    """(module imported relative to the package, names) for every ``from ... import`` in ``path``."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]  # the package the file is in
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                module = node.module or ""
            if module.startswith("mlm_lessons"):
                yield module, [a.name for a in node.names]


def test_no_module_imports_another_modules_private_name():
    offenders = [f"{p.relative_to(PACKAGE)}: {name} from {module}" for p in PACKAGE.rglob("*.py")
                 for module, names in _imports(p) for name in names if name.startswith("_") and name != "__version__"]
    assert offenders == []


def test_the_chain_never_imports_the_teaching_layer():
    chain = [p for p in PACKAGE.rglob("*.py") if "teaching" not in p.parts and p.name not in ("cli.py", "__init__.py")]
    assert len(chain) > 15
    offenders = [f"{p.relative_to(PACKAGE)} imports {module}" for p in chain for module, _ in _imports(p)
                 if module.startswith("mlm_lessons.teaching")]
    assert offenders == []
    chapters = sorted(p.stem for p in (PACKAGE / "teaching" / "exercises").glob("ch*.py"))
    assert chapters == [f"ch{i:02d}" for i in range(1, 11)]
    from mlm_lessons.teaching.exercises import exercises

    assert {e.chapter for e in exercises()} == set(range(1, 11))
