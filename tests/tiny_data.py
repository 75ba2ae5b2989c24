"""A tiny vocabulary and deterministic texts for fast training tests."""

import random

import mlm_lessons as mlm

WORDS = ["the", "tensor", "gradient", "of", "a", "returns", "new", "with", "same", "size", "shape",
         "input", "output", "module", "layer", "weight", "bias", "is", "and", "to"]


def tiny_tokenizer_and_texts(n_train: int = 200, n_valid: int = 30, seed: int = 0):
    rng = random.Random(seed)

    def sentence():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + " ."

    tok = mlm.tokenizer_from_vocab(WORDS + ["."])
    return tok, [sentence() for _ in range(n_train)], [sentence() for _ in range(n_valid)]
