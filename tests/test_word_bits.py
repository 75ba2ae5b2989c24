"""Bits per character at masked words: the same words for every tokenizer, scored piece by piece."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.word_bits import WordBits, _windows, characters_per_piece, choose_words, masked_word_bits

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import WORDS, confident_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

# "tensor" is one piece for `whole`, three for `split`; "gradient" two for `split`
WHOLE = WORDS + ["."]
SPLIT = [w for w in WHOLE if w not in ("tensor", "gradient")] + ["ten", "##so", "##r", "grad", "##ient"]
TEXTS = ["the tensor of a layer is the output .", "a new gradient with the same shape and size .",
         "the input tensor returns the gradient of the bias to a module ."]


@pytest.fixture(scope="module")
def toks():
    return mlm.tokenizer_from_vocab(WHOLE), mlm.tokenizer_from_vocab(SPLIT)


def test_choose_words_is_the_same_for_every_tokenizer_and_seeded(toks):
    whole, split = toks
    a = choose_words(TEXTS, [whole, split], ratio=0.3, seed=4)
    assert a == choose_words(TEXTS, [split, whole], ratio=0.3, seed=4)
    assert a == choose_words(TEXTS, [whole], ratio=0.3, seed=4)  # no vocabulary decides the choice here
    assert any(a != choose_words(TEXTS, [whole], ratio=0.3, seed=s) for s in range(5, 10))
    for text, hide in zip(TEXTS, a):
        words = whole.words(text)
        eligible = [w for w in words if w != "."]
        assert len(hide) == max(1, round(0.3 * len(eligible)))
        assert all(words[w] != "." for w in hide) and hide == sorted(set(hide))


def test_choose_words_skips_unknown_words_and_checks_inputs(toks):
    whole, split = toks
    text = ["the tensor of autograd and the zeta ."]
    chosen = choose_words(text, [whole], ratio=1.0)[0]
    words = whole.words(text[0])
    assert [words[w] for w in chosen] == ["the", "tensor", "of", "and", "the"]  # [UNK] words and "." left out
    cased = mlm.tokenizer_from_vocab(WHOLE, lowercase=False)
    with pytest.raises(ValueError, match="different words"):
        choose_words(["The tensor ."], [whole, cased])
    with pytest.raises(ValueError, match="ratio"):
        choose_words(TEXTS, [whole], ratio=0)
    with pytest.raises(ValueError, match="MLMTokenizer"):
        choose_words(TEXTS, [])
    assert choose_words([". ."], [whole]) == [[]]


def naive_word_logp(model, tok, text: str, hide: list[int]) -> float:
    """log P of the hidden words, piece by piece, one word at a time revealed left to right – built
    by hand for a text that fits one window."""
    enc = tok.tokenizer.encode(text, add_special_tokens=False)
    ids = [tok.cls_id] + list(enc.ids) + [tok.sep_id]
    owner = [None] + list(enc.word_ids) + [None]
    positions = {w: [p for p, o in enumerate(owner) if o == w] for w in hide}
    total = 0.0
    depth = max(len(p) for p in positions.values())
    for j in range(depth):
        inputs = list(ids)
        for w, pos in positions.items():
            for rank, p in enumerate(pos):
                if rank >= j:
                    inputs[p] = tok.mask_id
        with torch.no_grad():
            logits = model.eval()(torch.tensor([inputs]), torch.ones(1, len(inputs), dtype=torch.long)).logits[0]
        logp = logits.log_softmax(-1)
        for w, pos in positions.items():
            if j < len(pos):
                total += float(logp[pos[j], ids[pos[j]]])
    return total


@pytest.mark.parametrize("which", [0, 1])
def test_masked_word_bits_matches_the_definition(toks, which):
    tok = toks[which]
    model = confident_model(tok, seed=2, max_len=24, std=0.3)
    chosen = choose_words(TEXTS, list(toks), ratio=0.3, seed=2)  # hides "gradient" and "tensor", split in pieces by SPLIT
    assert {"tensor", "gradient"} <= {toks[0].words(t)[w] for t, h in zip(TEXTS, chosen) for w in h}
    got = masked_word_bits(model, tok, TEXTS, chosen, batch_size=3)
    expected = -sum(naive_word_logp(model, tok, t, h) for t, h in zip(TEXTS, chosen))
    assert got.nats == pytest.approx(expected, rel=1e-5)
    words = [tok.words(t) for t in TEXTS]
    assert got.words == sum(len(h) for h in chosen)
    assert got.characters == sum(len(words[i][w]) for i, h in enumerate(chosen) for w in h)
    assert got.bits_per_character == pytest.approx(expected / math.log(2) / got.characters, rel=1e-5)
    # the split tokenizer scores more pieces for the same words
    n_pieces = [masked_word_bits(model if k == which else confident_model(t, seed=2, max_len=24, std=0.3), t, TEXTS, chosen).pieces
                for k, t in enumerate(toks)]
    assert n_pieces == [got.words, got.words + 3]  # tensor: 3 pieces, gradient: 2


def test_single_piece_words_give_the_masked_cross_entropy(toks):
    whole = toks[0]
    model = confident_model(whole, seed=3, max_len=24, std=0.3)
    text, hide = TEXTS[2], [1, 4, 9]
    enc = whole.tokenizer.encode(text, add_special_tokens=False)
    ids = torch.tensor([[whole.cls_id] + list(enc.ids) + [whole.sep_id]])
    labels = torch.full_like(ids, -100)
    inputs = ids.clone()
    for w in hide:
        labels[0, w + 1] = ids[0, w + 1]
        inputs[0, w + 1] = whole.mask_id
    with torch.no_grad():
        logits = model.eval()(inputs, torch.ones_like(ids)).logits
    ce = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100, reduction="sum")
    assert masked_word_bits(model, whole, [text], [hide]).nats == pytest.approx(float(ce), rel=1e-5)


def test_windows_end_at_word_boundaries():
    word_ids = [0, 0, 0, 1, 2, 2, 3, 4, 4, 4, 4, 5]
    spans = _windows(list(range(12)), word_ids, 4)
    assert spans[0][0] == 0 and spans[-1][1] == 12
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(0 < e - s <= 4 for s, e in spans)
    assert all(word_ids[e] != word_ids[e - 1] for s, e in spans[:-1])
    assert _windows([1] * 6, [0] * 6, 4) == [(0, 4), (4, 6)]  # one word longer than a window is cut


def test_long_texts_are_scored_in_windows(toks):
    whole = toks[0]
    model = confident_model(whole, seed=2, max_len=8, std=0.3)
    long_text = " ".join(TEXTS)
    chosen = choose_words([long_text], [whole], ratio=0.5)
    got = masked_word_bits(model, whole, [long_text], chosen)
    assert got.words == len(chosen[0]) and got.pieces == len(chosen[0])
    with pytest.raises(ValueError, match="max_length"):
        masked_word_bits(model, whole, [long_text], chosen, max_length=9)


def test_masked_word_bits_errors(toks):
    whole = toks[0]
    model = confident_model(whole, seed=2, max_len=24)
    with pytest.raises(ValueError, match="entries for 3 texts"):
        masked_word_bits(model, whole, TEXTS, [[1]])
    with pytest.raises(ValueError, match="outside"):
        masked_word_bits(model, whole, TEXTS[:1], [[99]])
    with pytest.raises(ValueError, match="no word to score"):
        masked_word_bits(model, whole, TEXTS[:1], [[]])
    with pytest.raises(ValueError, match="MaskedLM"):
        masked_word_bits(torch.nn.Linear(2, 2), whole, TEXTS, [[1]] * 3)


def test_word_bits_units():
    wb = WordBits(words=4, characters=20, pieces=6, nats=20 * math.log(2))
    assert wb.bits_per_character == pytest.approx(1.0)
    assert wb.bits_per_word == pytest.approx(5.0)
    assert wb.pieces_per_word == 1.5
    assert wb.as_row()["bits per character"] == 1.0


def test_characters_per_piece(toks):
    whole, split = toks
    text = ["the tensor ."]  # characters of the words: 3 + 6 + 1
    assert characters_per_piece(whole, text) == pytest.approx(10 / 3)
    assert characters_per_piece(split, text) == pytest.approx(10 / 5)  # ten ##so ##r
    with pytest.raises(ValueError, match="no piece"):
        characters_per_piece(whole, [" "])
