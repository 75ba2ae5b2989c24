"""The browser explorer's Python side: the data it embeds and the HTML it writes.

What the script does with them is tested in a real browser by tests/test_browser.py.
"""

from __future__ import annotations

import json
import re

import pytest

import mlm_lessons as mlm
from mlm_lessons.teaching import explorer
from tiny_data import tiny_tokenizer_and_texts


def embedded(html: str) -> dict:
    match = re.search(r'<script type="application/json" class="mlm-explorer-data">(.*?)</script>', html, re.S)
    assert match, "no embedded data"
    return json.loads(match.group(1))


def test_data_holds_the_tokenizers_pieces_and_the_padded_batch():
    tok, texts, _ = tiny_tokenizer_and_texts(n_train=10)
    data = explorer.explorer_data(tok, texts[:5], max_length=12, seed=3)
    batch = tok.encode_batch(texts[:5], max_length=12)
    assert data["input_ids"] == batch.input_ids.tolist()
    assert data["word_ids"] == [[-1 if w is None else w for w in row] for row in batch.word_ids]
    assert data["vocab"] == [tok.id_to_token(i) for i in range(tok.vocab_size)]
    assert data["special_ids"] == sorted(tok.special_ids)
    assert (data["mask_id"], data["pad_id"], data["seed"], data["text"]) == (tok.mask_id, tok.pad_id, 3, texts[0])
    assert set(data["colors"]) == {"untouched", "[MASK]", "random", "kept"}
    json.dumps(data)  # JSON-ready


def test_bad_input_is_refused_with_the_value():
    tok, texts, _ = tiny_tokenizer_and_texts(n_train=5)
    with pytest.raises(ValueError, match="texts is empty"):
        explorer.explorer_data(tok, [])
    with pytest.raises(ValueError, match="-1"):
        explorer.explorer_data(tok, texts, seed=-1)
    data = explorer.explorer_data(tok, texts)
    with pytest.raises(ValueError, match="'1x'"):
        explorer.explorer_html(data, element_id="1x")
    with pytest.raises(ValueError, match="vocab"):
        explorer.explorer_html({k: v for k, v in data.items() if k != "vocab"})
    with pytest.raises(ValueError, match="min_words=5, max_words=2"):
        explorer.pick_sentence(["a b c."], min_words=5, max_words=2)
    with pytest.raises(ValueError, match="3 to 4 words"):
        explorer.pick_sentence(["one two.", "one two three four five six."], min_words=3, max_words=4)


def test_pick_sentence_takes_the_first_sentence_in_range():
    texts = ["Too short. But the rest is long enough to count.", "One two three four. Five six."]
    assert explorer.first_sentence("  A b. C d? E") == "A b."
    assert explorer.pick_sentence(texts, min_words=3, max_words=4) == "One two three four."


def test_html_escapes_the_data_and_the_fallback_text():
    tok, texts, _ = tiny_tokenizer_and_texts(n_train=5)
    data = explorer.explorer_data(tok, texts)
    data["text"] = "a </script><b>bold</b> <!-- x"
    html = explorer.explorer_html(data, element_id="x-1")
    assert html.count("</script>") == 1  # only the data element's own end tag
    fallback = html.split("</script>", 1)[1]
    assert "<b>" not in fallback and "&lt;b&gt;bold" in fallback
    assert embedded(html) == data
    assert 'id="x-1"' in html and "mlm-explorer.js" not in html


def test_standalone_html_inlines_script_and_style():
    tok, texts, _ = tiny_tokenizer_and_texts(n_train=5)
    html = explorer.explorer_html(explorer.explorer_data(tok, texts), standalone=True)
    script = (explorer.__file__.rsplit("/", 1)[0]) + "/explorer_static/mlm-explorer.js"
    assert open(script, encoding="utf-8").read() in html
    assert html.startswith("<style>") and html.rstrip().endswith("</script>")
    assert sorted(p.name for p in __import__("pathlib").Path(explorer.asset_dir()).iterdir()) == sorted(explorer.ASSETS)


@pytest.mark.slow
def test_book_data_is_chapter_2s_sentence_and_batch(corpora, general_tok):
    data = explorer.book_explorer_data(sentences=8)
    valid = corpora["python-docs"].texts("valid")
    # chapter 2 picks its sentence with this rule, written out in the notebook
    sentence = next(explorer.first_sentence(t) for t in valid if 18 <= len(explorer.first_sentence(t).split()) <= 26)
    assert data["text"] == sentence
    batch = general_tok.encode_batch([sentence, *valid[:7]], max_length=64)
    assert data["input_ids"] == batch.input_ids.tolist()
    assert data["vocab"][general_tok.mask_id] == "[MASK]" and len(data["vocab"]) == general_tok.vocab_size
    n = sum(i not in general_tok.special_ids for i in data["input_ids"][0])
    assert mlm.num_to_select(n, 0.15) >= 1
