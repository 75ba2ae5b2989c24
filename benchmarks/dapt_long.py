"""DAPT run long enough for early stopping to act: the run chapter 7 cannot afford on a CPU.

    python benchmarks/dapt_long.py --device cuda --steps 6000 --out benchmarks/results/dapt_long.json

The general model is chapter 5's (`cpu-small` on python-docs, 2,000 steps); DAPT continues it on
pytorch-docs with chapter 7's settings (`dapt_config`: half the peak learning rate, 5% warm-up)
except for the number of steps, evaluating on pytorch-docs and python-docs every `--eval-every`
steps with patience 3. Prints the curve and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mlm_lessons as mlm
from mlm_lessons.adaptation import dapt, dapt_config
from mlm_lessons.training import preset, pretrain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/dapt_long.json")
    args = ap.parse_args()

    general_c, domain_c = mlm.load_corpus("python-docs"), mlm.load_corpus("pytorch-docs")
    tok = mlm.train_tokenizer(general_c.texts("train"), vocab_size=8000)
    model_config, train_config = preset("cpu-small", tok.vocab_size, device=args.device)
    t0 = time.perf_counter()
    general = pretrain(model_config, tok, general_c.texts("train"), general_c.texts("valid"), train_config, cache=True, progress=False)
    t1 = time.perf_counter()
    config = dapt_config(train_config, args.steps, eval_every=args.eval_every)
    result = dapt(general.model, tok, domain_c.texts("train"), domain_c.texts("valid"), general_c.texts("valid"), config,
                  patience=args.patience, progress=False)
    t2 = time.perf_counter()
    evals = result.evaluations()
    print(f"general model: {t1 - t0:.0f} s ({'cached' if general.cached else 'trained'}); DAPT: {t2 - t1:.0f} s")
    print(f"{'step':>6} {'pytorch-docs':>13} {'python-docs':>12}")
    for e in evals:
        mark = "  <- kept" if e["step"] == result.best_step else ""
        print(f"{e['step']:>6} {e['valid_loss']:>13.3f} {e['general_loss']:>12.3f}{mark}")
    print(f"best step {result.best_step}; stopped early at {result.stopped_at} (max {args.steps} steps, patience {args.patience})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": f"python benchmarks/dapt_long.py --device {args.device} --steps {args.steps}",
                               "best_step": result.best_step, "stopped_at": result.stopped_at, "max_steps": args.steps,
                               "evaluations": evals, "seconds": round(t2 - t1, 1)}, indent=1))


if __name__ == "__main__":
    main()
