"""Figures of the book, as functions that draw on a Matplotlib axis and return it."""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

import numpy as np

# Matplotlib is imported where a figure is drawn, not here: the widgets and the explorer import this
# module for FATE_COLORS, and importing pyplot picks a backend.

__all__ = [
    "zipf_plot", "fragmentation_plot", "FATE_COLORS", "masked_tokens_plot", "fate_counts_plot",
    "loss_curve_plot", "overlap_heatmap", "validation_curves_plot", "label_curve_plot", "ablation_plot", "seed_lines_plot",
]

#: One colour per fate of a position (see mlm_lessons.masking.Fate), shared by figures and widgets.
FATE_COLORS = {"untouched": "#eeeeee", "[MASK]": "#e45756", "random": "#f2a541", "kept": "#59a14f"}


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


def masked_tokens_plot(rows, *, ax=None, width: int = 72, title: str | None = None):
    """Draw sequences of pieces as coloured boxes, one colour per fate.

    ``rows`` is a list of ``(label, [(shown_text, fate_name), ...])``; long rows wrap after
    ``width`` characters. Used for the static figures of chapter 2 (the HTML book has no kernel).
    """
    if not rows:
        raise ValueError("rows is empty")
    lines = []  # (label or "", [(text, fate, x)])
    for label, pieces in rows:
        x, current, first = 0, [], True
        for text, fate in pieces:
            if fate not in FATE_COLORS:
                raise ValueError(f"unknown fate {fate!r}; expected one of {list(FATE_COLORS)}")
            if x and x + len(text) > width:
                lines.append((label if first else "", current))
                x, current, first = 0, [], False
            current.append((text, fate, x))
            x += len(text) + 1
        lines.append((label if first else "", current))
    if ax is None:
        import matplotlib.pyplot as plt

        # one x unit = the width of one monospace character, so boxes sit one space apart
        char = 0.602 * 8.5 / 72  # inches: DejaVu Sans Mono advance at 8.5 pt
        left, right = 1.4, 0.2
        axes_width = (width + 2) * char
        height = 0.3 * len(lines) + 0.9
        fig = plt.figure(figsize=(left + axes_width + right, height))
        ax = fig.add_axes([left / fig.get_figwidth(), 0.5 / height, axes_width / fig.get_figwidth(), (height - 0.8) / height])
    for row, (label, pieces) in enumerate(lines):
        y = -row
        if label:
            ax.annotate(label, (0, y), xycoords=("axes fraction", "data"), xytext=(-6, 0),
                        textcoords="offset points", ha="right", va="center", fontsize=9, fontweight="bold")
        for text, fate, x in pieces:
            ax.text(x, y, text, ha="left", va="center", family="monospace", fontsize=8.5,
                    bbox={"boxstyle": "round,pad=0.18", "facecolor": FATE_COLORS[fate], "edgecolor": "none"})
    ax.set_xlim(-1, width + 1)
    ax.set_ylim(-len(lines) + 0.4, 0.6)
    ax.axis("off")
    import matplotlib.patches as mpatches

    ax.legend(handles=[mpatches.Patch(color=c, label=n) for n, c in FATE_COLORS.items()],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False, fontsize="small")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def fate_counts_plot(observed: Mapping[str, float], expected: Mapping[str, float], *, ax=None, title=None):
    """Bars of how many positions got each fate, against the expected number (black marks)."""
    names = [n for n in ("[MASK]", "random", "kept") if n in observed]
    if not names:
        raise ValueError("observed holds none of '[MASK]', 'random', 'kept'")
    ax = _axis(ax, figsize=(4.6, 3.2))
    bars = ax.bar(names, [observed[n] for n in names], color=[FATE_COLORS[n] for n in names], label="observed")
    ax.bar_label(bars, fontsize="small", padding=2)
    ax.scatter(names, [expected[n] for n in names], marker="_", s=900, color="black", zorder=3, label="expected")
    ax.set_ylabel("positions in the batch")
    ax.set_ylim(0, 1.18 * max(max(observed[n] for n in names), max(expected[n] for n in names)))
    ax.legend(frameon=False, fontsize="small")
    ax.set_title(title or "Fates of the selected positions", fontsize=10)
    return ax


def loss_curve_plot(p: float | None = None, *, vocab_size: int | None = None, ax=None):
    """The loss term ``-log p`` of the true token against the probability ``p`` the model gives it."""
    ax = _axis(ax, figsize=(5.6, 3.4))
    low = 1.0 / vocab_size if vocab_size else 1e-4
    ps = np.logspace(np.log10(low), 0, 400)
    ax.plot(ps, -np.log(ps), color="#4c78a8")
    ax.set_xscale("log")
    ax.set_xlabel("probability the model gives the true token, p")
    ax.set_ylabel("loss term  -log p  (nats)")
    if vocab_size:
        ax.axvline(1 / vocab_size, ls="--", color="grey", lw=0.8)
        ax.text(1 / vocab_size, 0.3, f" uniform guess\n p = 1/{vocab_size:,}", fontsize="small", color="grey")
    if p is not None:
        if not 0 < p <= 1:
            raise ValueError(f"p must be in (0, 1], got {p!r}")
        ax.scatter([p], [-np.log(p)], color="#e45756", zorder=3)
        ax.annotate(f"p = {p:.3g}\n-log p = {-np.log(p):.2f}", (p, -np.log(p)), textcoords="offset points",
                    xytext=(8, 8), fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax


def overlap_heatmap(matrix: Sequence[Sequence[float]], names: Sequence[str], *, ax=None, title: str | None = None):
    """A square matrix of shares (e.g. vocabulary overlap between corpora), each cell labelled."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(names):
        raise ValueError(f"matrix must be square with one row per name ({len(names)}), got shape {m.shape}")
    ax = _axis(ax, figsize=(4.6, 3.8))
    image = ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{m[i, j]:.0%}", ha="center", va="center", color="white" if m[i, j] > 0.6 else "black")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    if title:
        ax.set_title(title)
    return ax


def validation_curves_plot(runs: Mapping[str, Sequence[Mapping]], keys: Mapping[str, str], *, ax=None,
                           best_steps: Mapping[str, int | None] | None = None, title: str | None = None):
    """Validation losses against steps: one colour per run (``{name: history}``), one line style
    per metric (``{history key: label}``, e.g. ``{"valid_mask_loss": "domain", "general_mask_loss": "general"}``).
    ``best_steps`` marks the step each run kept (early stopping) with a dot."""
    if not runs or not keys:
        raise ValueError("pass at least one run and one metric key")
    ax = _axis(ax, figsize=(6.8, 4.0))
    styles = ["-", "--", ":", "-."]
    colors = ["#4c78a8", "#e45756", "#59a14f", "#f2a541", "#b07aa1"]
    for c, (name, history) in enumerate(runs.items()):
        evals = [h for h in history if any(k in h for k in keys)]
        for s, (key, label) in enumerate(keys.items()):
            points = [(h["step"], h[key]) for h in evals if key in h]
            if not points:
                continue
            xs, ys = zip(*points)
            ax.plot(xs, ys, styles[s % len(styles)], color=colors[c % len(colors)], marker=".", label=f"{name}: {label}")
            best = (best_steps or {}).get(name)
            if best is not None and best in xs:
                ax.scatter([best], [ys[xs.index(best)]], s=70, facecolors="none", edgecolors=colors[c % len(colors)], zorder=3)
    ax.set_xlabel("steps of continued pretraining")
    ax.set_ylabel("loss at [MASK] positions (nats)" if all("mask" in k for k in keys) else "masked-token loss (nats)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def label_curve_plot(rows: Sequence[Mapping], *, metric: str, ax=None, title: str | None = None, all_labels_at: float | None = None):
    """Mean ± std of ``metric`` against the number of training labels, one line per ``init`` – the
    sample standard deviation (n − 1), as the chapters' tables print it.

    ``rows`` hold ``init``, ``labels`` (labels per class; ``None`` = all) and ``metric``; rows with
    the same init and labels are averaged over seeds. ``None`` is drawn at ``all_labels_at``.
    """
    if not rows:
        raise ValueError("rows is empty")
    ax = _axis(ax, figsize=(6.4, 4.0))
    inits = list(dict.fromkeys(r["init"] for r in rows))
    for init in inits:
        by_n: dict = {}
        for r in rows:
            if r["init"] == init:
                n = r["labels"] if r["labels"] is not None else all_labels_at
                if n is None:
                    raise ValueError("rows with labels=None (all labels) need all_labels_at")
                by_n.setdefault(n, []).append(r[metric])
        ns = sorted(by_n)
        means = [np.mean(by_n[n]) for n in ns]
        stds = [np.std(by_n[n], ddof=1) if len(by_n[n]) > 1 else 0.0 for n in ns]
        ax.errorbar(ns, means, yerr=stds, marker="o", capsize=3, label=init)
    ax.set_xscale("log")
    ax.set_xlabel("training labels per class (log scale)")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def ablation_plot(summary: Sequence[Mapping], *, metric: str, ax=None, title: str | None = None,
                  reference: Mapping | None = None, ylabel: str | None = None):
    """One study's variants side by side: the mean of ``metric`` with an error bar of ± one standard
    deviation over seeds (``summary`` rows from :func:`mlm_lessons.ablations.summarize`, with
    ``variant``, ``seeds``, ``metric`` and ``metric_std``). ``reference`` (a summary row, e.g. the
    encoder without pretraining) is drawn as a dashed line with its own band."""
    rows = [r for r in summary if metric in r]
    if not rows:
        raise ValueError(f"no row of summary holds {metric!r}; rows hold {sorted(summary[0]) if summary else 'nothing'}")
    ax = _axis(ax, figsize=(6.4, 3.6))
    xs = range(len(rows))
    means = [r[metric] for r in rows]
    stds = [r.get(f"{metric}_std", 0.0) for r in rows]
    stds = [0.0 if sd != sd else sd for sd in stds]  # a single seed: no bar
    ax.errorbar(xs, means, yerr=stds, fmt="o", capsize=4, color="#4c78a8", label=f"mean ± std ({rows[0]['seeds']} seeds)")
    if reference is not None and metric in reference:
        m, sd = reference[metric], reference.get(f"{metric}_std", 0.0)
        ax.axhline(m, ls="--", color="#888888", label=reference.get("variant", "reference"))
        if sd == sd and sd > 0:
            ax.axhspan(m - sd, m + sd, color="#888888", alpha=0.15)
    ax.set_xticks(list(xs), [r["variant"] for r in rows])
    ax.set_ylabel(ylabel or metric)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def seed_lines_plot(per_variant: Mapping[str, Sequence[float]], *, ax=None, ylabel: str | None = None, title: str | None = None):
    """Paired results drawn as pairs: one line per seed across the variants (``per_variant`` maps each
    variant to its scores, seed by seed, in the same seed order), with each variant's mean as a black
    bar. Lines that slope the same way on every seed show a difference the seeds agree on, even when
    the variants' spreads overlap."""
    names = list(per_variant)
    if len(names) < 2:
        raise ValueError(f"seed_lines_plot compares at least two variants, got {names}")
    counts = {len(v) for v in per_variant.values()}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every variant needs one score per seed, the same seeds; got {{{', '.join(f'{n}: {len(per_variant[n])}' for n in names)}}}")
    ax = _axis(ax, figsize=(4.2, 3.6))
    xs = range(len(names))
    for seed in range(counts.pop()):
        ax.plot(xs, [per_variant[n][seed] for n in names], "o-", color="#4c78a8", alpha=0.5, lw=1, ms=3,
                label="one seed" if seed == 0 else None)
    for x, n in zip(xs, names):
        m = sum(per_variant[n]) / len(per_variant[n])
        ax.plot([x - 0.15, x + 0.15], [m, m], color="black", lw=2, label="mean" if x == 0 else None)
    ax.set_xticks(list(xs), names)
    ax.set_ylabel(ylabel or "")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax
