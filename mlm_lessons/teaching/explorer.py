"""The masking explorer of the online book: the notebook widget's job done in the reader's browser.

A static web page has no Python behind it, so the ipywidgets of chapter 2 cannot react there. The
explorer repeats them in plain JavaScript (``explorer_static/mlm-explorer.js``): the masking rules
are the package's (:func:`~mlm_lessons.masking.num_to_select`, ``exact`` and ``bernoulli``
selection, whole words, specials never selected, random tokens from the non-special vocabulary,
:func:`~mlm_lessons.teaching.widgets.rebalance` for the linked shares, the expected counts of
:func:`~mlm_lessons.masking.expected_counts`); only the random numbers differ (a seeded generator
of its own, so that a seed always gives the same view).

This module prepares what the page embeds – real sentences cut into pieces by our tokenizer, the
vocabulary and the special ids – and writes the HTML. The book's Sphinx extension
(``book/_ext/masking_explorer.py``) calls it at build time; ``standalone=True`` inlines the script
and style so that the same HTML works on its own (a notebook output, a test page).
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Sequence

from ..corpus import load_corpus
from ..tokenizer import train_tokenizer
from .plots import FATE_COLORS

__all__ = ["first_sentence", "pick_sentence", "explorer_data", "explorer_html", "book_explorer_data", "asset_dir"]

ASSETS = ("mlm-explorer.js", "mlm-explorer.css")


def asset_dir() -> str:
    """The folder holding the explorer's script and style sheet (served from a page's static files)."""
    return str(resources.files(__package__) / "explorer_static")


def first_sentence(text: str) -> str:
    """The first sentence of a text: up to the first ``.``, ``!`` or ``?`` followed by white space."""
    return re.split(r"(?<=[.!?])\s+", text.strip())[0]


def pick_sentence(texts: Sequence[str], *, min_words: int = 18, max_words: int = 26) -> str:
    """The first sentence, among the texts' first sentences, with ``min_words`` to ``max_words`` words.

    Chapter 2 picks its example sentence this way from the general corpus' validation texts.
    """
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got min_words={min_words!r}, max_words={max_words!r}")
    for text in texts:
        sentence = first_sentence(text)
        if min_words <= len(sentence.split()) <= max_words:
            return sentence
    raise ValueError(f"no text starts with a sentence of {min_words} to {max_words} words; widen the range")


def explorer_data(tokenizer, texts: Sequence[str], *, max_length: int = 64, seed: int = 0) -> dict:
    """What the explorer needs, as JSON-ready values.

    ``texts[0]`` is the sentence shown piece by piece; all texts together (padded to the longest,
    as :meth:`~mlm_lessons.tokenizer.MLMTokenizer.encode_batch` does) are the batch whose counts
    are compared with their expectation. The vocabulary is embedded so that a random replacement
    can be shown as text.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty; pass at least the sentence to show")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    batch = tokenizer.encode_batch(texts, max_length=max_length)
    return {
        "text": texts[0],
        "input_ids": batch.input_ids.tolist(),
        "word_ids": [[-1 if w is None else int(w) for w in row] for row in batch.word_ids],
        "vocab": [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)],
        "special_ids": sorted(int(i) for i in tokenizer.special_ids),
        "mask_id": int(tokenizer.mask_id),
        "pad_id": int(tokenizer.pad_id),
        "colors": dict(FATE_COLORS),
        "seed": seed,
    }


def book_explorer_data(*, corpus: str = "python-docs", vocab_size: int = 8000, sentences: int = 256,
                       max_length: int = 64, seed: int = 0) -> dict:
    """The explorer's data as the book uses it: chapter 2's tokenizer and sentence, then the first
    validation texts of the same corpus (``sentences`` texts in all) – the batch of chapter 2's widget."""
    if not isinstance(sentences, int) or sentences < 1:
        raise ValueError(f"sentences must be an int >= 1, got {sentences!r}")
    docs = load_corpus(corpus)
    tokenizer = train_tokenizer(docs.texts("train"), vocab_size=vocab_size)
    valid = docs.texts("valid")
    return explorer_data(tokenizer, [pick_sentence(valid), *valid[: sentences - 1]], max_length=max_length, seed=seed)


def _script_json(data: dict) -> str:
    """JSON that is safe inside a ``<script>`` element: every ``<`` written ``\\u003c`` (still valid
    JSON), so no ``</script>`` and no ``<!--`` can end or confuse the element."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def explorer_html(data: dict, *, element_id: str = "mlm-explorer", standalone: bool = False) -> str:
    """The explorer's HTML: a container, its embedded data and a message for readers without JavaScript.

    The page must load ``mlm-explorer.js`` and ``mlm-explorer.css`` (see :func:`asset_dir`), or
    pass ``standalone=True`` to inline both.
    """
    if not re.fullmatch(r"[A-Za-z][\w-]*", element_id):
        raise ValueError(f"element_id must be a letter then letters, digits, '_' or '-', got {element_id!r}")
    missing = {"text", "input_ids", "word_ids", "vocab", "special_ids", "mask_id", "pad_id", "colors", "seed"} - set(data)
    if missing:
        raise ValueError(f"data lacks {sorted(missing)}; build it with explorer_data()")
    parts = []
    if standalone:
        folder = resources.files(__package__) / "explorer_static"
        parts.append(f"<style>{(folder / 'mlm-explorer.css').read_text(encoding='utf-8')}</style>")
    parts.append(
        f'<div class="mlm-explorer" id="{element_id}" data-seed="{int(data["seed"])}">'
        f'<script type="application/json" class="mlm-explorer-data">{_script_json(data)}</script>'
        f'<p class="mlmx-noscript">The masking explorer needs JavaScript. The sentence it masks: '
        f'<q>{html.escape(data["text"])}</q></p></div>'
    )
    if standalone:
        parts.append(f"<script>{(folder / 'mlm-explorer.js').read_text(encoding='utf-8')}</script>")
    return "\n".join(parts)
