"""Chapter 9's question on retrieval: chapter 9's masked and causal models (same size, data and
budget), each given chapter 8's contrastive fine-tune on chapter 8's retrieval task.

    python benchmarks/bidirectional_retrieval.py          # ~15 min on 2 CPU cores

Task: ``pytorch-docs`` docstrings, the summary line finds the rest of its docstring
(:func:`mlm_lessons.retrieval.summary_task`). Protocol of ``retrieval_grid.py``: each model's pooling
(mean or last token) chosen by its zero-shot *validation* MRR; then the contrastive fine-tune
(in-batch negatives, 300 steps at most, batch 32, τ 0.05) with every learning rate of the grid on
three seeds, the rate chosen by mean validation MRR (the grid widened by its factor of three while
the best is at its edge). The from-scratch control is chapter 8's (``retrieval_grid.json``: the same
architecture, tokenizer, task, settings and seeds), so it is not run again. Writes
``benchmarks/results/bidirectional_retrieval.json`` and prints the tables.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from bidirectional_tasks import chapter9_models
from mlm_lessons.adaptation import adapted_models
from mlm_lessons.comparison import lr_protocol, mean_std, paired
from mlm_lessons.retrieval import ContrastiveConfig, contrastive_finetune, retrieval_metrics, summary_task
from mlm_lessons.teaching.claims import environment_record, model_record
from retrieval_grid import CONFIG, LRS, SEEDS, chosen_runs

OUT = Path("benchmarks/results/bidirectional_retrieval.json")
CHAPTER8 = Path("benchmarks/results/retrieval_grid.json")
METRICS = ("recall@1", "recall@10", "mrr")


def main() -> None:
    start = time.perf_counter()
    chapter8 = json.loads(CHAPTER8.read_text())
    if chapter8["config"] != CONFIG.to_dict() or chapter8["seeds"] != list(SEEDS):
        raise SystemExit(f"{CHAPTER8} was made with other settings; run benchmarks/retrieval_grid.py first")
    tok, masked, causal = chapter9_models()
    general = adapted_models(dapt_steps=800, extend=300)  # chapter 8's models, from the run cache
    if general.general.model.config != masked.config or general.tokenizer.get_vocab() != tok.get_vocab():
        raise SystemExit("chapter 9's models no longer share chapter 8's architecture and tokenizer: "
                         "the from-scratch control of retrieval_grid.json does not apply")
    task = summary_task()
    models = {"masked LM": masked, "causal LM": causal}
    record = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__, "model": model_record(masked.config), "environment": environment_record(),
              "pairs": {s: len(task.split(s)) for s in ("train", "valid", "test")},
              "config": CONFIG.to_dict(), "seeds": list(SEEDS), "zero_shot": [], "contrastive": [], "chosen": []}
    for split in ("valid", "test"):
        for name, model in models.items():
            for pooling in ("mean", "last"):
                record["zero_shot"].append({"split": split, "model": name, "pooling": pooling,
                                            **retrieval_metrics(model, tok, task.split(split), pooling=pooling)})
    for name, model in models.items():
        valid = {r["pooling"]: r["mrr"] for r in record["zero_shot"] if r["split"] == "valid" and r["model"] == name}
        pooling = max(valid, key=valid.get)
        print(f"{name}: zero-shot validation MRR {', '.join(f'{p} {v:.3f}' for p, v in valid.items())} – fine-tuned with {pooling} pooling",
              flush=True)

        def run(lr: float, seed: int) -> dict:
            result = contrastive_finetune(model, tok, task, dataclasses.replace(CONFIG, lr=lr, seed=seed, pooling=pooling))
            row = {"model": name, "pooling": pooling, "lr": lr, "seed": seed, "best_step": result.best_step, "valid": result.valid,
                   "test": result.test, "seconds": result.seconds, "history": result.history}
            record["contrastive"].append(row)
            print(f"  lr {lr:g} seed {seed}: validation MRR {result.valid['mrr']:.3f} ({result.seconds:.0f} s)", flush=True)
            return {"valid": result.valid["mrr"]}

        chosen = lr_protocol(run, LRS, SEEDS, widen=2, factor=3.0)
        record["chosen"].append({"model": name, "pooling": pooling, "lr": chosen["lr"], "at_edge": chosen["at_edge"]})
        OUT.write_text(json.dumps(record, indent=1))
    record["seconds"] = time.perf_counter() - start
    OUT.write_text(json.dumps(record, indent=1))
    report(record, chapter8)


def scores(record: dict, chapter8: dict) -> dict:
    """Test metrics per seed at each model's chosen rate: the two models here and chapter 8's from-scratch control."""
    out = {"from scratch": {m: [r["test"][m] for r in chosen_runs(chapter8, "from scratch")] for m in METRICS}}
    for c in record["chosen"]:
        runs = sorted((r for r in record["contrastive"] if r["model"] == c["model"] and r["lr"] == c["lr"]), key=lambda r: r["seed"])
        out[c["model"]] = {m: [r["test"][m] for r in runs] for m in METRICS}
    return out


def report(record: dict, chapter8: dict) -> None:
    bm25 = next(r for r in chapter8["zero_shot"] if r["split"] == "test" and r["encoder"] == "BM25")
    table = scores(record, chapter8)
    print(f"\ntest, after contrastive fine-tuning at the chosen rate (mean ± std over {len(record['seeds'])} seeds); "
          f"BM25: R@1 {bm25['recall@1']:.3f}, R@10 {bm25['recall@10']:.3f}, MRR {bm25['mrr']:.3f}")
    for c in record["chosen"]:
        print(f"  {c['model']:>12} ({c['pooling']} pooling, lr {c['lr']:g}{', at the edge' if c['at_edge'] else ''}): "
              + ", ".join(f"{m} {mean_std(v)}" for m, v in table[c["model"]].items()))
    print(f"  {'from scratch':>12} (chapter 8): " + ", ".join(f"{m} {mean_std(v)}" for m, v in table["from scratch"].items()))
    for m in ("recall@10", "mrr"):
        print(f"  masked − causal, {m}: {paired(table['masked LM'][m], table['causal LM'][m])}")
        for name in ("masked LM", "causal LM"):
            print(f"  {name} − from scratch, {m}: {paired(table[name][m], table['from scratch'][m])}")
    for name in ("masked LM", "causal LM"):
        print(f"  {name} − BM25, recall@10: {statistics.mean(table[name]['recall@10']) - bm25['recall@10']:+.3f}")
    print(f"\n{len(record['contrastive'])} contrastive runs, {record.get('seconds', 0):.0f} s in all")


if __name__ == "__main__":
    main()
