"""Chapter 8's comparison without its CPU budget: more seeds, more label budgets, no step cap.

    python benchmarks/finetune_grid.py --device cuda --seeds 5 --out benchmarks/results/finetune_grid.json

Builds chapter 7's models with `adapted_models(dapt_steps=800, extend=300)` (general, DAPT, ¬DAPT;
cached), then fine-tunes every initialisation (from scratch, general, DAPT, ¬DAPT) on both tasks
with 10 and 50 labels per class and with all labels, up to `--max-steps` steps with early stopping,
and prints test scores as mean ± std over the seeds. Results are written after every run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from mlm_lessons.adaptation import adapted_models
from mlm_lessons.finetuning import FinetuneConfig, build_model, finetune
from mlm_lessons.model import EncoderConfig
from mlm_lessons.tasks import load_task

METRIC = {"torch-subpackage": "macro_f1", "code-spans": "span_f1"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="10,50,all", help="labels per class, comma-separated; 'all' for every label")
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=5e-4, help="fine-tuning peak learning rate (chapter 8 uses 2e-3)")
    ap.add_argument("--out", default="benchmarks/results/finetune_grid.json")
    ap.add_argument("--time-budget", type=float, default=0, help="start no new seed after this many seconds (0: no limit)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    models = adapted_models(dapt_steps=800, extend=300, device=args.device)
    print(f"pretrained models ready in {time.perf_counter() - t0:.0f} s", flush=True)
    inits = {"from scratch": EncoderConfig(**models.general.model.config.to_dict()), "general": models.general.model,
             "DAPT": models.dapt.model, "¬DAPT": models.control.model}
    budgets = [None if b == "all" else int(b) for b in args.budgets.split(",")]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tasks = {name: load_task(name) for name in METRIC}
    runs, seeds_done = [], 0
    command = (f"python benchmarks/finetune_grid.py --device {args.device} --seeds {args.seeds} --budgets {args.budgets} "
               f"--max-steps {args.max_steps} --lr {args.lr:g}")
    for seed in range(args.seeds):  # seed by seed: a time budget cut leaves whole seeds
        if args.time_budget and time.perf_counter() - t0 > args.time_budget:
            print(f"time budget of {args.time_budget} s spent: stopping after {seeds_done} seeds", flush=True)
            break
        for task_name, full in tasks.items():
            for per_class in budgets:
                task = full.subsample(per_class, seed=seed)
                for init_name, init in inits.items():
                    config = FinetuneConfig(lr=args.lr, max_steps=args.max_steps, seed=seed, device=args.device)
                    r = finetune(build_model(task, init, seed=seed), models.tokenizer, task, config)
                    runs.append({"task": task_name, "labels_per_class": per_class, "init": init_name, "seed": seed,
                                 "train_examples": len(task.train), "best_step": r.best_step, "steps": r.history[-1]["step"],
                                 "seconds": round(r.seconds, 1), **r.test})
        seeds_done += 1
        out.write_text(json.dumps({"command": command, "seeds_done": seeds_done, "runs": runs}, indent=1))
        print(f"seed {seed}: {len(runs)} runs done ({time.perf_counter() - t0:.0f} s)", flush=True)
    args.seeds = seeds_done
    for task_name, metric in METRIC.items():
        print(f"\n{task_name}: test {metric}, mean ± std over {args.seeds} seeds")
        print(f"{'init':>14} " + " ".join(f"{('all' if b is None else b):>15}" for b in budgets))
        for init_name in inits:
            cells = []
            for b in budgets:
                v = [r[metric] for r in runs if r["task"] == task_name and r["init"] == init_name and r["labels_per_class"] == b]
                cells.append(f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0:.3f}")
            print(f"{init_name:>14} " + " ".join(f"{c:>15}" for c in cells))


if __name__ == "__main__":
    main()
