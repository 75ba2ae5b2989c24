"""The live fill-mask box of the online book: chapter 5's model answering in the reader's browser.

The book's Sphinx extension (``book/_ext/live_fill_mask.py``) calls :func:`book_model` – chapter 5's
tokenizer and ``cpu-small`` run, made by the same calls as the chapter, so the run cache serves both –
writes its bundle with :func:`mlm_lessons.web.write_web_bundle` and puts :func:`live_html` where the
``live-fill-mask`` directive stands. ``live_static/live-fill-mask.js`` does the rest in the browser
(onnxruntime-web, loaded on the first question).
"""

from __future__ import annotations

import csv
import html
import re
from importlib import resources
from pathlib import Path

__all__ = ["ASSETS", "ELEMENT_ID", "asset_dir", "book_model", "read_probes", "live_html"]

ASSETS = ("live-fill-mask.js", "live-fill-mask.css")
#: The id of the box on a page (one box a page).
ELEMENT_ID = "live-fill-mask"


def asset_dir() -> str:
    """The folder of the box's script and style sheet (a Sphinx ``html_static_path`` entry)."""
    return str(resources.files(__package__) / "live_static")


def book_model(*, progress: bool = False):
    """``(model, tokenizer, result)``: chapter 5's ``cpu-small`` model on ``python-docs`` and its tokenizer,
    from the run cache (trained there first if missing: a few minutes on two cores)."""
    from .. import load_corpus, train_tokenizer
    from ..training import preset, pretrain

    corpus = load_corpus("python-docs")
    tok = train_tokenizer(corpus.texts("train"), vocab_size=8000)
    model_config, train_config = preset("cpu-small", tok.vocab_size)
    result = pretrain(model_config, tok, corpus.texts("train"), corpus.texts("valid"), train_config, cache=True,
                      progress=progress)
    return result.model.eval(), tok, result


def read_probes(path: str | Path) -> list[dict]:
    """The rows of a probe file (``data/fill_mask_probes.tsv``: ``sentence`` with one ``[MASK]``, ``answer``)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    bad = [r for r in rows if "[MASK]" not in (r.get("sentence") or "")]
    if not rows or bad:
        raise ValueError(f"{path}: every row needs a sentence with [MASK] (columns sentence, answer); "
                         f"{'no rows' if not rows else f'not so: {bad[0]}'}")
    return rows


def live_html(sentence: str, *, description: str, download: str, element_id: str = ELEMENT_ID) -> str:
    """The box's HTML: a form (the sentence, the button, all at once or one at a time), a status line
    saying what the first answer loads (``download``, e.g. ``"21 MB"``), the answers, and the
    attention view. The page must load ``live-fill-mask.js`` and ``.css`` (:func:`asset_dir`)."""
    if not re.fullmatch(r"[A-Za-z][\w-]*", element_id):
        raise ValueError(f"element_id must be a letter then letters, digits, '_' or '-', got {element_id!r}")
    if "[MASK]" not in sentence:
        raise ValueError(f"the sentence must contain [MASK], got {sentence!r}")
    e, q = html.escape, element_id
    return f"""<div id="{q}" class="mlm-live" data-state="static">
<form>
<label class="mlml-label" for="{q}-text">A sentence with [MASK] where a piece is hidden</label>
<div class="mlml-row">
<input id="{q}-text" type="text" value="{e(sentence)}" autocomplete="off" autocapitalize="off" spellcheck="false">
<button type="submit">Fill in</button>
</div>
<fieldset><legend>Several masks</legend>
<label><input type="radio" name="{q}-mode" value="all" checked> all at once (one pass)</label>
<label><input type="radio" name="{q}-mode" value="one"> one at a time, the surest first</label>
</fieldset>
</form>
<p class="mlml-status" aria-live="polite">{e(description)} It runs in your browser: the first answer loads it ({e(download)}, once).</p>
<p class="mlml-error" role="alert"></p>
<div class="mlml-answers" aria-live="polite"></div>
<details class="mlml-attention" hidden><summary>Attention for this sentence</summary>
<label>Layer <select class="mlml-layer" aria-label="layer"></select></label>
<label>Head <select class="mlml-head" aria-label="head"></select></label>
<canvas role="img"></canvas>
<p class="mlml-note">Each row is a piece of the sentence as typed (masks included), each column a piece it
attends to; the darker the cell, the more weight.</p>
</details>
<noscript><p>The live model needs JavaScript; the chapter's printed answers need nothing.</p></noscript>
</div>"""
