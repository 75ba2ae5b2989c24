"""Does a CPU pretraining run give the same weights with another number of threads?

Trains chapter 5's ``cpu-small`` recipe for 300 steps (warm-up 30) with the number of
threads given, and prints the sha256 of the weights (``mlm_lessons.web.weights_digest``) and the last
validation [MASK] loss. Run it with two counts, in separate processes:

    python benchmarks/run_threads.py 2; python benchmarks/run_threads.py 2; python benchmarks/run_threads.py 1

The run cache's key (``mlm_lessons.rundir.run_cache_key``) holds the CPU's thread count because of
what this shows.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace

import torch

import mlm_lessons as mlm
from mlm_lessons.training import preset, pretrain
from mlm_lessons.web import weights_digest


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
    torch.set_num_threads(threads)
    corpus = mlm.load_corpus("python-docs")
    tok = mlm.train_tokenizer(corpus.texts("train"), vocab_size=8000)
    model_config, train_config = preset("cpu-small", tok.vocab_size)
    train_config = replace(train_config, max_steps=300, eval_every=300, warmup_steps=30)
    with tempfile.TemporaryDirectory() as folder:
        run = pretrain(model_config, tok, corpus.texts("train"), corpus.texts("valid"), train_config, out_dir=folder,
                       progress=False)
    print(f"{threads} thread(s): weights sha256 {weights_digest(run.model)[:16]}…, "
          f"validation [MASK] loss {run.evaluations()[-1]['valid_mask_loss']:.10f}")


if __name__ == "__main__":
    main()
