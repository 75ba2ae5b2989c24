"""Chapter 6's predictability study: single pieces, whole words and spans at the same budget of pieces.

    python benchmarks/predictable_masking.py --seeds 5 --workers 2

Pretrains each variant of `mlm_lessons.ablations.PREDICTABILITY` with each seed (the `cpu-small`
model, 1000 steps on python-docs, 15% of the pieces, 80/10/10, dynamic masking), then scores it on
the fixed evaluation mask of pieces and on the one of whole words, fine-tunes it on both of chapter
8's tasks with 50 labels per class at every rate of chapter 8's grid (the rate is chosen per variant
on the validation split; a choice at the grid's edge widens the grid by a factor of two, at most
twice), and measures zero-shot retrieval on chapter 8's summary pairs. A seed fixes the model's
initialisation, the data order, the label subsample and the head, the same for every variant, so
the comparisons are paired. Writes every row, the choices and the paired differences to `--out`
(JSON, rewritten after every job) and the tables to the same name with `.txt`. Each worker process
uses one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

_STATE: dict = {}
TASKS = ("torch-subpackage", "code-spans")


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    import mlm_lessons as mlm
    from mlm_lessons.retrieval import summary_task
    from mlm_lessons.tasks import load_task

    corpus = mlm.load_corpus("python-docs")
    _STATE.update(corpus=corpus, tokenizer=mlm.train_tokenizer(corpus.texts("train"), vocab_size=8000),
                  tasks={name: load_task(name) for name in TASKS}, retrieval=summary_task())


def _job(name: str, seed: int, lrs: list[float], settings: dict, with_scores: bool, tasks: list[str]) -> dict:
    from mlm_lessons.ablations import PREDICTABILITY, PredictabilitySettings, run_predictability

    variant = next(v for v in PREDICTABILITY if v.name == name)
    t0 = time.perf_counter()
    row = run_predictability(variant, seed, tokenizer=_STATE["tokenizer"], corpus=_STATE["corpus"], tasks=_STATE["tasks"],
                             retrieval=_STATE["retrieval"] if with_scores else None, lrs=lrs,
                             settings=PredictabilitySettings(**{**settings, "lrs": tuple(settings["lrs"]), "tasks": tuple(tasks)}))
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def _merge(rows: dict, new: dict) -> None:
    key = (new["variant"], new["seed"])
    if key not in rows:
        rows[key] = new
        return
    for task, runs in new["finetune"].items():
        rows[key]["finetune"].setdefault(task, {}).update(runs)
    rows[key]["seconds"] = rows[key].get("seconds", 0) + new["seconds"]


def summary(record: dict) -> dict:
    """Means ± std of the scores, the rate chosen per variant and task, and the paired differences of
    each variant against single pieces."""
    import statistics

    from mlm_lessons.ablations import PREDICTABILITY, choose_protocol
    from mlm_lessons.comparison import paired

    rows = record["rows"]
    names = [v.name for v in PREDICTABILITY]
    per = {n: sorted((r for r in rows if r["variant"] == n), key=lambda r: r["seed"]) for n in names}
    metrics = {n: {} for n in names}
    for n, members in per.items():
        for key in ("masked_share", "fixed_loss", "fixed_mask_loss", "fixed_mask_accuracy", "word_loss", "word_mask_loss",
                    "word_mask_accuracy", "own_valid_loss", "train_loss"):
            metrics[n][key] = [r[key] for r in members]
        for split in ("valid", "test"):
            for m in ("mrr", "recall@1", "recall@10"):
                values = [r["retrieval"][split][m] for r in members if "retrieval" in r and m in r["retrieval"][split]]
                if values:
                    metrics[n][f"retrieval_{split}_{m}"] = values
    chosen = {task: choose_protocol(rows, task) for task in record["settings"]["tasks"]}
    for task, choice in chosen.items():
        for n in names:
            metrics[n][f"{task}_test"] = choice[n]["test"]
    out = {"means": {n: {k: [statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0] for k, v in m.items()}
                     for n, m in metrics.items()},
           "chosen": {task: {n: {"lr": c["lr"], "at_edge": c["at_edge"]} for n, c in choice.items()} for task, choice in chosen.items()},
           "paired": {}}
    for n in names[1:]:
        for k in metrics[n]:
            d = paired(metrics[n][k], metrics[names[0]][k])
            out["paired"].setdefault(n, {})[k] = {"mean": d.mean, "std": d.std, "wins": d.wins, "n": d.n, "t": d.t}
    return out


def table(record: dict) -> str:
    s = record["summary"]
    names = list(s["means"])
    cols = [("masked_share", "pieces masked"), ("fixed_mask_loss", "[MASK] loss, piece mask"), ("word_mask_loss", "[MASK] loss, word mask"),
            ("word_mask_accuracy", "[MASK] acc., word mask"), ("torch-subpackage_test", "topic macro-F1"),
            ("code-spans_test", "code-span F1"), ("retrieval_test_mrr", "retrieval MRR")]
    lines = [f"{'variant':<14} " + " ".join(f"{title:>24}" for _, title in cols)]
    for n in names:
        cells = [f"{s['means'][n][k][0]:>15.3f} ± {s['means'][n][k][1]:<6.3f}" if k in s["means"][n] else f"{'':>24}" for k, _ in cols]
        lines.append(f"{n:<14} " + " ".join(cells))
    lines.append("")
    lines.append("paired difference against single pieces (mean ± std over seeds; seeds where the variant is higher)")
    for n, diffs in s["paired"].items():
        cells = [f"{diffs[k]['mean']:>+9.3f} ± {diffs[k]['std']:.3f} ({diffs[k]['wins']}/{diffs[k]['n']})" if k in diffs else f"{'':>24}"
                 for k, _ in cols]
        lines.append(f"{n:<14} " + " ".join(f"{c:>24}" for c in cells))
    lines.append("")
    for task, choice in s["chosen"].items():
        lines.append(f"{task}: rate chosen on validation " + ", ".join(
            f"{n} {c['lr']:g}{' (edge)' if c['at_edge'] else ''}" for n, c in choice.items()))
    return "\n".join(lines)


def main() -> None:
    import torch

    import mlm_lessons as mlm
    from mlm_lessons.ablations import PREDICTABILITY, PredictabilitySettings, choose_protocol
    from mlm_lessons.teaching.claims import environment_record

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=PredictabilitySettings.steps)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--widen", type=int, default=2, help="how many times a choice at the grid's edge widens it")
    ap.add_argument("--out", default="benchmarks/results/predictable_masking.json")
    args = ap.parse_args()
    settings = PredictabilitySettings(steps=args.steps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": f"python benchmarks/predictable_masking.py --seeds {args.seeds} --steps {args.steps} --workers {args.workers}",
              "settings": settings.to_dict(), "seeds": args.seeds, "workers": args.workers, "threads_per_worker": 1,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__,
              "package": mlm.__version__, "environment": environment_record(("python-docs", "pytorch-docs")), "rows": []}
    rows: dict = {}
    t0 = time.perf_counter()

    def run(jobs, pool):
        futures = [pool.submit(_job, name, seed, lrs, settings.to_dict(), first, tasks) for name, seed, lrs, first, tasks in jobs]
        for future in as_completed(futures):
            new = future.result()
            _merge(rows, new)
            print(f"[{time.perf_counter() - t0:6.0f} s] {new['variant']} seed {new['seed']}: {new['seconds']:.0f} s", flush=True)
            record["rows"] = [rows[k] for k in sorted(rows, key=lambda k: ([v.name for v in PREDICTABILITY].index(k[0]), k[1]))]
            record["seconds"] = round(time.perf_counter() - t0, 1)
            out.write_text(json.dumps(record, indent=1))

    with ProcessPoolExecutor(args.workers, initializer=_init_worker) as pool:
        run([(v.name, seed, list(settings.lrs), True, list(settings.tasks)) for seed in range(args.seeds) for v in PREDICTABILITY], pool)
        for _ in range(args.widen):  # chapter 8's protocol: a choice at the grid's edge widens the grid
            jobs = []
            for task in settings.tasks:
                for name, choice in choose_protocol(record["rows"], task).items():
                    if not choice["at_edge"]:
                        continue
                    grid = sorted({float(k) for r in record["rows"] if r["variant"] == name for k in r["finetune"][task]})
                    new_lr = choice["lr"] * 2 if choice["lr"] == grid[-1] else choice["lr"] / 2
                    print(f"{task}, {name}: best rate {choice['lr']:g} at the grid's edge; adding {new_lr:g}", flush=True)
                    jobs += [(name, seed, [new_lr], False, [task]) for seed in range(args.seeds)]
            if not jobs:
                break
            run(jobs, pool)  # a widening job fine-tunes one task at one more rate
    record["summary"] = summary(record)
    out.write_text(json.dumps(record, indent=1))
    text = f"$ {record['command']}\n{len(record['rows'])} runs in {record['seconds']:.0f} s\n\n{table(record)}\n"
    out.with_suffix(".txt").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
