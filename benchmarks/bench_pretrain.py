"""Training-step throughput: mlm_lessons' MaskedLM against transformers' BertForMaskedLM.

    python benchmarks/bench_pretrain.py [--device cuda] [--reps 20]

Identical sizes (vocabulary 8192, d_model 256, 4 layers, 4 heads, d_ff 1024, post-LN as BERT,
dropout 0.1), identical batches of 32 × 128 with 15% of the positions labelled, the same AdamW.
A step is forward + backward + optimizer step. The two models alternate, step by step, in one
process; the figures are medians. On a GPU both run under bf16 autocast, and MFU is reported
against the device's dense peak (each model's own FLOPs: the Hugging Face head runs at every
position, ours only at the labelled ones).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from mlm_lessons.model import EncoderConfig, MaskedLM, flops_per_token
from mlm_lessons.training import peak_flops


def main() -> None:
    import transformers

    from mlm_lessons.hf import to_transformers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    args = parser.parse_args()
    device = torch.device(args.device)
    config = EncoderConfig(vocab_size=8192, max_len=args.length, d_model=256, n_layers=4, n_heads=4, d_ff=1024, dropout=0.1, norm="post")
    torch.manual_seed(0)
    ours = MaskedLM(config).to(device).train()
    theirs = to_transformers(ours.cpu()).to(device).train()  # same weights, same sizes
    ours.to(device)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    opt_theirs = torch.optim.AdamW(theirs.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, config.vocab_size, (args.batch, args.length), generator=g)
    labels = torch.where(torch.rand(args.batch, args.length, generator=g) < 0.15, ids, torch.full_like(ids, -100))
    ids, labels = ids.to(device), labels.to(device)
    mask = torch.ones_like(ids)
    precision = "bf16" if device.type == "cuda" else "fp32"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def step_ours():
        with autocast:
            loss = ours(ids, mask, labels).loss
        loss.backward()
        opt_ours.step()
        opt_ours.zero_grad(set_to_none=True)

    def step_theirs():
        with autocast:
            loss = theirs(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt_theirs.step()
        opt_theirs.zero_grad(set_to_none=True)

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    for _ in range(3):  # warm-up
        step_ours()
        step_theirs()
    times = {"ours": [], "theirs": []}
    for i in range(args.reps):
        order = [("ours", step_ours), ("theirs", step_theirs)]
        for name, fn in order if i % 2 == 0 else reversed(order):
            times[name].append(timed(fn))
    tokens = ids.numel()
    med = {k: statistics.median(v) for k, v in times.items()}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}; torch {torch.__version__}, transformers {transformers.__version__}; "
          f"batch {args.batch} x {args.length}, {args.reps} interleaved steps each, {precision}")
    peak = peak_flops(device, precision)
    labelled = float((labels != -100).float().mean())
    for k, fraction in (("ours", labelled), ("theirs", 1.0)):
        line = f"{'mlm_lessons MaskedLM' if k == 'ours' else 'transformers BertForMaskedLM':30s} {tokens / med[k]:12,.0f} tokens/s"
        if peak:
            line += f"   MFU {flops_per_token(config, args.length, fraction) * tokens / med[k] / peak:.1%}"
        print(line)
    print(f"ratio (ours / transformers): {med['theirs'] / med['ours']:.2f}x")


if __name__ == "__main__":
    main()
