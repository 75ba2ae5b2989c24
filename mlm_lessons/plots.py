"""Figures of the book, as functions that draw on a Matplotlib axis and return it."""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

__all__ = ["zipf_plot", "fragmentation_plot"]


def _axis(ax, figsize=(6.4, 4.0)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def zipf_plot(frequencies: Mapping[str, Counter], *, ax=None, max_rank: int | None = None):
    """Frequency against rank on log-log axes, one line per corpus (``{name: Counter}``).

    A straight line of slope -1 is Zipf's law; it is drawn, dashed, through each corpus's rank-10
    word for reference.
    """
    if not frequencies:
        raise ValueError("frequencies is empty; pass {corpus name: word Counter}")
    ax = _axis(ax)
    for name, counts in frequencies.items():
        freqs = sorted(counts.values(), reverse=True)[:max_rank]
        if not freqs:
            raise ValueError(f"corpus {name!r} has no words")
        ranks = range(1, len(freqs) + 1)
        (line,) = ax.loglog(ranks, freqs, label=f"{name} ({len(freqs):,} distinct words)", lw=1.6)
        if len(freqs) >= 10:
            anchor = freqs[9] * 10
            ax.loglog([1, len(freqs)], [anchor, anchor / len(freqs)], ls="--", lw=0.8, color=line.get_color(), alpha=0.6)
    ax.set_xlabel("rank of the word (1 = most frequent)")
    ax.set_ylabel("occurrences in the train split")
    ax.set_title("Zipf's law: frequency ∝ 1 / rank (dashed: slope -1)")
    ax.legend(frameon=False, fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def fragmentation_plot(words: Sequence[str], tokenizers: Mapping[str, object], *, ax=None):
    """Grouped bars: how many pieces each tokenizer cuts each word into (``{label: MLMTokenizer}``)."""
    if not words:
        raise ValueError("words is empty; pass the words to compare")
    if not tokenizers:
        raise ValueError("tokenizers is empty; pass {label: MLMTokenizer}")
    import numpy as np

    ax = _axis(ax, figsize=(7.2, 3.8))
    x = np.arange(len(words))
    width = 0.8 / len(tokenizers)
    highest = 0
    for i, (label, tok) in enumerate(tokenizers.items()):
        counts = [len(tok.tokenize(w)) for w in words]
        highest = max(highest, *counts)
        bars = ax.bar(x + (i - (len(tokenizers) - 1) / 2) * width, counts, width, label=label)
        ax.bar_label(bars, fontsize="x-small", padding=1)
    ax.set_ylim(0, highest * 1.15)
    ax.set_xticks(x, words, rotation=30, ha="right")
    ax.set_ylabel("pieces per word")
    ax.set_title("How the tokenizers cut domain words")
    ax.legend(frameon=False, fontsize="small")
    ax.yaxis.get_major_locator().set_params(integer=True)
    return ax
