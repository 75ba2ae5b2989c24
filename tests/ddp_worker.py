"""Pretraining under torch.distributed.run (2 CPU processes, gloo); run by test_training.py.

Each rank writes the sha256 of its final parameters to OUT/rankN.txt, so the test can check that
all ranks hold the same model and that rank 0 alone wrote the run directory.
"""

import hashlib
import os
import sys
from pathlib import Path

import torch

from mlm_lessons.model import EncoderConfig
from mlm_lessons.training import TrainConfig, pretrain

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import tiny_tokenizer_and_texts  # noqa: E402

out = Path(sys.argv[1])
tok, train, valid = tiny_tokenizer_and_texts()
config = TrainConfig(max_steps=4, batch_size=8, grad_accum=2, max_length=16, warmup_steps=1, eval_every=2,
                     eval_sequences=16, log_every=1, device="cpu", seed=3)
model_config = EncoderConfig(vocab_size=tok.vocab_size, max_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64)
result = pretrain(model_config, tok, train, valid, config, out_dir=out / "run", progress=False)
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in result.model.parameters())).hexdigest()
(out / f"rank{os.environ['RANK']}.txt").write_text(f"{digest} {torch.distributed.get_world_size()}")
