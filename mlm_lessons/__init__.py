"""mlm_lessons: the companion package of the book *Masked Language Modeling, Step by Step*.

The modules follow the book, each importing only those before it:
``corpus`` (ch. 1) -> ``tokenizer`` (ch. 1) -> ... ; ``plots``, ``exercises`` and the command line
(``python -m mlm_lessons``) sit on top.
"""

from .corpus import (
    CORPUS_NAMES,
    Corpus,
    CorpusStats,
    Document,
    clean_docstring,
    load_corpus,
    split_of,
    word_frequencies,
    zipf_exponent,
)
from .tokenizer import SPECIAL_TOKENS, Fragmentation, MLMTokenizer, tokenizer_from_vocab, train_tokenizer
from .exercises import check

__version__ = "0.1.0"

__all__ = [
    "CORPUS_NAMES", "Corpus", "CorpusStats", "Document", "clean_docstring", "load_corpus",
    "split_of", "word_frequencies", "zipf_exponent", "SPECIAL_TOKENS", "Fragmentation",
    "MLMTokenizer", "train_tokenizer", "tokenizer_from_vocab", "check", "__version__",
]
