"""Chapter 9's question as a measurement: a masked and a causal model of the same size, data and
budget, fine-tuned and probed on chapter 8's understanding tasks, under chapter 8's protocol.

    python benchmarks/bidirectional_tasks.py          # ~15 min on 2 CPU cores

The two models are chapter 9's (1,000 steps each on ``python-docs``, from the run cache). Settings:
``torch-subpackage`` with 50 labels per class fine-tuned (mean pooling) and probed (the encoder
frozen, the head alone trained on its mean-pooled features), and ``code-spans`` with 50. Every
learning rate of the grid on five seeds, the rate chosen by mean *validation* score (the grid is
widened when the best is at its edge). The from-scratch runs of the fine-tuned settings are chapter
8's (``finetune_protocol.json``: same architecture, tokenizer, seeds and settings); the probe of
random weights is run here. Writes ``benchmarks/results/bidirectional_tasks.json``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch

import mlm_lessons as mlm
from mlm_lessons.comparison import choose_lr, mean_std, paired
from mlm_lessons.finetuning import FinetuneConfig, build_model, finetune, main_metric
from mlm_lessons.masking import MaskingConfig
from mlm_lessons.model import EncoderConfig
from mlm_lessons.tasks import load_task
from mlm_lessons.teaching.claims import environment_record, model_record
from mlm_lessons.training import preset, pretrain

LRS = {False: (1e-3, 2e-3, 4e-3, 8e-3), True: (4e-3, 8e-3, 1.6e-2, 3.2e-2)}  # fine-tuned, probed (the head alone)
CONFIG = FinetuneConfig(max_steps=80, eval_every=20, patience=3)
SETTINGS = [("torch-subpackage", False), ("torch-subpackage", True), ("code-spans", False)]  # (task, frozen encoder)
SEEDS = [0, 1, 2, 3, 4]


def chapter9_models():
    """Chapter 9's pair: the same preset for 1,000 steps, 40% masking or the causal objective."""
    corpus = mlm.load_corpus("python-docs")
    tok = mlm.train_tokenizer(corpus.texts("train"), vocab_size=8000)
    model_config, train_config = preset("cpu-small", tok.vocab_size, max_steps=1000)
    masked = pretrain(model_config, tok, corpus.texts("train"), corpus.texts("valid"),
                      train_config.replace(masking=MaskingConfig(mask_ratio=0.40)), cache=True, progress=False)
    causal = pretrain(EncoderConfig(**{**model_config.to_dict(), "causal": True}), tok, corpus.texts("train"), corpus.texts("valid"),
                      train_config.replace(objective="causal"), cache=True, progress=False)
    return tok, masked.model, causal.model


def main() -> None:
    start = time.perf_counter()
    tok, masked, causal = chapter9_models()
    inits = {"from scratch": EncoderConfig(**masked.config.to_dict()), "masked LM": masked, "causal LM": causal}
    tasks = {name: load_task(name) for name in ("torch-subpackage", "code-spans")}
    record = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__, "model": model_record(masked.config), "environment": environment_record(), "seeds": SEEDS, "runs": [], "chosen": []}
    out = Path("benchmarks/results/bidirectional_tasks.json")
    for task_name, frozen in SETTINGS:
        metric = main_metric(tasks[task_name])
        pooling = "mean" if task_name == "torch-subpackage" else None
        print(f"\n{task_name}, 50 labels per class, {'probe (encoder frozen)' if frozen else 'fine-tuned'}: "
              f"validation {metric}, mean of {len(SEEDS)} seeds", flush=True)
        for init_name, init in inits.items():
            if init_name == "from scratch" and not frozen:
                continue  # chapter 8's runs
            grid, valid = list(LRS[frozen]), {}
            for _ in range(3):
                for lr in grid:
                    if lr in valid:
                        continue
                    valid[lr] = []
                    for seed in SEEDS:
                        task = tasks[task_name].subsample(50, seed=seed)
                        config = dataclasses.replace(CONFIG, lr=lr, seed=seed, freeze_encoder=frozen)
                        result = finetune(build_model(task, init, pooling=pooling or "cls", seed=seed), tok, task, config)
                        record["runs"].append({"task": task_name, "frozen": frozen, "init": init_name, "lr": lr, "seed": seed,
                                               "valid": result.valid[metric], "test": result.test, "best_step": result.best_step})
                        valid[lr].append(result.valid[metric])
                lr, edge = choose_lr(valid)
                if not edge:
                    break
                grid.append(lr * 2 if lr == max(grid) else lr / 2)
            record["chosen"].append({"task": task_name, "frozen": frozen, "init": init_name, "lr": lr, "at_edge": edge})
            print(f"  {init_name:>12}: " + "  ".join(f"{r:g}: {sum(v) / len(v):.3f}" for r, v in sorted(valid.items()))
                  + f"  -> {lr:g}{' (at the edge)' if edge else ''}", flush=True)
            out.write_text(json.dumps(record, indent=1))
    record["seconds"] = time.perf_counter() - start
    out.write_text(json.dumps(record, indent=1))
    report(record)


def chosen_scores(record: dict, task: str, frozen: bool, init: str, metric: str) -> list[float]:
    lr = next(c["lr"] for c in record["chosen"] if (c["task"], c["frozen"], c["init"]) == (task, frozen, init))
    by_seed = {r["seed"]: r["test"][metric] for r in record["runs"] if (r["task"], r["frozen"], r["init"], r["lr"]) == (task, frozen, init, lr)}
    return [by_seed[s] for s in record["seeds"]]


def report(record: dict) -> None:
    for task, frozen in SETTINGS:
        metric = "macro_f1" if task == "torch-subpackage" else "span_f1"
        inits = [c["init"] for c in record["chosen"] if (c["task"], c["frozen"]) == (task, frozen)]
        print(f"\n{task}, 50 labels, {'probe' if frozen else 'fine-tuned'}: test {metric}, mean ± std over {len(record['seeds'])} seeds")
        scores = {i: chosen_scores(record, task, frozen, i, metric) for i in inits}
        for i in inits:
            print(f"  {i:>12}: {mean_std(scores[i])}")
        print(f"  masked − causal: {paired(scores['masked LM'], scores['causal LM'])}")
    print(f"\n{len(record['runs'])} runs in {record.get('seconds', 0):.0f} s")


if __name__ == "__main__":
    main()
