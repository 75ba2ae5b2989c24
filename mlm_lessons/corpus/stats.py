"""Word statistics of a corpus: frequencies, Zipf's law, vocabulary overlap."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

from .._checks import require_int
from .stopwords import STOP_WORDS

__all__ = ["word_frequencies", "zipf_exponent", "top_words", "vocabulary_overlap", "WORD_PATTERN"]

#: A word: letters, digits and inner apostrophes or underscores (``don't``, ``max_pool2d``).
WORD_PATTERN = re.compile(r"[A-Za-z0-9]+(?:['_][A-Za-z0-9]+)*")


def word_frequencies(texts: Iterable[str], *, lowercase: bool = True) -> Counter:
    """How often each word occurs in ``texts`` (words as :data:`WORD_PATTERN` defines them)."""
    if isinstance(texts, str):
        raise ValueError("texts must be an iterable of strings, got a single str; wrap it: [text]")
    counts: Counter = Counter()
    for t in texts:
        counts.update(WORD_PATTERN.findall(t.lower() if lowercase else t))
    return counts


def zipf_exponent(counts: Counter, *, min_rank: int = 10, max_rank: int = 1000) -> float:
    """The slope ``s`` of ``frequency ∝ rank^-s``, fitted by least squares on log-log axes.

    The very top ranks (a handful of function words) and the tail, where a finite corpus runs out
    of words and the curve bends down, stray from the line; the fit uses ranks ``min_rank`` to
    ``max_rank`` only.
    """
    if not 1 <= min_rank < max_rank:
        raise ValueError(f"need 1 <= min_rank < max_rank, got min_rank={min_rank}, max_rank={max_rank}")
    freqs = sorted(counts.values(), reverse=True)[min_rank - 1 : max_rank]
    if len(freqs) < 3:
        raise ValueError(f"only {len(counts)} distinct words: too few to fit ranks {min_rank}..{max_rank}")
    xs = [math.log(r) for r in range(min_rank, min_rank + len(freqs))]
    ys = [math.log(f) for f in freqs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return -slope


def top_words(counts: Counter, k: int = 10_000, *, stop_words: Iterable[str] = STOP_WORDS) -> list[str]:
    """The ``k`` most frequent words of ``counts`` that are not stop words and contain a letter
    (numbers say little about a domain); ties broken alphabetically, so the list is reproducible."""
    require_int(k, "k")
    stop = set(stop_words)
    words = [w for w in counts if w not in stop and any(ch.isalpha() for ch in w)]
    return sorted(words, key=lambda w: (-counts[w], w))[:k]


def vocabulary_overlap(counts_a: Counter, counts_b: Counter, k: int = 10_000, *,
                       stop_words: Iterable[str] = STOP_WORDS) -> float:
    """The share of the ``k`` most frequent content words two corpora have in common (Gururangan et
    al. 2020, "Don't Stop Pretraining", use k = 10,000 without stop words): |top_a ∩ top_b| / k.

    Both corpora need at least ``k`` content words; with fewer, the share would mean something
    else, so that is an error (lower ``k``).
    """
    top_a, top_b = top_words(counts_a, k, stop_words=stop_words), top_words(counts_b, k, stop_words=stop_words)
    short = min(len(top_a), len(top_b))
    if short < k:
        raise ValueError(f"a corpus has only {short:,} distinct content words, fewer than k={k:,}; pass k <= {short}")
    return len(set(top_a) & set(top_b)) / k
