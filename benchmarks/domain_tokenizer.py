"""Chapter 7's tokenizer study: pretrain on the domain with the general tokenizer and with one
trained on the domain, the same budget, and compare in units both share.

    python benchmarks/domain_tokenizer.py          # ~20 min on 2 CPU cores

Two WordPiece vocabularies of 8,000 entries – one trained on ``python-docs`` (chapter 1's), one on
``pytorch-docs`` – and, for each and each seed, the ``cpu-small`` model pretrained from scratch on
``pytorch-docs`` for ``--steps`` steps (the same steps, rows and masking: the same compute). Scored
by the masked-token loss per piece (not comparable across vocabularies), by bits per character
and per word at the same hidden words of the domain's validation text (``mlm_lessons.word_bits``:
15% of the words, every piece hidden, the word scored piece by piece), and downstream under
chapter 8's protocol (rate chosen on validation, the seeds paired with the pretraining seeds) on
the topic task with 10 labels per class and on code spans with 50. Writes
``benchmarks/results/domain_tokenizer.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch

from mlm_lessons.comparison import finetune_with_protocol, mean_std, paired
from mlm_lessons.corpus import load_corpus
from mlm_lessons.finetuning import FinetuneConfig
from mlm_lessons.tasks import load_task
from mlm_lessons.tokenizer import train_tokenizer
from mlm_lessons.training import pretrain, preset
from mlm_lessons.word_bits import characters_per_piece, choose_words, masked_word_bits

LRS = (1e-3, 2e-3, 4e-3)
SETTINGS = [("torch-subpackage", 10, FinetuneConfig(max_steps=40, eval_every=10, patience=3)),
            ("code-spans", 50, FinetuneConfig(max_steps=80, eval_every=20, patience=3))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out", default="benchmarks/results/domain_tokenizer.json")
    args = parser.parse_args()
    start = time.perf_counter()
    general_c, domain_c = load_corpus("python-docs"), load_corpus("pytorch-docs")
    toks = {"general": train_tokenizer(general_c.texts("train"), vocab_size=8000),
            "domain": train_tokenizer(domain_c.texts("train"), vocab_size=8000)}
    valid = domain_c.texts("valid")
    chosen = choose_words(valid, list(toks.values()), ratio=0.15, seed=0)
    seeds = list(range(args.seeds))
    record = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__, "steps": args.steps, "seeds": seeds, "hidden_words": sum(map(len, chosen)),
              "tokenizers": {name: {"fragmentation": tok.fragmentation(valid).as_row(),
                                    "characters_per_piece": characters_per_piece(tok, valid)} for name, tok in toks.items()},
              "pretraining": [], "results": []}
    models = {}
    for seed in seeds:
        for name, tok in toks.items():
            model_config, train_config = preset("cpu-small", tok.vocab_size, max_steps=args.steps, seed=seed, device="auto")
            t0 = time.perf_counter()
            run = pretrain(model_config, tok, domain_c.texts("train"), valid, train_config, cache=True, progress=False)
            bits = masked_word_bits(run.model.cpu(), tok, valid, chosen)
            last = run.evaluations()[-1]
            record["pretraining"].append({"tokenizer": name, "seed": seed, "seconds": time.perf_counter() - t0, "cached": run.cached,
                                          "valid_mask_loss": last["valid_mask_loss"], "valid_mask_accuracy": last["valid_mask_accuracy"],
                                          **dataclasses.asdict(bits), "bits_per_character": bits.bits_per_character,
                                          "bits_per_word": bits.bits_per_word})
            models[name, seed] = run.model
            print(f"{name:>8} tokenizer, seed {seed}: [MASK] loss {last['valid_mask_loss']:.3f} nats/piece, "
                  f"{bits.bits_per_character:.3f} bits/char at the hidden words", flush=True)
            Path(args.out).write_text(json.dumps(record, indent=1))
    tasks = {name: load_task(name) for name in ("torch-subpackage", "code-spans")}
    for task_name, per_class, config in SETTINGS:
        for name, tok in toks.items():
            chosen = finetune_with_protocol(tasks[task_name], lambda seed, name=name: models[name, seed], tok, config,
                                            per_class=per_class, lrs=LRS, seeds=seeds)
            record["results"].append({"task": task_name, "per_class": per_class, "tokenizer": name, **chosen})
            Path(args.out).write_text(json.dumps(record, indent=1))
    record["seconds"] = time.perf_counter() - start
    Path(args.out).write_text(json.dumps(record, indent=1))
    report(record)


def per_seed(record: dict, key: str, name: str) -> list[float]:
    return [r[key] for r in sorted(record["pretraining"], key=lambda r: r["seed"]) if r["tokenizer"] == name]


def test_scores(record: dict, task: str, name: str) -> list[float]:
    entry = next(r for r in record["results"] if (r["task"], r["tokenizer"]) == (task, name))
    return [row["test"] for row in entry["grid"][str(entry["lr"])]]


def report(record: dict) -> None:
    print(f"\n{record['steps']} steps from scratch on pytorch-docs, {len(record['seeds'])} seeds; "
          f"{record['hidden_words']} hidden words of the validation text")
    for name, t in record["tokenizers"].items():
        print(f"  {name:>8} tokenizer: {t['fragmentation']['pieces per word']:.3f} pieces per word, "
              f"{t['characters_per_piece']:.2f} characters per piece")
    for key, label in (("valid_mask_loss", "[MASK] loss, nats per piece"), ("bits_per_character", "bits per character"),
                       ("bits_per_word", "bits per word")):
        g, d = per_seed(record, key, "general"), per_seed(record, key, "domain")
        print(f"{label:>28}: general {mean_std(g)}  domain {mean_std(d)}  domain − general {paired(d, g)}")
    for task, per_class, _ in SETTINGS:
        g, d = test_scores(record, task, "general"), test_scores(record, task, "domain")
        print(f"{task}, {per_class} labels per class, test: general {mean_std(g)}  domain {mean_std(d)}  "
              f"domain − general {paired(d, g)}")
    print(f"\n{record.get('seconds', 0):.0f} s in all")


if __name__ == "__main__":
    main()
