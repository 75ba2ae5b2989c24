"""What makes the small encoder learn on a laptop CPU: recipes side by side at equal wall-clock time.

    python benchmarks/cpu_recipe.py                      # every variant, 90 s each (about 30 min)
    python benchmarks/cpu_recipe.py --seconds 60 --only learned-15 rope-15
    python benchmarks/cpu_recipe.py --preset --seeds 0 1  # the cpu-small preset as it stands, full length
    python benchmarks/cpu_recipe.py --preset --set batch_size=16 lr=2e-3 max_steps=4000  # the preset, settings changed
    python benchmarks/cpu_recipe.py --only cpu-small-90s modernbert-90s modernbert-bias-90s --seeds 0 1  # the exportable layout

Each variant changes one thing of a reference recipe (the earlier ``cpu-small`` recipe: d 128,
2 layers, V 8,000, learned positions, 15% masking, batch 32 × 64, lr 2e-3, chunks not packed).
It is trained on python-docs for the same wall-clock budget: a short
calibration run measures its seconds per step on this machine, and the real run gets as many steps
as fit in ``--seconds``, with the warm-up and the linear decay stretched over them (a schedule tied
to the budget, as in Cramming). Every run is then scored the same way, on the fixed evaluation mask
of chapter 6 (python-docs valid, 15%, 80/10/10, seed 0) at the ``[MASK]`` positions only, against
the unigram guess at those same positions: a model that predicts token frequencies and ignores the
context scores the unigram exactly, so the gap below it is what the context bought.

Losses of variants with another vocabulary size are per piece of another tokenizer: compare their
gap to their own unigram and their accuracy, not their loss. One seed per variant: differences of
a few hundredths of a nat are within the spread of seeds (run ``--seeds 0 1 2`` on the rows you
want to compare). ``--preset`` instead trains the ``cpu-small`` preset for its own number of
steps, scored the same way – with ``--set``, some of its training settings changed. Results: ``benchmarks/results/cpu_recipe.json`` (rows appended, one per run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import mlm_lessons as mlm
from mlm_lessons.ablations import evaluate_by_fate, fixed_eval_config
from mlm_lessons.masking import MaskingConfig
from mlm_lessons.training import PRESETS, TrainConfig, eval_batches, preset, pretrain, train_rows

RESULTS = Path(__file__).parent / "results" / "cpu_recipe.json"
CALIBRATION_STEPS = 30

# name: (what changes, model overrides, training overrides); masking and vocabulary are training keys here
# the earlier cpu-small recipe, which the variants below change one thing of (the preset has moved on since)
REFERENCE = {"positions": "learned", "mask_ratio": 0.15, "vocab_size": 8000, "warmup_share": 0.1, "pack": False,
             "batch_size": 32, "lr": 2e-3,
             # chapter 4's arrangement: a LayerNorm inside block 0, a GELU feed-forward, biases
             "embedding_norm": False, "ffn": "gelu", "d_ff": 512, "bias": True}
NOT_TRAIN_KEYS = {"mask_ratio", "vocab_size", "warmup_share"}  # set through the masking, the tokenizer, the warm-up
#: the cpu-small preset's settings, as changes of the reference
PRESET_SETTINGS = {"positions": "rope", "mask_ratio": 0.40, "batch_size": 12, "lr": 1.4e-3, "pack": True}
VARIANTS: dict[str, tuple[str, dict]] = {
    "learned-15": ("reference: learned positions, 15% masking", {}),
    "rope-15": ("rotary positions", {"positions": "rope"}),
    "alibi-15": ("ALiBi distance bias", {"positions": "alibi"}),
    "learned-40": ("40% masking", {"mask_ratio": 0.40}),
    "rope-30": ("rotary, 30% masking", {"positions": "rope", "mask_ratio": 0.30}),
    "rope-40": ("rotary, 40% masking", {"positions": "rope", "mask_ratio": 0.40}),
    "alibi-40": ("ALiBi, 40% masking", {"positions": "alibi", "mask_ratio": 0.40}),
    "rope-40-lr1e-3": ("rotary, 40%, lr 1e-3", {"positions": "rope", "mask_ratio": 0.40, "lr": 1e-3}),
    "rope-40-lr4e-3": ("rotary, 40%, lr 4e-3", {"positions": "rope", "mask_ratio": 0.40, "lr": 4e-3}),
    "rope-40-warm2": ("rotary, 40%, warm-up 2% of the run", {"positions": "rope", "mask_ratio": 0.40, "warmup_share": 0.02}),
    "rope-40-b16": ("rotary, 40%, batch 16", {"positions": "rope", "mask_ratio": 0.40, "batch_size": 16}),
    "rope-40-b64": ("rotary, 40%, batch 64", {"positions": "rope", "mask_ratio": 0.40, "batch_size": 64}),
    "rope-40-d192": ("rotary, 40%, width 192 (d_ff 768)", {"positions": "rope", "mask_ratio": 0.40, "d_model": 192, "d_ff": 768}),
    "rope-40-l4": ("rotary, 40%, 4 layers", {"positions": "rope", "mask_ratio": 0.40, "n_layers": 4}),
    "rope-40-v4k": ("rotary, 40%, vocabulary 4,000", {"positions": "rope", "mask_ratio": 0.40, "vocab_size": 4000}),
    "rope-40-v16k": ("rotary, 40%, vocabulary 16,000", {"positions": "rope", "mask_ratio": 0.40, "vocab_size": 16000}),
    "rope-40-compile": ("rotary, 40%, torch.compile", {"positions": "rope", "mask_ratio": 0.40, "compile": True}),
    # the cpu-small preset's training settings in chapter 4's arrangement, and in ModernBERT's exportable layout (embedding
    # LayerNorm, GeGLU with d_ff 344 – two thirds of 512, about the same parameters and FLOPs – and no biases), the preset's
    "cpu-small-90s": ("the cpu-small preset's settings in chapter 4's arrangement, 90 s", PRESET_SETTINGS),
    "modernbert-90s": ("the same, ModernBERT's layout (embedding norm, GeGLU d_ff 344, no biases): the preset's model",
                       {**PRESET_SETTINGS, "embedding_norm": True, "ffn": "geglu", "d_ff": 344, "bias": False}),
    "modernbert-bias-90s": ("the same, ModernBERT's layout with biases", {**PRESET_SETTINGS, "embedding_norm": True, "ffn": "geglu", "d_ff": 344}),
}
MODEL_KEYS = {"positions", "d_model", "d_ff", "n_layers", "n_heads", "rope_theta", "embedding_norm", "ffn", "bias"}


def configs(changes: dict, vocab_size: int, steps: int, seed: int):
    """The cpu-small configuration with ``changes`` applied, for a run of ``steps`` steps."""
    settings = {**REFERENCE, **changes}
    model_config, train_config = preset("cpu-small", vocab_size, seed=seed)
    model_kw = {k: v for k, v in settings.items() if k in MODEL_KEYS}
    train_kw = {k: v for k, v in settings.items() if k not in MODEL_KEYS | NOT_TRAIN_KEYS}
    model_config = model_config.__class__(**{**model_config.to_dict(), **model_kw})
    train_config = train_config.replace(
        **train_kw, max_steps=steps, warmup_steps=max(1, round(settings["warmup_share"] * steps)), eval_every=steps,
        eval_sequences=64, log_every=max(1, min(50, steps // 4)), masking=MaskingConfig(mask_ratio=settings["mask_ratio"]),
    )
    return model_config, train_config


def tokens_per_step(tok, train, train_config) -> float:
    """Real (non-padding) tokens in one step's batch, on average over the training rows."""
    rows = train_rows(tok, train, train_config)
    return train_config.batch_size * statistics.fmean(len(ex["input_ids"]) for ex in rows)


def parse_settings(pairs: list[str]) -> dict:
    """``["batch_size=12", "lr=1.4e-3", "pack=false"]`` -> training settings for :func:`preset`."""
    settings = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in TrainConfig.__dataclass_fields__ or key in ("masking", "eval_masking"):
            raise SystemExit(f"--set takes KEY=VALUE with KEY a TrainConfig field (not the masking), got {pair!r}")
        settings[key] = {"true": True, "false": False}.get(raw.lower(), None)
        if settings[key] is None:
            settings[key] = float(raw) if any(c in raw for c in ".e") else int(raw)
    return settings


def run(name: str, description: str, changes: dict, *, seconds: float | None, steps: int | None, seed: int, corpus, tokenizers,
        valid_counts_cache: dict, preset_settings: dict | None = None) -> dict:
    vocab_size = (changes or {}).get("vocab_size", REFERENCE["vocab_size"])
    if vocab_size not in tokenizers:
        tokenizers[vocab_size] = mlm.train_tokenizer(corpus.texts("train"), vocab_size=vocab_size)
    tok = tokenizers[vocab_size]
    train, valid = corpus.texts("train"), corpus.texts("valid")
    if changes is None:  # the preset as the package defines it (with --set: those training settings changed)
        model_config, train_config = preset("cpu-small", tok.vocab_size, seed=seed, **(preset_settings or {}))
        steps = train_config.max_steps
    else:
        if steps is None:  # equal wall-clock: measure this recipe's seconds per step here, then fill the budget
            model_config, train_config = configs(changes, tok.vocab_size, CALIBRATION_STEPS, seed)
            calibration = pretrain(model_config, tok, train, valid, train_config.replace(eval_sequences=8, log_every=10), progress=False)
            # the training steps' own speed (the log's tokens/s leaves out tokenizing and evaluation);
            # the first 10 steps (warm-up of the kernels, compilation) count, as they would in the real run
            speeds = [h["tokens_per_s"] for h in calibration.history if "tokens_per_s" in h]
            per_step = tokens_per_step(tok, train, train_config) / statistics.fmean(speeds)
            steps = max(CALIBRATION_STEPS, int(seconds / per_step))
        model_config, train_config = configs(changes, tok.vocab_size, steps, seed)
    start = time.perf_counter()
    result = pretrain(model_config, tok, train, valid, train_config, progress=False)
    wall = time.perf_counter() - start
    fixed = fixed_eval_config(train_config.max_length)
    scores = evaluate_by_fate(result.model, tok, valid, fixed)
    if vocab_size not in valid_counts_cache:
        counts = mlm.token_counts(tok, train, max_length=train_config.max_length)
        valid_counts_cache[vocab_size] = mlm.context_free_baselines(eval_batches(tok, valid, fixed), counts, fixed.masking, tok.special_ids)
    base = valid_counts_cache[vocab_size]
    speeds = [h["tokens_per_s"] for h in result.history if "tokens_per_s" in h]
    per_step = tokens_per_step(tok, train, train_config)
    return {
        "variant": name, "what": description, "seed": seed, "steps": steps, "wall_s": wall,
        "train_s": steps * per_step / statistics.fmean(speeds), "tokens_seen": steps * per_step, "tokens_per_s": statistics.median(speeds),
        "mask_loss": scores["mask_loss"], "mask_accuracy": scores["mask_accuracy"],
        "unigram_mask_loss": base["mask_loss"], "unigram_mask_accuracy": base["mask_accuracy"],
        "gap_to_unigram": base["mask_loss"] - scores["mask_loss"],
        "mixed_loss": scores["loss"], "context_free_mixed_loss": base["loss"],
        "model": model_config.to_dict(), "train": {k: v for k, v in train_config.to_dict().items() if k != "masking"},
        "mask_ratio": train_config.masking.mask_ratio, "threads": torch.get_num_threads(), "torch": torch.__version__,
    }


def report(rows: list[dict]) -> str:
    """The rows as a Markdown table, in the order they were run."""
    lines = ["| variant | what changes | seed | steps | train s | wall s | tokens seen | tokens/s | [MASK] loss | unigram at [MASK] | gap | [MASK] accuracy |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        changed = ", ".join(f"{k} {v}" for k, v in r.get("preset_settings", {}).items())
        what = r["what"] if r["budget_s"] else ("the preset with " + changed if changed else "the preset as defined")
        lines.append(f"| {r['variant'].split(' with ')[0]} | {what} | {r['seed']} | "
                     f"{r['steps']:,} | {r['train_s']:.0f} | {r['wall_s']:.0f} | {r['tokens_seen'] / 1e6:.2f} M | {r['tokens_per_s']:,.0f} | "
                     f"{r['mask_loss']:.3f} | {r['unigram_mask_loss']:.3f} | {r['gap_to_unigram']:.2f} | {r['mask_accuracy']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="wall-clock budget of each variant")
    parser.add_argument("--only", nargs="*", default=None, help=f"variants to run (default: all): {', '.join(VARIANTS)}")
    parser.add_argument("--preset", action="store_true", help="instead: the cpu-small preset as it stands, its own steps")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="with --preset: training settings to change (max_steps also scales the warm-up)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="only print the stored rows of --out as a Markdown table")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.out.read_text())))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = set(args.only or ()) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    corpus = mlm.load_corpus("python-docs")
    tokenizers, baselines = {}, {}
    rows = json.loads(args.out.read_text()) if args.out.is_file() else []
    changed = parse_settings(args.set)
    if changed and not args.preset:
        raise SystemExit("--set changes the preset's settings; use it with --preset")
    if args.preset:
        what = ", ".join(f"{k} {v}" for k, v in changed.items())
        plan = [("preset cpu-small" + (" with " + what if what else ""), f"the cpu-small preset as defined: {PRESETS['cpu-small']}", None, None)]
    else:
        plan = [(n, VARIANTS[n][0], VARIANTS[n][1], None) for n in (args.only or VARIANTS)]
    print(f"{'variant':<18} {'seed':>4} {'steps':>6} {'train s':>7} {'tokens':>7} {'tok/s':>7} {'[MASK] loss':>11} "
          f"{'unigram':>8} {'gap':>6} {'[MASK] acc':>10}", flush=True)
    for name, description, changes, steps in plan:
        for seed in args.seeds:
            row = run(name, description, changes, seconds=args.seconds, steps=steps, seed=seed, corpus=corpus,
                      tokenizers=tokenizers, valid_counts_cache=baselines, preset_settings=changed)
            row["budget_s"] = None if changes is None else args.seconds
            row["preset_settings"] = changed
            rows.append(row)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(rows, indent=1))
            print(f"{name:<18} {seed:>4} {row['steps']:>6} {row['train_s']:>7.0f} {row['tokens_seen'] / 1e6:>6.2f}M "
                  f"{row['tokens_per_s']:>7.0f} {row['mask_loss']:>11.3f} {row['unigram_mask_loss']:>8.3f} "
                  f"{row['gap_to_unigram']:>6.2f} {row['mask_accuracy']:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
