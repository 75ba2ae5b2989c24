"""Chapter 5's choice of layout at full length: the ``cpu-small`` preset in ModernBERT's layout
(embedding LayerNorm, GeGLU with d_ff 344, no biases: the one that exports to
``ModernBertForMaskedLM``, and the preset's layout) against chapter 4's arrangement of the same
sizes and recipe (a LayerNorm inside block 0, a GELU feed-forward with d_ff 512, biases; key
``"inside-block-0"``), at about the same FLOPs per token.

    python benchmarks/layout_full_length.py --offsets 0 1 2 3     # ~4 min per run on 2 CPU cores

For each seed offset (``$MLM_LESSONS_SEED_OFFSET``, which shifts every training seed as the book's
tests do; offset 0 is the run chapter 5 shows) both models train the preset's 5,200 steps on the
train split of python-docs and are scored at the ``[MASK]`` positions of the fixed validation mask,
the positions of chapter 5's curves. Runs go through the run cache, so a repeated offset loads
instead of training. Writes ``benchmarks/results/layout_full_length.json`` and prints the table
with the paired difference per offset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

import mlm_lessons as mlm
from mlm_lessons.model import EncoderConfig
from mlm_lessons.seeding import SEED_OFFSET_ENV
from mlm_lessons.training import preset, pretrain

OUT = Path(__file__).resolve().parent / "results" / "layout_full_length.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--offsets", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    corpus = mlm.load_corpus("python-docs")
    tok = mlm.train_tokenizer(corpus.texts("train"), vocab_size=8000)
    rows = []
    for offset in args.offsets:
        os.environ[SEED_OFFSET_ENV] = str(offset)
        modern, train_config = preset("cpu-small", tok.vocab_size)
        inside = EncoderConfig(**{**modern.to_dict(), "embedding_norm": False, "ffn": "gelu", "bias": True, "d_ff": 512})
        for layout, model_config in (("inside-block-0", inside), ("modernbert", modern)):
            start = time.perf_counter()
            run = pretrain(model_config, tok, corpus.texts("train"), corpus.texts("valid"), train_config, cache=True, progress=False)
            last = run.evaluations()[-1]
            rows.append({"offset": offset, "layout": layout, "parameters": run.model.num_parameters(), "step": last["step"],
                         "mask_loss": last["valid_mask_loss"], "mask_accuracy": last["valid_mask_accuracy"],
                         "seconds": time.perf_counter() - start, "cached": run.cached})
            print(json.dumps(rows[-1]), flush=True)
    OUT.write_text(json.dumps({"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
                               "rows": rows}, indent=1))
    print(f"\n{'offset':>6}  {'block 0':>9}  {'ModernBERT':>10}  {'difference':>10}")
    for offset in args.offsets:
        plain, modern = (next(r for r in rows if r["offset"] == offset and r["layout"] == k) for k in ("inside-block-0", "modernbert"))
        print(f"{offset:>6}  {plain['mask_loss']:>9.3f}  {modern['mask_loss']:>10.3f}  {modern['mask_loss'] - plain['mask_loss']:>+10.3f}")


if __name__ == "__main__":
    main()
