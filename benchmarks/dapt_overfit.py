"""Chapter 7's over-specialisation: DAPT on a small slice of the domain at the pretraining rate,
with early stopping and without, and what each model gives downstream.

    python benchmarks/dapt_overfit.py          # ~15 min on 2 CPU cores

The general model of chapter 5 continues masked-LM training on the first ``--share`` of the domain's
training documents for ``--steps`` steps at the *pretraining* peak rate (twice chapter 7's DAPT
rate): once to the end (the *last* weights), once with ``patience=3`` on the domain validation loss
(the *kept* weights, those of the best evaluation). Both runs draw the same batches, so the second
is the first cut short. Then both are fine-tuned under chapter 8's protocol – the rate chosen per
starting point on validation from a grid widened at its edge, ``--seeds`` paired seeds – on the
topic task with 10 and 50 labels per class and on code spans with 50. Writes
``benchmarks/results/dapt_overfit.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch

from mlm_lessons.adaptation import OVERFIT, adapted_models, overfit_runs
from mlm_lessons.comparison import finetune_with_protocol, mean_std, paired
from mlm_lessons.finetuning import FinetuneConfig
from mlm_lessons.tasks import load_task
from mlm_lessons.teaching.claims import environment_record, model_record

LRS = (1e-3, 2e-3, 4e-3)
#: (task, labels per class, fine-tuning settings): chapter 8's budgets, mean pooling
SETTINGS = [("torch-subpackage", 10, FinetuneConfig(max_steps=40, eval_every=10, patience=3)),
            ("torch-subpackage", 50, FinetuneConfig(max_steps=80, eval_every=20, patience=3)),
            ("code-spans", 50, FinetuneConfig(max_steps=80, eval_every=20, patience=3))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/dapt_overfit.json")
    args = parser.parse_args()
    start = time.perf_counter()
    models = adapted_models(dapt_steps=800, extend=300)
    runs = overfit_runs(models.general.model, models.tokenizer, models.config)
    evaluations = [{k: h[k] for k in ("step", "valid_mask_loss", "general_mask_loss")} for h in runs.last.evaluations()]
    record = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__, "model": model_record(models.general.model.config), "environment": environment_record(), "settings": dataclasses.asdict(OVERFIT),
              "best_step": runs.kept.best_step,
              "stopped_at": runs.kept.stopped_at, "evaluations": evaluations, "pretraining_seconds": time.perf_counter() - start,
              "seeds": list(range(args.seeds)), "results": []}
    print(f"DAPT on {runs.documents} documents, {OVERFIT.steps} steps at lr {runs.config.lr:g}: best step {runs.kept.best_step}, "
          f"early stopping fired at step {runs.kept.stopped_at}")
    for h in evaluations:
        print(f"  step {h['step']:>5}: domain {h['valid_mask_loss']:.3f}  general {h['general_mask_loss']:.3f}")
    inits = {"kept": runs.kept.model, "last": runs.last.model}
    tasks = {name: load_task(name) for name in ("torch-subpackage", "code-spans")}
    for task_name, per_class, config in SETTINGS:
        for init_name, init in inits.items():
            chosen = finetune_with_protocol(tasks[task_name], init, models.tokenizer, config, per_class=per_class, lrs=LRS,
                                            seeds=record["seeds"])
            record["results"].append({"task": task_name, "per_class": per_class, "init": init_name, **chosen})
            Path(args.out).write_text(json.dumps(record, indent=1))
    record["seconds"] = time.perf_counter() - start
    Path(args.out).write_text(json.dumps(record, indent=1))
    report(record)


def test_scores(record: dict, task: str, per_class: int, init: str) -> list[float]:
    entry = next(r for r in record["results"] if (r["task"], r["per_class"], r["init"]) == (task, per_class, init))
    return [row["test"] for row in entry["grid"][str(entry["lr"])]]


def report(record: dict) -> None:
    for task, per_class, _ in SETTINGS:
        entries = [r for r in record["results"] if (r["task"], r["per_class"]) == (task, per_class)]
        print(f"\n{task}, {per_class} labels per class: test {entries[0]['metric']} at the rate chosen on validation, "
              f"{len(record['seeds'])} seeds")
        for e in entries:
            print(f"  {e['init']:>5} (lr {e['lr']:g}{', at the edge' if e['at_edge'] else ''}): "
                  f"{mean_std(test_scores(record, task, per_class, e['init']))}")
        print(f"  kept − last: {paired(test_scores(record, task, per_class, 'kept'), test_scores(record, task, per_class, 'last'))}")
    print(f"\n{record.get('seconds', 0):.0f} s in all")


if __name__ == "__main__":
    main()
