"""Chapter 8's fine-tuning grid under a fair protocol: the learning rate chosen per initialisation
and pooling on the validation split, five seeds, paired comparisons, a bag-of-words baseline.

    python benchmarks/finetune_protocol.py                   # ~50 min on 2 CPU cores
    python benchmarks/finetune_protocol.py --budgets all     # every label, 3 seeds, 600 steps

For every setting (task, labels per class, pooling) and initialisation (from scratch, general,
DAPT, ¬DAPT – chapter 7's models, from the run cache), each learning rate of the grid is run on
every seed; the rate with the best mean *validation* score is chosen (when the best is at an edge
of the grid, the grid is widened by a factor of two on that side, at most twice). Test scores are
stored for every run but reported only at the chosen rate. A seed fixes the label subsample, the
head's initialisation and the example order, the same for every initialisation: the comparisons
are paired. ``--resume FILE`` keeps the runs of an earlier call (same model and seeds) found in FILE.
Writes ``benchmarks/results/finetune_protocol[_all].json`` and prints the tables.
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

from mlm_lessons.adaptation import adapted_models
from mlm_lessons.comparison import bag_of_words, lr_protocol, mean_std, paired
from mlm_lessons.finetuning import FinetuneConfig, build_model, finetune, main_metric
from mlm_lessons.model import EncoderConfig
from mlm_lessons.tasks import load_task
from mlm_lessons.teaching.claims import environment_record, model_record

LRS = (1e-3, 2e-3, 4e-3, 8e-3)
#: labels per class -> the fine-tuning settings of that budget (chapter 8's)
BUDGETS = {
    "10": (10, FinetuneConfig(max_steps=40, eval_every=10, patience=3)),
    "50": (50, FinetuneConfig(max_steps=80, eval_every=20, patience=3)),
    "all": (None, FinetuneConfig(max_steps=600, eval_every=100, patience=4)),
}
#: (task, budget, pooling) – token labeling has no pooling
SETTINGS = [("torch-subpackage", "10", "mean"), ("torch-subpackage", "50", "mean"), ("torch-subpackage", "50", "cls"), ("code-spans", "50", None)]
ALL_SETTINGS = [("torch-subpackage", "all", "mean"), ("code-spans", "all", None)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", choices=("few", "all"), default="few")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=None)
    parser.add_argument("--resume", default=None, metavar="FILE", help="keep the runs already in this results file")
    args = parser.parse_args()
    start = time.perf_counter()
    models = adapted_models(dapt_steps=800, extend=300)
    tok = models.tokenizer
    inits = {"from scratch": EncoderConfig(**models.general.model.config.to_dict()), "general": models.general.model,
             "DAPT": models.dapt.model, "¬DAPT": models.control.model}
    tasks = {name: load_task(name) for name in ("torch-subpackage", "code-spans")}
    seeds = list(range(args.seeds))
    few = args.budgets == "few"
    out = Path(args.out or f"benchmarks/results/finetune_protocol{'' if few else '_all'}.json")
    record = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__, "model": model_record(models.general.model.config), "environment": environment_record(), "seeds": seeds, "runs": [], "chosen": [],
              "bag_of_words": []}
    if not few:  # every label: the rate chosen with 50 labels per class (too slow to sweep)
        few_record = json.loads(Path("benchmarks/results/finetune_protocol.json").read_text())
        chosen_50 = {(c["task"], c["pooling"], c["init"]): c["lr"] for c in few_record["chosen"] if c["budget"] == "50"}
    done = {}
    if args.resume:  # runs are seeded, so a run of an earlier call with the same model and seeds is the same run
        earlier = json.loads(Path(args.resume).read_text())
        if (earlier["model"], earlier["seeds"]) == (record["model"], record["seeds"]):
            done = {(r["task"], r["budget"], r["pooling"], r["init"], r["lr"], r["seed"]): r for r in earlier["runs"]}
        print(f"resuming: {len(done)} runs kept from an earlier call", flush=True)
        record["command"] = record["command"].replace(f" --resume {args.resume}", "")  # the runs are the command's, not the file's
        record["resumed_runs"] = len(done)

    def run(task_name, budget, pooling, init_name, lr, seed):
        if (task_name, budget, pooling, init_name, lr, seed) in done:
            record["runs"].append(done[(task_name, budget, pooling, init_name, lr, seed)])
            return record["runs"][-1]
        per_class, config = BUDGETS[budget]
        task = tasks[task_name].subsample(per_class, seed=seed)
        model = build_model(task, inits[init_name], pooling=pooling or "cls", seed=seed)
        result = finetune(model, tok, task, dataclasses.replace(config, lr=lr, seed=seed))
        metric = main_metric(task)
        row = {"task": task_name, "budget": budget, "pooling": pooling, "init": init_name, "lr": lr, "seed": seed,
               "valid": result.valid[metric], "test": result.test, "best_step": result.best_step, "seconds": result.seconds}
        record["runs"].append(row)
        return row

    for task_name, budget, pooling in (SETTINGS if few else ALL_SETTINGS):
        metric = main_metric(tasks[task_name])
        print(f"\n{task_name}, {budget} labels per class, pooling {pooling}: validation {metric}, mean of {len(seeds)} seeds", flush=True)
        for init_name in inits:
            if few:  # widened by a factor of two on the side of the best, at most twice
                chosen = lr_protocol(lambda lr, s: run(task_name, budget, pooling, init_name, lr, s), LRS, seeds, widen=2)
                lr, edge = chosen["lr"], chosen["at_edge"]
                valid = {r: [row["valid"] for row in rows] for r, rows in chosen["runs"].items()}
                print(f"  {init_name:>12}: " + "  ".join(f"{r:g}: {sum(v) / len(v):.3f}" for r, v in sorted(valid.items()))
                      + f"  -> {lr:g}{' (at the edge)' if edge else ''}", flush=True)
            else:
                lr, edge = chosen_50[(task_name, pooling, init_name)], False
                for s in seeds:
                    run(task_name, budget, pooling, init_name, lr, s)
                print(f"  {init_name:>12}: lr {lr:g} (chosen with 50 labels per class)", flush=True)
            record["chosen"].append({"task": task_name, "budget": budget, "pooling": pooling, "init": init_name, "lr": lr, "at_edge": edge})
        per_class = BUDGETS[budget][0]
        windows = (0, 2) if tasks[task_name].kind == "tagging" else (0,)
        for w in windows:
            if any((b["task"], b["budget"], b["window"]) == (task_name, budget, w) for b in record["bag_of_words"]):
                continue  # the same labels under another pooling
            bows = [bag_of_words(tasks[task_name].subsample(per_class, seed=s), window=w) for s in seeds]
            record["bag_of_words"].append({"task": task_name, "budget": budget, "window": w, "C": [b["C"] for b in bows],
                                           "valid": [b["valid"][metric] for b in bows], "test": [b["test"] for b in bows]})
        out.write_text(json.dumps(record, indent=1))
    record["seconds"] = time.perf_counter() - start
    out.write_text(json.dumps(record, indent=1))
    report(record)


def chosen_scores(record: dict, task: str, budget: str, pooling, init: str, metric: str) -> list[float]:
    lr = next(c["lr"] for c in record["chosen"] if (c["task"], c["budget"], c["pooling"], c["init"]) == (task, budget, pooling, init))
    runs = {r["seed"]: r["test"][metric] for r in record["runs"]
            if (r["task"], r["budget"], r["pooling"], r["init"], r["lr"]) == (task, budget, pooling, init, lr)}
    return [runs[s] for s in record["seeds"]]


def report(record: dict) -> None:
    settings = sorted({(c["task"], c["budget"], c["pooling"]) for c in record["chosen"]}, key=str)
    for task, budget, pooling in settings:
        metric = "macro_f1" if task == "torch-subpackage" else "span_f1"
        inits = [c["init"] for c in record["chosen"] if (c["task"], c["budget"], c["pooling"]) == (task, budget, pooling)]
        print(f"\n{task}, {budget} labels per class, pooling {pooling}: test {metric} at the chosen rate, "
              f"mean ± std over {len(record['seeds'])} seeds")
        scores = {i: chosen_scores(record, task, budget, pooling, i, metric) for i in inits}
        for i in inits:
            line = f"  {i:>12}: {mean_std(scores[i])}"
            if i != "from scratch":
                line += f"   − from scratch: {paired(scores[i], scores['from scratch'])}"
            print(line)
        if {"DAPT", "general"} <= scores.keys():
            print(f"  DAPT − general: {paired(scores['DAPT'], scores['general'])}")
        for b in {(b["task"], b["budget"], b["window"]): b for b in record["bag_of_words"]}.values():
            if (b["task"], b["budget"]) == (task, budget):
                print(f"  bag of words (±{b['window']} words): {mean_std([t[metric] for t in b['test']])}")
    if any(c["pooling"] == "cls" for c in record["chosen"]):
        print("\nmean − [CLS] pooling (torch-subpackage, test macro-F1, paired over seeds)")
        for budget in sorted({c["budget"] for c in record["chosen"] if c["pooling"] == "cls"}):
            for i in [c["init"] for c in record["chosen"] if (c["budget"], c["pooling"]) == (budget, "cls")]:
                d = paired(chosen_scores(record, "torch-subpackage", budget, "mean", i, "macro_f1"),
                           chosen_scores(record, "torch-subpackage", budget, "cls", i, "macro_f1"))
                print(f"  {budget:>3} labels, {i:>12}: {d}")
    print(f"\n{len(record['runs'])} fine-tuning runs in {record.get('seconds', 0):.0f} s")


if __name__ == "__main__":
    main()
