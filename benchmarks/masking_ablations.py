"""Chapter 6's full sweep: the three masking studies of `mlm_lessons.ablations`, several seeds each.

    python benchmarks/masking_ablations.py --seeds 3 --steps 1000 --workers 2

Pretrains every variant of every study (`STUDIES`: six corruption splits, four mask ratios, static
vs dynamic masking) with each seed on the `cpu-small` model, scores it on the fixed evaluation
mask, by fine-tuning and by a frozen probe (and an encoder without pretraining as the downstream
floor), and writes every row and the mean ± std per variant to `--out` (JSON, rewritten after every
run) and the table to the same name with `.txt`. The 15%, 80/10/10 run belongs to two studies and
is trained once. Each worker process uses one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

_STATE: dict = {}


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    import mlm_lessons as mlm
    from mlm_lessons.tasks import load_task

    corpus = mlm.load_corpus("python-docs")
    _STATE.update(corpus=corpus, tokenizer=mlm.train_tokenizer(corpus.texts("train"), vocab_size=8000),
                  tasks={name: load_task(name) for name in ("torch-subpackage", "code-spans")})


def _job(variants, seed, settings_dict):
    from mlm_lessons.ablations import AblationSettings, reference_scores, run_variant

    settings = AblationSettings(**settings_dict)
    t0 = time.perf_counter()
    if variants is None:
        rows = [reference_scores(seed, tokenizer=_STATE["tokenizer"], tasks=_STATE["tasks"], settings=settings)]
    else:
        first = run_variant(variants[0], seed, tokenizer=_STATE["tokenizer"], corpus=_STATE["corpus"],
                            tasks=_STATE["tasks"], settings=settings)
        rows = [{**first, "study": v.study, "variant": v.name} for v in variants]
    seconds = time.perf_counter() - t0
    return [{**r, "seconds": seconds} for r in rows]


def _jobs(seeds: int):
    """One job per distinct pretraining run and seed: variants with the same settings share it."""
    from mlm_lessons.ablations import STUDIES

    groups: dict[tuple, list] = {}
    for variants in STUDIES.values():
        for v in variants:
            key = (v.masking(), v.static_masks, v.subset)
            groups.setdefault(key, []).append(v)
    return [(group, seed) for seed in range(seeds) for group in groups.values()] + [(None, seed) for seed in range(seeds)]


def table(summary: list[dict]) -> str:
    cols = [("fixed_loss", "fixed-mask loss", 3), ("fixed_mask_loss", "at [MASK] only", 3), ("fixed_accuracy", "fixed-mask acc.", 3),
            ("finetune_macro_f1", "fine-tune F1", 3), ("finetune_span_f1", "fine-tune span F1", 3), ("probe_macro_f1", "probe F1", 3),
            ("own_valid_loss", "own-mask loss", 3), ("train_loss", "train loss", 3)]
    cols = [c for c in cols if any(c[0] in s for s in summary)]  # the fine-tuning metric of the task used
    head = f"{'study':<11} {'variant':<15} {'n':>2} " + " ".join(f"{title:>17}" for _, title, _ in cols)
    lines = [head, "-" * len(head)]
    for s in summary:
        cells = []
        for key, _, digits in cols:
            cells.append(f"{s[key]:>8.{digits}f} ± {s[key + '_std']:<6.{digits}f}" if key in s else f"{'':>17}")
        lines.append(f"{s['study']:<11} {s['variant']:<15} {s['seeds']:>2} " + " ".join(cells))
    return "\n".join(lines)


def main() -> None:
    import mlm_lessons as mlm
    from mlm_lessons.ablations import AblationSettings, summarize
    from mlm_lessons.training import preset

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=AblationSettings.steps)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/masking_ablations.json")
    args = ap.parse_args()
    settings = AblationSettings(steps=args.steps)
    command = f"python benchmarks/masking_ablations.py --seeds {args.seeds} --steps {args.steps} --workers {args.workers}"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    import torch

    with ProcessPoolExecutor(args.workers, initializer=_init_worker) as pool:
        futures = {pool.submit(_job, group, seed, settings.to_dict()): (group, seed) for group, seed in _jobs(args.seeds)}
        for future in as_completed(futures):
            new = future.result()
            rows.extend(new)
            print(f"[{time.perf_counter() - t0:6.0f} s] {', '.join(r['study'] + ' ' + r['variant'] for r in new)} "
                  f"seed {new[0]['seed']}: {new[0]['seconds']:.0f} s", flush=True)
            order = {(r["study"], r["variant"], r["seed"]): r for r in rows}
            rows = [order[k] for k in sorted(order, key=_row_order)]
            model_config, train_config = preset("cpu-small", 8000)
            recipe = {"source": f"the cpu-small preset of mlm_lessons {mlm.__version__}", "model": model_config.to_dict(),
                      "train": {"batch_size": train_config.batch_size, "max_length": train_config.max_length, "lr": train_config.lr,
                                "warmup_share": train_config.warmup_steps / train_config.max_steps}}
            result = {"command": command, "settings": settings.to_dict(), "recipe": recipe, "seeds": args.seeds, "workers": args.workers,
                      "threads_per_worker": 1, "device": "cpu", "torch": torch.__version__, "cpus": os.cpu_count(),
                      "seconds": round(time.perf_counter() - t0, 1), "rows": rows, "summary": summarize(rows)}
            out.write_text(json.dumps(result, indent=1))
    text = f"$ {command}\n{len(rows)} rows in {time.perf_counter() - t0:.0f} s\n\n{table(result['summary'])}\n"
    out.with_suffix(".txt").write_text(text)
    print(text)


def _row_order(key):
    from mlm_lessons.ablations import STUDIES

    study, variant, seed = key
    names = list(STUDIES) + ["reference"]
    variants = [v.name for v in STUDIES.get(study, [])]
    return names.index(study), variants.index(variant) if variant in variants else 0, seed


if __name__ == "__main__":
    sys.exit(main())
