"""Shared fixtures: the three corpora (built once, then cached) and tokenizers trained on them."""

from __future__ import annotations

import pytest

import mlm_lessons as mlm


@pytest.fixture(autouse=True)
def seeds_as_written(monkeypatch):
    """Unit tests train with the seeds they write: no offset from the caller's environment, and
    the chapters' claims raise."""
    monkeypatch.delenv("MLM_LESSONS_SEED_OFFSET", raising=False)
    monkeypatch.delenv("MLM_LESSONS_CLAIMS", raising=False)


@pytest.fixture(scope="session")
def corpora() -> dict[str, mlm.Corpus]:
    return {name: mlm.load_corpus(name) for name in mlm.CORPUS_NAMES}


@pytest.fixture(scope="session")
def general_tok(corpora) -> mlm.MLMTokenizer:
    return mlm.train_tokenizer(corpora["python-docs"].texts("train"), vocab_size=8000)


@pytest.fixture(scope="session")
def domain_tok(corpora) -> mlm.MLMTokenizer:
    return mlm.train_tokenizer(corpora["pytorch-docs"].texts("train"), vocab_size=8000)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and do not fight other work for the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
