"""Widgets: the linked 80/10/10 controls, the coloured view, and the explorers driven from Python."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mlm_lessons.teaching import widgets
from mlm_lessons.masking import MaskingConfig, mask_tokens_explained


@st.composite
def shares(draw):
    a = draw(st.integers(0, 100))
    b = draw(st.integers(0, 100 - a))
    return {"mask": a, "random": b, "keep": 100 - a - b}


@given(shares(), st.sampled_from(widgets.SHARES), st.integers(0, 100))
def test_rebalance_always_sums_to_100(current, changed, value):
    new = widgets.rebalance(current, changed, value)
    assert sum(new.values()) == 100 and new[changed] == value
    assert all(0 <= v <= 100 for v in new.values())
    a, b = (k for k in widgets.SHARES if k != changed)
    if current[a] + current[b] > 0 and current[a] >= current[b]:
        assert new[a] >= new[b] - 1, "the other two keep their order"


def test_rebalance_examples():
    assert widgets.rebalance({"mask": 80, "random": 10, "keep": 10}, "mask", 60) == {"mask": 60, "random": 20, "keep": 20}
    assert widgets.rebalance({"mask": 80, "random": 20, "keep": 0}, "mask", 50) == {"mask": 50, "random": 50, "keep": 0}
    assert widgets.rebalance({"mask": 100, "random": 0, "keep": 0}, "mask", 40) == {"mask": 40, "random": 30, "keep": 30}
    with pytest.raises(ValueError, match=r"int in \[0, 100\], got 120"):
        widgets.rebalance({"mask": 80, "random": 10, "keep": 10}, "keep", 120)
    with pytest.raises(ValueError, match="summing to 100"):
        widgets.rebalance({"mask": 80, "random": 10, "keep": 5}, "keep", 10)
    with pytest.raises(ValueError, match="changed must be one of"):
        widgets.rebalance({"mask": 80, "random": 10, "keep": 10}, "masked", 10)


def test_view_shows_every_piece_with_its_fate(general_tok):
    batch = general_tok.encode_batch(["autograd computes <gradients> & more"], max_length=32, padding="max_length")
    out = mask_tokens_explained(batch.input_ids, MaskingConfig(mask_ratio=0.5), mask_token_id=4,
                                vocab_size=general_tok.vocab_size, special_ids=general_tok.special_ids,
                                generator=torch.Generator().manual_seed(3))
    pieces = widgets.describe_masking(general_tok, batch.input_ids[0].tolist(), out)
    assert len(pieces) == int(batch.attention_mask.sum())  # padding left out
    assert pieces[0] == ("[CLS]", "untouched") and pieces[-1] == ("[SEP]", "untouched")
    assert sum(f != "untouched" for _, f in pieces) == int((out.labels != -100).sum())
    page = widgets.fates_html(pieces)
    assert page.count('aria-label="') == len(pieces)
    assert "&lt;" in page and "<gradients>" not in page  # text is escaped


def test_masking_explorer_wires_controls(general_tok, corpora):
    box = widgets.masking_explorer(general_tok, corpora["python-docs"].texts("valid")[:32], batch_size=32)
    controls, chart = box.children[0].children
    view = box.children[1]
    ratio, mask, random, keep = controls.children[:4]
    seed, resample = controls.children[5].children
    first = view.value
    mask.value = 50
    assert (mask.value, random.value, keep.value) == (50, 25, 25)
    random.value = 40
    assert mask.value + random.value + keep.value == 100 and random.value == 40
    ratio.value = 0.6
    assert view.value != first and view.value.count("untouched") < first.count("untouched")
    shown = view.value
    resample.click()
    assert seed.value == 1 and view.value != shown
    seed.value = 0
    assert view.value == shown, "the same seed gives the same view"


def test_loss_term_explorer_builds():
    box = widgets.loss_term_explorer(8000)
    slider, chart = box.children
    slider.value = 0.5
    assert slider.value == 0.5
