"""Chapter 8's retrieval measurements: BM25, the encoders' pooled vectors, and a contrastive fine-tune.

    python benchmarks/retrieval_grid.py          # ~15 min on 2 CPU cores

Task: ``pytorch-docs`` docstrings, the summary line finds the rest of its docstring among the other
docstrings of the split (:func:`mlm_lessons.retrieval.summary_task`). First every encoder (from
scratch, general, DAPT, ¬DAPT – chapter 7's models) with mean and [CLS] pooling, and BM25, on the
validation and test splits. Then a contrastive fine-tune (in-batch negatives) of the encoder with
the best *validation* MRR and, as the control, of the from-scratch encoder: each learning rate of
the grid on three seeds, the rate chosen by mean validation MRR (the grid is widened by its factor
of three when the best is at its edge). ``--resume`` keeps the runs already in the file. Writes
``benchmarks/results/retrieval_grid.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from mlm_lessons.adaptation import adapted_models
from mlm_lessons.comparison import choose_lr, mean_std, paired
from mlm_lessons.model import MaskedLM
from mlm_lessons.retrieval import ContrastiveConfig, bm25_scores, contrastive_finetune, rank_metrics, retrieval_metrics, summary_task
from mlm_lessons.teaching.claims import environment_record, model_record

LRS = (3e-4, 1e-3, 3e-3)
SEEDS = (0, 1, 2)
CONFIG = ContrastiveConfig(max_steps=300, eval_every=50, patience=3)


OUT = Path("benchmarks/results/retrieval_grid.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resume", action="store_true", help="keep the runs already in the results file")
    args = parser.parse_args()
    start = time.perf_counter()
    models = adapted_models(dapt_steps=800, extend=300)
    tok = models.tokenizer
    torch.manual_seed(0)
    encoders = {"from scratch": MaskedLM(models.general.model.config), "general": models.general.model,
                "DAPT": models.dapt.model, "¬DAPT": models.control.model}
    task = summary_task()
    record = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__, "model": model_record(models.general.model.config), "environment": environment_record(),
              "pairs": {s: len(task.split(s)) for s in ("train", "valid", "test")},
              "config": CONFIG.to_dict(), "seeds": list(SEEDS), "zero_shot": [], "contrastive": [], "chosen": []}
    for split in ("valid", "test"):
        pairs = task.split(split)
        record["zero_shot"].append({"split": split, "encoder": "BM25", "pooling": None,
                                    **rank_metrics(bm25_scores([p.query for p in pairs], [p.target for p in pairs]))})
        for name, model in encoders.items():
            for pooling in ("mean", "cls"):
                record["zero_shot"].append({"split": split, "encoder": name, "pooling": pooling,
                                            **retrieval_metrics(model, tok, pairs, pooling=pooling)})
    print(f"{'split':>5} {'encoder':>12} {'pooling':>7} {'R@1':>6} {'R@10':>6} {'MRR':>6}")
    for r in record["zero_shot"]:
        print(f"{r['split']:>5} {r['encoder']:>12} {str(r['pooling']):>7} {r['recall@1']:6.3f} {r['recall@10']:6.3f} {r['mrr']:6.3f}")
    valid_mean = {r["encoder"]: r["mrr"] for r in record["zero_shot"]
                  if r["split"] == "valid" and r["pooling"] == "mean" and r["encoder"] not in ("BM25", "from scratch")}
    best = max(valid_mean, key=valid_mean.get)
    print(f"\ncontrastive fine-tuning of {best} (best validation MRR with mean pooling) and of the from-scratch encoder", flush=True)
    done = {}
    if args.resume and OUT.exists():  # runs of an earlier call with the same settings are kept
        earlier = json.loads(OUT.read_text())
        done = {(r["encoder"], r["lr"], r["seed"]): r for r in earlier["contrastive"] if earlier["config"] == record["config"]}
    for name in (best, "from scratch"):
        grid, valid = list(LRS), {}
        for _ in range(3):
            for lr in grid:
                if lr in valid:
                    continue
                for seed in SEEDS:
                    row = done.get((name, lr, seed))
                    if row is None:
                        result = contrastive_finetune(encoders[name], tok, task, dataclasses.replace(CONFIG, lr=lr, seed=seed))
                        row = {"encoder": name, "lr": lr, "seed": seed, "best_step": result.best_step, "valid": result.valid,
                               "test": result.test, "seconds": result.seconds, "history": result.history}
                    record["contrastive"].append(row)
                    valid.setdefault(lr, []).append(row["valid"]["mrr"])
                print(f"  {name:>12} lr {lr:g}: validation MRR {mean_std(valid[lr])}", flush=True)
            lr, edge = choose_lr(valid)
            if not edge:
                break
            grid.append(lr * 3 if lr == max(grid) else lr / 3)  # widen on the side of the best (the grid's own factor)
        record["chosen"].append({"encoder": name, "lr": lr, "at_edge": edge})
        OUT.write_text(json.dumps(record, indent=1))
    record["seconds"] = time.perf_counter() - start
    OUT.write_text(json.dumps(record, indent=1))
    report(record)


def chosen_runs(record: dict, encoder: str) -> list[dict]:
    lr = next(c["lr"] for c in record["chosen"] if c["encoder"] == encoder)
    return sorted((r for r in record["contrastive"] if r["encoder"] == encoder and r["lr"] == lr), key=lambda r: r["seed"])


def report(record: dict) -> None:
    bm25 = next(r for r in record["zero_shot"] if r["split"] == "test" and r["encoder"] == "BM25")
    print(f"\ntest, after contrastive fine-tuning at the chosen rate (mean ± std over {len(record['seeds'])} seeds); "
          f"BM25: R@1 {bm25['recall@1']:.3f}, R@10 {bm25['recall@10']:.3f}, MRR {bm25['mrr']:.3f}")
    scores = {}
    for c in record["chosen"]:
        runs = chosen_runs(record, c["encoder"])
        scores[c["encoder"]] = {m: [r["test"][m] for r in runs] for m in ("recall@1", "recall@10", "mrr")}
        print(f"  {c['encoder']:>12} (lr {c['lr']:g}{', at the edge' if c['at_edge'] else ''}): "
              + ", ".join(f"{m} {mean_std(v)}" for m, v in scores[c["encoder"]].items())
              + f"; best steps {[r['best_step'] for r in runs]}")
    pretrained = next(e for e in scores if e != "from scratch")
    for m in ("recall@10", "mrr"):
        print(f"  {pretrained} − from scratch, {m}: {paired(scores[pretrained][m], scores['from scratch'][m])}")
    print(f"  {pretrained} − BM25, recall@10: {statistics.mean(scores[pretrained]['recall@10']) - bm25['recall@10']:+.3f}")
    print(f"\n{len(record['contrastive'])} contrastive runs, {record.get('seconds', 0):.0f} s in all")


if __name__ == "__main__":
    main()
