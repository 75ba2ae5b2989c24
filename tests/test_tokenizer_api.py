"""The tokenizer's own ways to cut text into pieces without special tokens: piece_ids, pieces_by_word
and piece_ids_with_words, each checked against the raw ``tokenizers`` call it stands for."""

from __future__ import annotations

import pytest

from mlm_lessons.tokenizer import MLMTokenizer, tokenizer_from_vocab, train_tokenizer

BEL = "\x07"  # a control character: BERT's normaliser erases it, so a word made of it has no piece


@pytest.fixture(scope="module")
def tok(corpora) -> MLMTokenizer:
    return train_tokenizer(corpora["python-docs"].texts("train")[:3000], vocab_size=2000)


@pytest.fixture(scope="module")
def texts(corpora) -> list[str]:
    return corpora["pytorch-docs"].texts("valid")[:150]  # another corpus: words cut into several pieces, some [UNK]


class _NoTokenizer:
    """Stands in for ``MLMTokenizer.tokenizer``: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"tokenizers was called ({name}) for an empty input")


def test_piece_ids_is_encode_batch_without_specials(tok, texts):
    raw = [enc.ids for enc in tok.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    got = tok.piece_ids(texts)
    assert got == raw
    assert got == [tok.encode(t, add_special_tokens=False) for t in texts]
    assert all(isinstance(ids, list) and all(isinstance(i, int) for i in ids) for ids in got)
    assert not any(i in (tok.cls_id, tok.sep_id) for ids in got for i in ids)
    assert any(len(ids) > 100 for ids in got)  # nothing truncated
    assert tok.piece_ids(tuple(texts[:3])) == raw[:3]  # any sequence of texts


def test_piece_ids_of_words(tok):
    words = ["autograd", "tensor", "the", "backpropagation", BEL, "", "dtype"]
    got = tok.piece_ids(words)
    assert got == [enc.ids for enc in tok.tokenizer.encode_batch(words, add_special_tokens=False)]
    assert got[4] == [] and got[5] == []
    assert len(got[3]) > 1 and tok.decode(got[3]) == "backpropagation"


def test_piece_ids_of_nothing_calls_nothing():
    toy = tokenizer_from_vocab(["the"])
    toy.tokenizer = _NoTokenizer()
    assert toy.piece_ids([]) == []
    assert toy.piece_ids(iter(())) == []
    assert toy.pieces_by_word([]) == []


def test_piece_ids_refuses_a_lone_str_and_non_str(tok):
    with pytest.raises(ValueError, match="single str"):
        tok.piece_ids("the tensor")
    with pytest.raises(ValueError, match=r"texts\[1\] is a int"):
        tok.piece_ids(["the", 3])


def _grouped(tokenizer: MLMTokenizer, examples) -> list[list[list[int]]]:
    """The raw call and its grouping by word, written out."""
    encs = tokenizer.tokenizer.encode_batch([list(ws) for ws in examples], is_pretokenized=True, add_special_tokens=False)
    out = []
    for words, enc in zip(examples, encs):
        pieces = [[] for _ in words]
        for piece, w in zip(enc.ids, enc.word_ids):
            pieces[w].append(piece)
        out.append(pieces)
    return out


def test_pieces_by_word_is_the_pretokenized_encoding_grouped_by_word(tok, texts):
    examples = [t.split() for t in texts]
    got = tok.pieces_by_word(examples)
    assert got == _grouped(tok, examples)
    assert [len(words) for words in got] == [len(ws) for ws in examples]  # one entry per word, in order
    assert any(len(pieces) > 1 for words in got for pieces in words)
    for ws, words in zip(examples[:20], got):
        for word, pieces in zip(ws, words):
            assert pieces == sum(tok.piece_ids(tok.words(word)), [])  # each word cut on its own


def test_a_word_the_normaliser_erases_gets_no_piece(tok):
    examples = [["Autograd", BEL, "computes", "gradients", "."], [BEL], [], ("the", "tensor")]
    got = tok.pieces_by_word(examples)
    assert got == _grouped(tok, examples)
    assert got[0][1] == [] and all(got[0][w] for w in (0, 2, 3, 4))
    assert got[1] == [[]] and got[2] == []
    assert got[0][0] == tok.piece_ids(["autograd"])[0]  # normalised (lowercased) as in running text


def test_pieces_by_word_refuses_what_is_not_a_list_of_words(tok):
    with pytest.raises(ValueError, match="single str"):
        tok.pieces_by_word("the tensor")
    with pytest.raises(ValueError, match=r"examples\[1\] is a single str"):
        tok.pieces_by_word([["the"], "tensor"])
    with pytest.raises(ValueError, match=r"examples\[0\]\[1\] is a NoneType"):
        tok.pieces_by_word([["the", None]])


def test_piece_ids_with_words(tok, texts):
    for text in texts[:50] + [f"the {BEL} tensor", ""]:
        ids, word_ids = tok.piece_ids_with_words(text)
        enc = tok.tokenizer.encode(text, add_special_tokens=False)
        assert (ids, word_ids) == (list(enc.ids), list(enc.word_ids))
        assert ids == tok.piece_ids([text])[0]
        words = tok.words(text)
        assert all(w is not None and 0 <= w < len(words) for w in word_ids)
    assert set(tok.piece_ids_with_words(f"the {BEL} tensor")[1]) == {0, 1}  # the erased character is no word
    with pytest.raises(ValueError, match="text must be a str"):
        tok.piece_ids_with_words(["the"])
