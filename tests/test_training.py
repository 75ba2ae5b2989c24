"""Pretraining: configuration, schedule, exact resume, DDP on two CPU processes, the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.cli import main
from mlm_lessons.model import EncoderConfig
from mlm_lessons.training import (
    PRESETS, TrainConfig, eval_batches, evaluate, load_checkpoint, load_run, peak_flops, preset, pretrain, train_rows,
)

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import tiny_tokenizer_and_texts  # noqa: E402

TINY_MODEL = dict(max_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64)


def tiny_config(**kw):
    base = dict(max_steps=6, batch_size=8, max_length=16, warmup_steps=2, eval_every=3, eval_sequences=16,
                log_every=1, device="cpu", seed=1)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 10, "grad_accum": 3}, "batch_size=10 must be divisible by grad_accum=3"),
        ({"warmup_steps": 10, "max_steps": 10}, "warmup_steps=10 must be smaller than max_steps=10"),
        ({"lr": 0}, "lr must be > 0"),
        ({"max_steps": 0}, "max_steps must be a positive int, got 0"),
        ({"seed": -1}, "seed must be an int >= 0, got -1"),
        ({"precision": "fp8"}, "precision must be"),
        ({"device": "tpu"}, "device must be"),
        ({"betas": (0.9, 1.2)}, "betas must be two numbers"),
        ({"max_length": 2}, "max_length must be >= 3"),
        ({"pack": 1}, "pack must be True or False, got 1"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_presets():
    assert set(PRESETS) == {"cpu-small", "colab-t4", "a100", "h100"}
    model_config, train_config = preset("cpu-small", 8000)
    assert model_config.vocab_size == 8000 and train_config.max_length <= model_config.max_len
    _, short = preset("cpu-small", 8000, max_steps=30)
    assert short.max_steps == 30 and short.warmup_steps == 3
    with pytest.raises(ValueError, match="unknown preset 'tpu'; choose one of cpu-small, colab-t4, a100, h100"):
        preset("tpu", 8000)
    assert TrainConfig(masking={"mask_ratio": 0.3}).masking == mlm.MaskingConfig(mask_ratio=0.3)
    for name in PRESETS:  # the recipe of benchmarks/cpu_recipe.py: rotary positions, 40% masking, BERT's 15% to evaluate
        model_config, train_config = preset(name, 8000)
        assert model_config.positions == "rope" and train_config.masking.mask_ratio == 0.4
        assert train_config.eval_masking == mlm.MaskingConfig()
        assert train_config.pack  # short docstrings: packed rows instead of padding


def test_every_preset_is_in_modernberts_layout_at_the_budget_of_its_gelu_twin():
    from mlm_lessons.hf import export_layout
    from mlm_lessons.model import EncoderConfig, MaskedLM, flops_per_token

    gelu_d_ff = {"cpu-small": 512, "colab-t4": 1024, "a100": 2048, "h100": 3072}  # the presets' earlier GELU networks
    for name in PRESETS:
        modern, _ = preset(name, 8000)
        assert (modern.norm, modern.positions, modern.embedding_norm, modern.ffn, modern.bias) == ("pre", "rope", True, "geglu", False)
        assert export_layout(MaskedLM(modern)) == "modernbert"  # whatever a preset trains leaves the book
        gelu = EncoderConfig(**{**modern.to_dict(), "embedding_norm": False, "ffn": "gelu", "bias": True, "d_ff": gelu_d_ff[name]})
        assert gelu.in_modernbert_layout() == modern  # two thirds of the GELU width, rounded up to a multiple of 8
        ratio = flops_per_token(modern, 128) / flops_per_token(gelu, 128)
        assert 0.98 < ratio < 1.02, (name, ratio)  # about the same compute per token
    assert preset("cpu-small", 8000)[0].d_ff == 344
    with pytest.raises(ValueError, match="layout='bert': every preset is in ModernBERT's layout.*build an EncoderConfig"):
        preset("cpu-small", 8000, layout="bert")


def test_learning_rate_schedule():
    from functools import partial

    from mlm_lessons.engine import lr_factor

    factor = partial(lr_factor, warmup_steps=10, total_steps=100, min_lr_ratio=0.1)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.1 + 0.9 * 0.5) and factor(100) == pytest.approx(0.1)


def test_precision_and_device_errors():
    tok, train, valid = tiny_tokenizer_and_texts()
    with pytest.raises(ValueError, match="precision='bf16' is for CUDA GPUs"):
        pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(precision="bf16"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here"):
            pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(device="cuda"))
    assert peak_flops(torch.device("cpu"), "fp32") is None


def test_training_lowers_the_validation_loss(tmp_path):
    tok, train, valid = tiny_tokenizer_and_texts()
    result = pretrain(EncoderConfig(vocab_size=tok.vocab_size, dropout=0.0, **TINY_MODEL), tok, train, valid,
                      tiny_config(max_steps=60, eval_every=20, lr=3e-3), out_dir=tmp_path, progress=False)
    evals = result.evaluations()
    assert [e["step"] for e in evals] == [20, 40, 60]
    assert evals[-1]["valid_loss"] < evals[0]["valid_loss"] < mlm.uniform_baseline(tok.vocab_size)
    assert {"train_loss", "lr", "grad_norm", "tokens_per_s"} <= set(result.history[0])
    assert json.loads((tmp_path / "metrics.json").read_text()) == result.history
    assert not list(tmp_path.glob(".*tmp*")), "checkpoints are written atomically"


def _without_timing(history):
    return [{k: v for k, v in h.items() if k not in ("tokens_per_s", "mfu")} for h in history]


@pytest.mark.parametrize("pack", [False, True])
def test_resuming_gives_bit_identical_parameters(tmp_path, pack):
    tok, train, valid = tiny_tokenizer_and_texts()
    model_config = EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL)  # dropout 0.1: RNG matters
    config = tiny_config(grad_accum=2, pack=pack)
    whole = pretrain(model_config, tok, train, valid, config, out_dir=tmp_path / "whole", progress=False)
    first = pretrain(model_config, tok, train, valid, config, out_dir=tmp_path / "split", stop_after=3, progress=False)
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt")["step"] == 3
    assert not all(torch.equal(a, b) for a, b in zip(first.model.parameters(), whole.model.parameters()))
    rest = pretrain(model_config, tok, train, valid, config, out_dir=tmp_path / "split", resume=True, progress=False)
    for (name, a), b in zip(whole.model.named_parameters(), rest.model.parameters()):
        assert torch.equal(a, b), name
    assert _without_timing(rest.history) == _without_timing(whole.history)


def test_checkpoint_holds_everything_and_loads_safely(tmp_path):
    tok, train, valid = tiny_tokenizer_and_texts()
    pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(), out_dir=tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")  # weights_only=True inside
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "step", "model_config", "train_config", "history"} <= set(ckpt)
    model, tokenizer, _ = load_run(tmp_path)
    assert tokenizer == tok and model.config.d_model == 32
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(),
                 out_dir=tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match="holds no checkpoint.pt"):
        load_run(tmp_path / "empty")


def test_training_rows_are_the_chunks_packed_and_validation_is_not():
    tok, train, valid = tiny_tokenizer_and_texts()
    chunks = tok.encode_chunks(train, max_length=16)
    assert train_rows(tok, train, tiny_config()) == chunks
    packed = train_rows(tok, train, tiny_config(pack=True))
    assert packed == mlm.pack_examples(chunks, max_length=16) and len(packed) < len(chunks)
    plain, with_pack = eval_batches(tok, valid, tiny_config()), eval_batches(tok, valid, tiny_config(pack=True))
    assert all(torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"]) for a, b in zip(plain, with_pack))


def test_evaluation_uses_a_fixed_mask():
    tok, _, valid = tiny_tokenizer_and_texts()
    config = tiny_config()
    a, b = eval_batches(tok, valid, config), eval_batches(tok, valid, config)
    assert all(torch.equal(x["labels"], y["labels"]) for x, y in zip(a, b))
    from mlm_lessons.model import MaskedLM

    model = MaskedLM(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL))
    first, second = evaluate(model, a, torch.device("cpu")), evaluate(model, a, torch.device("cpu"))
    assert first == second and first["perplexity"] == pytest.approx(torch.tensor(first["loss"]).exp().item())


def test_eval_masking_sets_the_validation_mask_apart_from_training():
    tok, _, valid = tiny_tokenizer_and_texts()
    fifteen, forty = mlm.MaskingConfig(), mlm.MaskingConfig(mask_ratio=0.4)
    trained_at_40 = tiny_config(masking=forty)
    standard = eval_batches(tok, valid, trained_at_40.replace(eval_masking=fifteen))
    same = eval_batches(tok, valid, tiny_config(masking=fifteen))
    assert all(torch.equal(a["labels"], b["labels"]) and torch.equal(a["fate"], b["fate"]) for a, b in zip(standard, same))
    own = eval_batches(tok, valid, trained_at_40)  # None: validation masked as training
    share = lambda batches: sum(int((b["labels"] != -100).sum()) for b in batches) / sum(int(b["attention_mask"].sum()) for b in batches)  # noqa: E731
    assert share(own) > 2 * share(standard)
    assert TrainConfig(eval_masking={"mask_ratio": 0.15}).eval_masking == fifteen  # from a checkpoint's dict
    with pytest.raises(ValueError, match="eval_masking must be a MaskingConfig"):
        TrainConfig(eval_masking=0.15)


def test_evaluate_scores_mask_random_and_kept_positions_apart_by_hand():
    """The fate split against a hand computation: dense logits, log-softmax, one position at a time."""
    import math

    from mlm_lessons.masking import Fate, mask_tokens_explained
    from mlm_lessons.model import MaskedLM
    from mlm_lessons.seeding import stream_generator

    tok, _, valid = tiny_tokenizer_and_texts()
    config = tiny_config(eval_sequences=24, masking=mlm.MaskingConfig(mask_ratio=0.4))  # enough random and kept positions
    batches = eval_batches(tok, valid, config, batch_size=5)
    torch.manual_seed(3)
    model = MaskedLM(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL)).eval()
    got = evaluate(model, batches, torch.device("cpu"))
    # the fates are those masking draws, one sequence at a time with the evaluation's generator
    gen = stream_generator(config.seed, "eval-mask")
    examples = tok.encode_chunks(valid, max_length=config.max_length)[: config.eval_sequences]
    fates = [mask_tokens_explained(torch.tensor([ex["input_ids"]]), config.masking, mask_token_id=tok.mask_id,
                                   vocab_size=tok.vocab_size, special_ids=tok.special_ids, generator=gen).fate[0].tolist()
             for ex in examples]
    losses = {"mask": [], "random": [], "kept": []}
    right = {k: 0 for k in losses}
    names = {Fate.MASKED: "mask", Fate.RANDOM: "random", Fate.KEPT: "kept"}
    row = 0
    for b in batches:
        with torch.no_grad():
            logp = model(b["input_ids"], b["attention_mask"]).logits.log_softmax(-1)  # [B, T, V], no sparse head
        for i in range(b["input_ids"].shape[0]):
            fate = fates[row]
            assert b["fate"][i, : len(fate)].tolist() == fate
            for j, f in enumerate(fate):
                label, shown = int(b["labels"][i, j]), int(b["input_ids"][i, j])
                assert (label == -100) == (f == Fate.UNTOUCHED)
                if f == Fate.UNTOUCHED:
                    continue
                assert (shown == tok.mask_id) == (f == Fate.MASKED) and (f != Fate.KEPT or shown == label)
                losses[names[f]].append(-float(logp[i, j, label]))
                right[names[f]] += int(logp[i, j].argmax()) == label
            row += 1
    assert row == len(examples)
    for name, values in losses.items():
        assert len(values) >= 3, name  # a few of each fate to compare
        assert got[f"{name}_positions"] == len(values)
        assert got[f"{name}_loss"] == pytest.approx(sum(values) / len(values), rel=1e-5)
        assert got[f"{name}_accuracy"] == right[name] / len(values)
    everything = [v for values in losses.values() for v in values]
    assert got["positions"] == len(everything) and got["loss"] == pytest.approx(sum(everything) / len(everything), rel=1e-5)
    assert got["accuracy"] == sum(right.values()) / len(everything)
    assert got["perplexity"] == pytest.approx(math.exp(got["loss"]))
    # batches without fates (a causal evaluation, hand-made batches) are scored as a whole only
    plain = evaluate(model, [{k: v for k, v in b.items() if k != "fate"} for b in batches], torch.device("cpu"))
    assert set(plain) == {"loss", "accuracy", "perplexity", "positions"} and plain["loss"] == pytest.approx(got["loss"])


def test_pretrain_logs_the_mask_positions_apart(tmp_path):
    tok, train, valid = tiny_tokenizer_and_texts()
    result = pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(),
                      out_dir=tmp_path / "run", progress=False, also_evaluate={"general": valid[:10]})
    final = result.evaluations()[-1]
    for name in ("valid", "general"):
        for fate in ("mask", "random", "kept"):
            assert 0 <= final[f"{name}_{fate}_accuracy"] <= 1 and final[f"{name}_{fate}_loss"] > 0
    again = evaluate(result.model, eval_batches(tok, valid, tiny_config()), torch.device("cpu"))
    assert final["valid_mask_loss"] == pytest.approx(again["mask_loss"]) and final["valid_loss"] == pytest.approx(again["loss"])
    logged = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert logged[-1]["valid_mask_accuracy"] == final["valid_mask_accuracy"]


def test_seed_offset_moves_what_training_draws_but_not_the_evaluation_mask(tmp_path, monkeypatch):
    tok, train, valid = tiny_tokenizer_and_texts()
    model_config = EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL)  # dropout 0.1: every draw matters
    monkeypatch.delenv("MLM_LESSONS_SEED_OFFSET", raising=False)
    plain = pretrain(model_config, tok, train, valid, tiny_config(seed=1), out_dir=tmp_path / "plain", progress=False)
    next_seed = pretrain(model_config, tok, train, valid, tiny_config(seed=2), progress=False)
    monkeypatch.setenv("MLM_LESSONS_SEED_OFFSET", "1")
    shifted = pretrain(model_config, tok, train, valid, tiny_config(seed=1), out_dir=tmp_path / "shifted", progress=False)
    # the weights are those of seed 2: initialisation, data order, masks and dropout all moved ...
    for (name, a), b in zip(shifted.model.named_parameters(), next_seed.model.parameters()):
        assert torch.equal(a, b), name
    assert not all(torch.equal(a, b) for a, b in zip(shifted.model.parameters(), plain.model.parameters()))
    # ... while the evaluation mask stayed that of seed 1: the same positions are scored
    positions = {e["step"]: e for e in shifted.evaluations()}
    assert [e["step"] for e in plain.evaluations()] == list(positions)
    assert evaluate(shifted.model, eval_batches(tok, valid, tiny_config(seed=1)), torch.device("cpu"))["loss"] == \
        pytest.approx(positions[6]["valid_loss"])
    assert load_checkpoint(tmp_path / "shifted" / "checkpoint.pt")["seed_offset"] == 1
    assert json.loads((tmp_path / "shifted" / "config.json").read_text())["seed_offset"] == 1
    # a run is resumed with the offset it was started with
    pretrain(model_config, tok, train, valid, tiny_config(seed=1), out_dir=tmp_path / "split", stop_after=3, progress=False)
    monkeypatch.setenv("MLM_LESSONS_SEED_OFFSET", "0")
    with pytest.raises(ValueError, match="was trained with MLM_LESSONS_SEED_OFFSET=1, this session has 0"):
        pretrain(model_config, tok, train, valid, tiny_config(seed=1), out_dir=tmp_path / "split", resume=True, progress=False)


@pytest.mark.parametrize("raw", ["one", "-1", "1.5"])
def test_a_bad_seed_offset_is_refused(raw, monkeypatch):
    from mlm_lessons.training import seed_offset

    monkeypatch.setenv("MLM_LESSONS_SEED_OFFSET", raw)
    with pytest.raises(ValueError, match=f"MLM_LESSONS_SEED_OFFSET='{raw}' must be a whole number >= 0"):
        seed_offset()
    monkeypatch.setenv("MLM_LESSONS_SEED_OFFSET", " ")
    assert seed_offset() == 0


def test_the_run_cache_keeps_runs_of_different_offsets_apart(tmp_path, monkeypatch):
    tok, train, valid = tiny_tokenizer_and_texts()
    model_config = EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL)
    monkeypatch.setenv("MLM_LESSONS_CACHE", str(tmp_path))
    monkeypatch.delenv("MLM_LESSONS_SEED_OFFSET", raising=False)
    first = pretrain(model_config, tok, train, valid, tiny_config(), cache=True, progress=False)
    assert not first.cached and pretrain(model_config, tok, train, valid, tiny_config(), cache=True, progress=False).cached
    monkeypatch.setenv("MLM_LESSONS_SEED_OFFSET", "3")
    other = pretrain(model_config, tok, train, valid, tiny_config(), cache=True, progress=False)
    assert not other.cached and other.out_dir != first.out_dir


def test_ddp_on_two_cpu_processes(tmp_path):
    worker = Path(__file__).parent / "ddp_worker.py"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker), str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = ((tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1))
    assert r0 == r1 and r0[1] == "2", "identical parameters on every rank, two processes"
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    import hashlib

    digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in ckpt["model"].values() if t.dtype.is_floating_point)).hexdigest()
    assert ckpt["step"] == 4 and digest == r0[0]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["processes"] == 2
    assert len(list((tmp_path / "run").iterdir())) == 4  # checkpoint, tokenizer, metrics, config: rank 0 only


def test_cli_pretrain_and_fill_mask(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", "--corpus", "numpy-docs", "--max-steps", "2", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "step 2: at [MASK] positions valid loss" in printed and (out / "checkpoint.pt").is_file()
    assert main(["pretrain", "--corpus", "numpy-docs", "--max-steps", "2", "--out", str(out), "--quiet"]) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err
    assert main(["pretrain", "--corpus", "numpy-docs", "--max-steps", "2", "--out", str(out), "--quiet", "--resume"]) == 0
    capsys.readouterr()
    assert main(["fill-mask", "--checkpoint", str(out), "Return a new [MASK] with the same size.", "--top-k", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("[MASK] #1: ") and len(re.findall(r"\(\d\.\d{3}\)", line)) == 3  # three pieces, each with its probability
    assert main(["fill-mask", "--checkpoint", str(tmp_path / "none"), "a [MASK]"]) == 2
    made_by = json.loads((out / "made_by.json").read_text())  # what an exported model's card quotes
    assert made_by["corpus"] == "numpy-docs" and len(made_by["commands"]) == 2
    assert made_by["commands"][1].startswith("python -m mlm_lessons pretrain --corpus numpy-docs --max-steps 2") and "--resume" in made_by["commands"][1]
    # the preset's model is in ModernBERT's layout: the run exports as it is
    assert main(["export", "--checkpoint", str(out), "--out", str(tmp_path / "hub")]) == 0
    assert json.loads((tmp_path / "hub" / "config.json").read_text())["architectures"] == ["ModernBertForMaskedLM"]
    assert "pretrain --corpus numpy-docs --max-steps 2" in (tmp_path / "hub" / "README.md").read_text()
    with pytest.raises(SystemExit):  # the option is gone: every preset has the layout
        main(["pretrain", "--corpus", "numpy-docs", "--max-steps", "2", "--out", str(tmp_path / "r3"), "--quiet", "--layout", "modernbert"])
    assert "unrecognized arguments: --layout modernbert" in capsys.readouterr().err
    assert main(["pretrain", "--corpus", "numpy-docs", "--out", str(tmp_path / "r2"), "--resume", "--quiet"]) == 2


def test_a_fate_without_positions_has_a_count_and_no_score():
    from mlm_lessons.model import MaskedLM

    tok, _, valid = tiny_tokenizer_and_texts()
    config = tiny_config(masking=mlm.MaskingConfig(p_mask=0.9, p_random=0.0, p_keep=0.1))
    got = evaluate(MaskedLM(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL)), eval_batches(tok, valid, config), torch.device("cpu"))
    assert got["random_positions"] == 0 and "random_loss" not in got and "random_accuracy" not in got
    assert got["mask_positions"] + got["kept_positions"] == got["positions"] and "kept_loss" in got
