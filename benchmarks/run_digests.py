"""Digests of small runs of every kind of training, to check that a change to the package leaves
what it computes unchanged, bit for bit.

    python benchmarks/run_digests.py OUT.json            # on one commit
    python benchmarks/run_digests.py --compare A.json B.json

Runs a short ``pretrain`` (with checkpoints), a DAPT with early stopping, fine-tuning on both tasks
(and their frozen probes) and a contrastive fine-tune, one thread, on the CPU; writes each run's
weights digest, history (timings left out), kept step and scores. ``--compare`` says which differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile

import torch

from mlm_lessons.adaptation import dapt, dapt_config
from mlm_lessons.corpus import load_corpus
from mlm_lessons.finetuning import FinetuneConfig, build_model, finetune
from mlm_lessons.retrieval import ContrastiveConfig, contrastive_finetune, summary_task
from mlm_lessons.tasks import load_task
from mlm_lessons.tokenizer import train_tokenizer
from mlm_lessons.training import preset, pretrain

TIMINGS = ("tokens_per_s", "mfu")


def digest(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMINGS} for h in history]


def record(result) -> dict:
    # getattr: the result types before the engine's one TrainResult had only some of these
    return {"weights": digest(result.model), "history": untimed(result.history), "best_step": result.best_step,
            **{k: getattr(result, k) for k in ("stopped_at", "valid", "test") if getattr(result, k, None)}}


def runs() -> dict:
    torch.set_num_threads(1)
    general, domain = load_corpus("python-docs"), load_corpus("pytorch-docs")
    tok = train_tokenizer(general.texts("train")[:400], vocab_size=2000)
    model_config, config = preset("cpu-small", tok.vocab_size, max_steps=60, device="cpu", seed=3)
    config = config.replace(eval_every=20, log_every=10, eval_sequences=64, checkpoint_every=20)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        pre = pretrain(model_config, tok, general.texts("train")[:400], general.texts("valid")[:40], config, progress=False, out_dir=tmp)
    out["pretrain"] = record(pre)
    out["dapt"] = record(dapt(pre.model, tok, domain.texts("train")[:300], domain.texts("valid")[:30], general.texts("valid")[:30],
                              dapt_config(config, 40, eval_every=10), patience=1, min_delta=0.01, progress=False))
    for name in ("torch-subpackage", "code-spans"):
        task = load_task(name).subsample(8, seed=1)
        task.valid, task.test = task.valid[:40], task.test[:40]
        settings = FinetuneConfig(max_steps=30, eval_every=5, patience=2, device="cpu", lr=1e-3)
        out[name] = record(finetune(build_model(task, pre.model, pooling="mean", seed=2), tok, task, settings))
        probe = FinetuneConfig(max_steps=12, eval_every=4, device="cpu", freeze_encoder=True)
        out[f"{name} probe"] = record(finetune(build_model(task, pre.model, seed=2), tok, task, probe))
    pairs = summary_task(domain)
    pairs.train, pairs.valid, pairs.test = pairs.train[:64], pairs.valid[:30], pairs.test[:30]
    out["contrastive"] = record(contrastive_finetune(pre.model, tok, pairs, ContrastiveConfig(batch_size=8, max_steps=20, eval_every=5,
                                                                                                patience=2, device="cpu")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", help="where to write the digests (JSON)")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two digest files to compare")
    args = parser.parse_args()
    if args.compare:
        a, b = (json.load(open(p)) for p in args.compare)
        for name in a:  # a field only one side records (a result type that grew) is named, not compared
            x, y = a[name], b.get(name, {})
            shared = sorted(set(x) & set(y))
            same = all(x[k] == y[k] for k in shared)
            extra = sorted(set(x) ^ set(y))
            print(f"{name}: {'same' if same else 'DIFFERENT'} ({', '.join(shared)}){f'; recorded on one side only: {extra}' if extra else ''}")
        return
    if not args.out:
        parser.error("give OUT.json, or --compare A B")
    with open(args.out, "w") as f:
        json.dump(runs(), f, indent=1, default=str)


if __name__ == "__main__":
    main()
