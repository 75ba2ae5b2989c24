"""A tiny vocabulary and deterministic texts for fast training tests."""

import random

import mlm_lessons as mlm
from mlm_lessons.model import EncoderConfig, MaskedLM, language_model

WORDS = ["the", "tensor", "gradient", "of", "a", "returns", "new", "with", "same", "size", "shape",
         "input", "output", "module", "layer", "weight", "bias", "is", "and", "to"]


def tiny_tokenizer_and_texts(n_train: int = 200, n_valid: int = 30, seed: int = 0):
    rng = random.Random(seed)

    def sentence():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + " ."

    tok = mlm.tokenizer_from_vocab(WORDS + ["."])
    return tok, [sentence() for _ in range(n_train)], [sentence() for _ in range(n_valid)]


def confident_model(tok, *, causal: bool = False, seed: int = 0, max_len: int = 16, std: float = 0.5) -> MaskedLM:
    """A small untrained model with large weights (``std`` instead of BERT's 0.02): confident
    predictions that depend on the context, so that generation and scoring tests have something to see."""
    import torch

    torch.manual_seed(seed)
    m = language_model(EncoderConfig(vocab_size=tok.vocab_size, max_len=max_len, d_model=32, n_layers=2, n_heads=2, d_ff=64,
                                     dropout=0.1, causal=causal))
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.normal_(0, std)
    return m
