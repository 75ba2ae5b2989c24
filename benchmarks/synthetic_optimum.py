"""How close the book's encoder gets to the best possible masked prediction, on chapter 10's
language, whose conditionals are known exactly (``mlm_lessons.synthetic``); and the choices the
chapter takes from here (its peak learning rate; 40% against 15% masking in training).

    python benchmarks/synthetic_optimum.py                    # ~9 min on 2 CPU cores

The language: chapter 10's topic-mixture hidden Markov model (4 topics, 2 shared and 4 topic states
each, 40 words), sentences of 24 words; 100,000 training sentences, so a run of 1,500 steps of 64
sentences reads each about once. The encoder: the ``cpu-small`` preset's model and recipe (rotary
positions, 80/10/10 corruption), one sentence per row, 1,500 steps, at each peak rate of ``--lrs``
and each training mask ratio of ``--ratios``; then its causal twin at the chosen rate.

Scored where the limits are known: the validation (and test) sentences with 15% of the words
replaced by ``[MASK]`` (no random or kept tokens, so the visible words are exactly the unmasked
ones), at those positions – the model's loss, the Bayes-optimal loss (``-log P(x_i | visible
words)``, forward-backward), the left-only optimum (``-log P(x_i | x_<i)``), the unigram baseline.
The rate is chosen on validation sentences at the recipe's 40%; test sentences are reported beside.
Writes ``benchmarks/results/synthetic_optimum.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from mlm_lessons.masking import MaskingConfig
from mlm_lessons.model import EncoderConfig
from mlm_lessons.objective import context_free_baselines, token_counts
from mlm_lessons.synthetic import model_losses, random_language
from mlm_lessons.training import eval_batches, preset, pretrain

# chapter 10's language and run (book/10_synthetic_language.ipynb)
LANGUAGE = dict(n_topics=4, shared_states=2, topic_states=4, vocab_size=40, stay=0.0, sharpness=0.05, transition_sharpness=0.2,
                seed=0)
LENGTH, SIZES, STEPS = 24, {"train": 100_000, "valid": 500, "test": 500}, 1500
EVAL_MASKING = MaskingConfig(mask_ratio=0.15, p_mask=1.0, p_random=0.0, p_keep=0.0)
OUT = Path("benchmarks/results/synthetic_optimum.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1.4e-3, 3e-3, 6e-3])
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.4, 0.15])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    lang = random_language(**LANGUAGE)
    corpus = lang.corpus(SIZES, LENGTH, seed=1)
    tok = lang.tokenizer()
    counts = token_counts(tok, corpus.texts("train"))

    def configs(lr, ratio):
        return preset("cpu-small", tok.vocab_size, max_steps=STEPS, batch_size=64, max_length=LENGTH + 8, pack=False, lr=lr,
                      seed=args.seed, masking=MaskingConfig(mask_ratio=ratio), eval_masking=EVAL_MASKING, eval_every=100,
                      eval_sequences=SIZES["valid"], log_every=100)

    _, base = configs(args.lrs[0], args.ratios[0])
    splits = {split: eval_batches(tok, corpus.texts(split), base) for split in ("valid", "test")}
    limits = {split: lang.limits(b, tok) for split, b in splits.items()}
    record = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__, "language": LANGUAGE, "length": LENGTH, "sizes": SIZES, "steps": STEPS, "limits": {}, "runs": []}
    for split, lim in limits.items():
        unigram = context_free_baselines(splits[split], counts, EVAL_MASKING, tok.special_ids)["mask_loss"]
        record["limits"][split] = {"positions": len(lim["optimum"]), "optimum": lim["optimum"].mean(),
                                   "left_only": lim["left_only"].mean(), "no_context": lim["no_context"].mean(), "unigram": unigram}
        print(f"{split}: {len(lim['optimum'])} [MASK] positions; optimum {lim['optimum'].mean():.3f} nats, left-only "
              f"{lim['left_only'].mean():.3f}, nothing seen {lim['no_context'].mean():.3f}, unigram {unigram:.3f}", flush=True)

    def score(model, causal=False):
        out = {}
        for split, b in splits.items():
            loss = model_losses(model, b, causal=causal).mean()
            out[split] = loss
            out[f"{split}_distance"] = loss - limits[split]["left_only" if causal else "optimum"].mean()
        return out

    for ratio in args.ratios:
        for lr in args.lrs:
            model_config, train_config = configs(lr, ratio)
            t0 = time.perf_counter()
            run = pretrain(model_config, tok, corpus.texts("train"), corpus.texts("valid"), train_config, cache=True, progress=False)
            row = {"model": "masked", "train_mask_ratio": ratio, "lr": lr, "seconds": time.perf_counter() - t0, **score(run.model)}
            record["runs"].append(row)
            print(f"masked, trained at {ratio:.0%}, lr {lr:g} ({row['seconds']:.0f} s): validation {row['valid']:.3f} "
                  f"(optimum + {row['valid_distance']:.3f}), test {row['test']:.3f} (optimum + {row['test_distance']:.3f})", flush=True)
    recipe = [r for r in record["runs"] if r["train_mask_ratio"] == args.ratios[0]]
    chosen = min(recipe, key=lambda r: r["valid"])["lr"]
    record["chosen_lr"] = chosen
    model_config, train_config = configs(chosen, args.ratios[0])
    t0 = time.perf_counter()
    causal = pretrain(EncoderConfig(**{**model_config.to_dict(), "causal": True}), tok, corpus.texts("train"), corpus.texts("valid"),
                      train_config.replace(objective="causal"), cache=True, progress=False)
    row = {"model": "causal", "lr": chosen, "seconds": time.perf_counter() - t0, **score(causal.model, causal=True)}
    record["runs"].append(row)
    print(f"chosen rate {chosen:g}; causal twin ({row['seconds']:.0f} s): validation {row['valid']:.3f} (left-only optimum + "
          f"{row['valid_distance']:.3f}), test {row['test']:.3f} (+ {row['test_distance']:.3f})", flush=True)
    record["seconds"] = time.perf_counter() - start
    OUT.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
