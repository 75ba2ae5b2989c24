"""The fine-tuning learning rate of chapter 8, chosen on the validation split.

    python benchmarks/finetune_lr.py

For each learning rate, fine-tunes chapter 7's general and DAPT encoders and a from-scratch one on
both tasks with few labels (50 per class; 100 paragraphs for code-spans), two seeds, with
chapter 8's settings otherwise, and prints the mean *validation* score (macro-F1, span F1) of the
kept weights. Test scores are not looked at.
"""

from __future__ import annotations

import statistics

from mlm_lessons.adaptation import adapted_models
from mlm_lessons.finetuning import FinetuneConfig, build_model, finetune
from mlm_lessons.model import EncoderConfig
from mlm_lessons.tasks import load_task

LRS = (5e-4, 1e-3, 2e-3, 4e-3)


def main() -> None:
    models = adapted_models(dapt_steps=800, extend=300)
    inits = {"from scratch": EncoderConfig(**models.general.model.config.to_dict()), "general": models.general.model,
             "DAPT": models.dapt.model}
    for task_name, metric in (("torch-subpackage", "macro_f1"), ("code-spans", "span_f1")):
        full = load_task(task_name)
        print(f"\n{task_name}: validation {metric}, few labels, mean of 2 seeds")
        print(f"{'lr':>8} " + " ".join(f"{name:>13}" for name in inits) + f" {'mean':>8}")
        for lr in LRS:
            scores = []
            for name, init in inits.items():
                vals = []
                for seed in (0, 1):
                    task = full.subsample(50, seed=seed)
                    config = FinetuneConfig(lr=lr, max_steps=80, eval_every=20, patience=3, seed=seed)
                    vals.append(finetune(build_model(task, init, seed=seed), models.tokenizer, task, config, evaluate_test=False).valid[metric])
                scores.append(statistics.mean(vals))
            print(f"{lr:>8g} " + " ".join(f"{s:>13.3f}" for s in scores) + f" {statistics.mean(scores):>8.3f}", flush=True)


if __name__ == "__main__":
    main()
