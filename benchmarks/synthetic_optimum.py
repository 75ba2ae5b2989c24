"""How close the book's encoder gets to the best possible masked prediction, on a language whose
conditionals are known exactly (``mlm_lessons.synthetic``).

    python benchmarks/synthetic_optimum.py                    # ~10 min on 2 CPU cores
    python benchmarks/synthetic_optimum.py --steps 6000 --seeds 0 1

The language: a topic-mixture hidden Markov model (4 topics, 4 shared and 8 topic states each,
100 words, sparse transitions and emissions), sentences of 24 words; 20,000 training sentences.
The encoder: the ``cpu-small`` preset's model and recipe (rotary positions, 40% masking), one
sentence per row (batch 64, no packing), ``--steps`` steps; its causal twin with the same budget.

Scored on 500 held-out sentences with 15% of the words (4 of 24) replaced by ``[MASK]`` (no random
or kept tokens, so the visible words are exactly the unmasked ones): the model's loss at the masked
positions, the Bayes-optimal loss there (``-log P(x_i | visible words)``, forward-backward), the
left-only optimum (``-log P(x_i | x_<i)``, what any left-to-right model is bounded by), the causal
model's loss at the same positions, and the unigram baseline. Writes
``benchmarks/results/synthetic_optimum.json`` (runs of earlier calls with other steps or seeds kept).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlm_lessons.model import EncoderConfig
from mlm_lessons.synthetic import random_language
from mlm_lessons.training import preset, pretrain

LANGUAGE = dict(n_topics=4, shared_states=4, topic_states=8, vocab_size=100, stay=0.0, sharpness=0.05,
                transition_sharpness=0.05, seed=0)
LENGTH, SIZES, EVAL_SENTENCES, MASKED = 24, {"train": 20000, "valid": 500, "test": 500}, 500, 4
OUT = Path("benchmarks/results/synthetic_optimum.json")


@torch.no_grad()
def masked_scores(model, tok, sentences: np.ndarray, masks: list[np.ndarray], *, causal: bool) -> np.ndarray:
    """-log P(true word) at each masked position: the masked model sees [MASK] there; the causal
    model reads the sentence as it is and predicts each position from its left."""
    offset = len(tok.special_ids)  # word j is piece j + 5 (tokenizer_from_vocab puts the specials first)
    losses = []
    model.eval()
    for x, masked in zip(sentences, masks):
        ids = torch.tensor([tok.cls_id, *(x + offset).tolist(), tok.sep_id])[None]
        if not causal:
            ids[0, torch.as_tensor(masked) + 1] = tok.mask_id
        logits = model(ids, torch.ones_like(ids)).logits[0].float()
        positions = torch.as_tensor(masked) + (1 if not causal else 0)  # causal: the state before the word predicts it
        log_p = F.log_softmax(logits[positions], dim=-1)
        losses += (-log_p[torch.arange(len(masked)), torch.as_tensor(x[masked] + offset)]).tolist()
    return np.array(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    args = parser.parse_args()
    start = time.perf_counter()
    lang = random_language(**LANGUAGE)
    corpus = lang.corpus(SIZES, LENGTH, seed=1)
    tok = lang.tokenizer()
    test_ids, _ = lang.sample(EVAL_SENTENCES, LENGTH, seed=99)
    rng = np.random.default_rng(0)
    masks = [np.sort(rng.choice(LENGTH, MASKED, replace=False)) for _ in test_ids]
    optimum = np.concatenate([-np.log(lang.masked_conditionals(x, m)[np.arange(MASKED), x[m]]) for x, m in zip(test_ids, masks)])
    left = np.concatenate([-np.log(lang.left_conditionals(x)[m, x[m]]) for x, m in zip(test_ids, masks)])
    index = {w: i for i, w in enumerate(lang.words)}
    counts = np.bincount([index[w] for t in corpus.texts("train") for w in t.split()], minlength=lang.vocab_size) + 1  # add-one
    unigram = -np.log(counts / counts.sum())[np.concatenate([x[m] for x, m in zip(test_ids, masks)])]
    record = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__, "language": LANGUAGE, "length": LENGTH, "sizes": SIZES, "masked_per_sentence": MASKED,
              "eval_sentences": EVAL_SENTENCES, "optimum": optimum.mean(), "left_only_optimum": left.mean(),
              "unigram": unigram.mean(), "runs": []}
    print(f"{EVAL_SENTENCES} test sentences, {MASKED} of {LENGTH} words masked: optimum {optimum.mean():.3f} nats, "
          f"left-only optimum {left.mean():.3f}, unigram {unigram.mean():.3f}", flush=True)
    for seed in args.seeds:
        model_config, train_config = preset("cpu-small", tok.vocab_size, max_steps=args.steps, batch_size=64, max_length=32,
                                            pack=False, seed=seed, eval_every=max(1, args.steps // 4), log_every=100)
        t0 = time.perf_counter()
        masked = pretrain(model_config, tok, corpus.texts("train"), corpus.texts("valid"), train_config, cache=True, progress=False)
        causal = pretrain(EncoderConfig(**{**model_config.to_dict(), "causal": True}), tok, corpus.texts("train"),
                          corpus.texts("valid"), train_config.replace(objective="causal"), cache=True, progress=False)
        seconds = time.perf_counter() - t0
        mlm_loss = masked_scores(masked.model, tok, test_ids, masks, causal=False)
        causal_loss = masked_scores(causal.model, tok, test_ids, masks, causal=True)
        row = {"seed": seed, "steps": args.steps, "seconds": seconds, "masked_model": mlm_loss.mean(), "causal_model": causal_loss.mean(),
               "masked_minus_optimum": mlm_loss.mean() - optimum.mean(), "causal_minus_left_optimum": causal_loss.mean() - left.mean()}
        record["runs"].append(row)
        print(f"seed {seed}, {args.steps} steps ({seconds:.0f} s for both): masked model {mlm_loss.mean():.3f} "
              f"(optimum + {row['masked_minus_optimum']:.3f}), causal model {causal_loss.mean():.3f} "
              f"(left-only optimum + {row['causal_minus_left_optimum']:.3f})", flush=True)
    record["seconds"] = time.perf_counter() - start
    if OUT.exists():  # runs of earlier calls on the same language and evaluation are kept (other steps or seeds)
        earlier = json.loads(OUT.read_text())
        same = all(earlier.get(k) == record[k] for k in ("language", "length", "sizes", "masked_per_sentence", "eval_sentences"))
        new = {(r["seed"], r["steps"]) for r in record["runs"]}
        if same:
            record["runs"] = [r for r in earlier["runs"] if (r["seed"], r["steps"]) not in new] + record["runs"]
    OUT.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
