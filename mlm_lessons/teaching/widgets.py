"""Interactive controls for the notebooks (ipywidgets): vary the mask ratio and the 80/10/10 split.

The logic lives in plain functions – :func:`rebalance` keeps the three shares at 100%,
:func:`describe_masking` turns a masked sequence into (text, fate) pairs, :func:`fates_html` draws
them – so it is tested without a browser; the widget functions only wire controls to them.
"""

from __future__ import annotations

import html
from typing import Sequence

import torch

from ..masking import Fate, MaskingConfig, expected_counts, mask_tokens_explained
from .plots import FATE_COLORS, fate_counts_plot, loss_curve_plot

__all__ = ["rebalance", "describe_masking", "fates_html", "masking_explorer", "loss_term_explorer"]

SHARES = ("mask", "random", "keep")

# ipywidgets, IPython and Matplotlib's pyplot are imported by the functions that draw: the plain
# functions (rebalance, describe_masking, fates_html) work, and are tested, without them.


def _show(fig) -> None:
    """Display a figure inside an Output widget once (and not again at the end of the cell)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


def rebalance(shares: dict[str, int], changed: str, value: int) -> dict[str, int]:
    """Set one of the three percentages and adjust the other two so that all three sum to 100.

    The other two keep their proportion to each other (half and half when both are 0); integer
    rounding gives any remainder to the larger of the two.
    """
    if changed not in SHARES:
        raise ValueError(f"changed must be one of {SHARES}, got {changed!r}")
    if not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"a percentage must be an int in [0, 100], got {value!r}")
    if set(shares) != set(SHARES) or sum(shares.values()) != 100:
        raise ValueError(f"shares must give {SHARES} summing to 100, got {shares}")
    a, b = (k for k in SHARES if k != changed)
    rest = 100 - value
    total = shares[a] + shares[b]
    new_a = rest // 2 if total == 0 else round(rest * shares[a] / total)
    new_b = rest - new_a
    return {changed: value, a: new_a, b: new_b}


def describe_masking(tokenizer, original: Sequence[int], masked) -> list[tuple[str, str]]:
    """``(shown text, fate name)`` per non-padding position of one masked sequence.

    ``masked`` is a :class:`~mlm_lessons.masking.MaskedBatch` of one row. A random replacement is
    shown as ``new←old``; padding is left out.
    """
    pieces = []
    for pos, orig in enumerate(original):
        if orig == tokenizer.pad_id:
            continue
        fate = int(masked.fate[0, pos])
        shown = tokenizer.id_to_token(int(masked.inputs[0, pos]))
        if fate == Fate.RANDOM:
            shown = f"{shown}←{tokenizer.id_to_token(orig)}"
        elif fate == Fate.MASKED:
            shown = f"[MASK]·{tokenizer.id_to_token(orig)}"
        pieces.append((shown, Fate.NAMES[fate]))
    return pieces


def fates_html(pieces: list[tuple[str, str]]) -> str:
    """The pieces as coloured, screen-reader labelled HTML spans with a legend."""
    spans = []
    for text, fate in pieces:
        if fate not in FATE_COLORS:
            raise ValueError(f"unknown fate {fate!r}")
        spans.append(
            f'<span title="{html.escape(fate)}" aria-label="{html.escape(text)}: {html.escape(fate)}" '
            f'style="background:{FATE_COLORS[fate]};padding:1px 4px;margin:2px;border-radius:4px;'
            f'display:inline-block;font-family:monospace">{html.escape(text)}</span>'
        )
    legend = " ".join(
        f'<span style="background:{c};padding:1px 6px;border-radius:4px">{html.escape(n)}</span>'
        for n, c in FATE_COLORS.items()
    )
    return f'<div style="line-height:2">{"".join(spans)}</div><div style="font-size:small">{legend}</div>'


def masking_explorer(tokenizer, texts: Sequence[str], *, batch_size: int = 64, max_length: int = 64, seed: int = 0):
    """A mask-ratio slider, the 80/10/10 split as three linked sliders (always 100%), the
    selection mode, whole-word masking, a seed and a resample button. Shows the first text with
    every piece coloured by its fate, and the fates over a batch of ``batch_size`` texts against
    their expected counts."""
    import ipywidgets as W

    if not texts:
        raise ValueError("texts is empty; pass sentences to mask")
    batch = tokenizer.encode_batch(list(texts[:batch_size]), max_length=max_length)
    ratio = W.FloatSlider(value=0.15, min=0.05, max=1.0, step=0.05, description="mask ratio", readout_format=".0%")
    sliders = {
        "mask": W.IntSlider(value=80, min=0, max=100, description="[MASK] %"),
        "random": W.IntSlider(value=10, min=0, max=100, description="random %"),
        "keep": W.IntSlider(value=10, min=0, max=100, description="keep %"),
    }
    selection = W.Dropdown(options=["exact", "bernoulli"], value="exact", description="selection")
    whole_word = W.Checkbox(value=False, description="whole words")
    seed_box = W.IntText(value=seed, description="seed")
    resample = W.Button(description="resample", tooltip="draw a new mask (seed + 1)")
    view = W.HTML()
    chart = W.Output()
    busy = {"flag": False}

    def on_share(change, name):
        if busy["flag"]:
            return
        busy["flag"] = True
        try:
            current = {k: s.value for k, s in sliders.items()}
            current[name] = change["old"]
            for k, v in rebalance(current, name, change["new"]).items():
                sliders[k].value = v
        finally:
            busy["flag"] = False
        update()

    def update(*_):
        config = MaskingConfig(
            mask_ratio=ratio.value, p_mask=sliders["mask"].value / 100, p_random=sliders["random"].value / 100,
            p_keep=sliders["keep"].value / 100, selection=selection.value, whole_word=whole_word.value,
        )
        gen = torch.Generator().manual_seed(seed_box.value)
        out = mask_tokens_explained(
            batch.input_ids, config, mask_token_id=tokenizer.mask_id, vocab_size=tokenizer.vocab_size,
            special_ids=tokenizer.special_ids, generator=gen, word_ids=batch.word_ids,
        )
        first = type(out)(out.inputs[:1], out.labels[:1], out.fate[:1])
        view.value = fates_html(describe_masking(tokenizer, batch.input_ids[0].tolist(), first))
        expected = expected_counts(batch.input_ids, config, special_ids=tokenizer.special_ids, word_ids=batch.word_ids)
        with chart:
            chart.clear_output(wait=True)
            _show(fate_counts_plot(out.counts(), expected, title=f"{len(batch.input_ids)} sequences").figure)

    for name, s in sliders.items():
        s.observe(lambda change, name=name: on_share(change, name), names="value")
    for w in (ratio, selection, whole_word, seed_box):
        w.observe(update, names="value")
    resample.on_click(lambda _: setattr(seed_box, "value", seed_box.value + 1))
    update()
    controls = W.VBox([ratio, *sliders.values(), W.HBox([selection, whole_word]), W.HBox([seed_box, resample])])
    return W.VBox([W.HBox([controls, chart]), view])


def loss_term_explorer(vocab_size: int):
    """Drag the probability the model gives the true token; watch its loss term ``-log p``."""
    import ipywidgets as W

    p = W.FloatLogSlider(value=0.1, base=10, min=-4, max=0, step=0.05, description="p(true token)", readout_format=".3g",
                         style={"description_width": "initial"})
    chart = W.Output()

    def update(*_):
        with chart:
            chart.clear_output(wait=True)
            _show(loss_curve_plot(p.value, vocab_size=vocab_size).figure)

    p.observe(update, names="value")
    update()
    return W.VBox([p, chart])
