"""Mixed-precision paths of ``pretrain`` on a CUDA GPU: fp32, bf16 and fp16 (with the gradient scaler).

    python benchmarks/precision_check.py

A tiny model trains 40 steps in each precision on python-docs; the script prints the final losses,
which must be finite and close to each other, and the gradient scaler's scale for fp16.
"""

from __future__ import annotations

import math
import tempfile

import torch

import mlm_lessons as mlm
from mlm_lessons.model import EncoderConfig
from mlm_lessons.training import TrainConfig, load_checkpoint, pretrain


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("this check needs a CUDA GPU")
    corpus = mlm.load_corpus("python-docs")
    tok = mlm.train_tokenizer(corpus.texts("train"), vocab_size=8000)
    model_config = EncoderConfig(vocab_size=tok.vocab_size, max_len=64, d_model=128, n_layers=2, n_heads=4, d_ff=512)
    print(torch.cuda.get_device_name(), "| bf16 supported:", torch.cuda.is_bf16_supported())
    losses = {}
    for precision in ("fp32", "bf16", "fp16"):
        config = TrainConfig(max_steps=40, batch_size=64, max_length=64, lr=2e-3, warmup_steps=4, eval_every=40,
                             eval_sequences=256, log_every=10, device="cuda", precision=precision, seed=0)
        with tempfile.TemporaryDirectory() as out:
            result = pretrain(model_config, tok, corpus.texts("train"), corpus.texts("valid"), config, out_dir=out, progress=False)
            scale = load_checkpoint(f"{out}/checkpoint.pt")["scaler"].get("scale")
        final = result.evaluations()[-1]
        losses[precision] = final["valid_loss"]
        print(f"{precision}: valid loss {final['valid_loss']:.4f}, accuracy {final['valid_accuracy']:.4f}, "
              f"tokens/s {result.history[-2]['tokens_per_s']:,.0f}, grad scaler scale {scale}")
    assert all(math.isfinite(v) for v in losses.values())
    spread = max(losses.values()) - min(losses.values())
    print(f"largest difference between precisions: {spread:.4f} nats")


if __name__ == "__main__":
    main()
