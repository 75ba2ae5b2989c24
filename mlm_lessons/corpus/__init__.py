"""Corpus preparation: harvest documentation, clean it, split it without leakage, cache it."""

from .build import (
    CORPUS_NAMES,
    Corpus,
    CorpusStats,
    Document,
    SplitStats,
    build_documents,
    cache_dir,
    load_corpus,
    split_of,
)
from .hub import HUB_CORPORA, HUB_CORPUS_NAMES, HubSource, load_hub_corpus
from .cleaning import clean_docstring, clean_plain_text, clean_reference_text, looks_like_prose
from .stats import WORD_PATTERN, word_frequencies, zipf_exponent

__all__ = [
    "CORPUS_NAMES", "Corpus", "CorpusStats", "Document", "SplitStats", "build_documents",
    "cache_dir", "load_corpus", "split_of", "HUB_CORPORA", "HUB_CORPUS_NAMES", "HubSource", "load_hub_corpus", "clean_docstring", "clean_plain_text",
    "clean_reference_text", "looks_like_prose", "WORD_PATTERN", "word_frequencies", "zipf_exponent",
]
