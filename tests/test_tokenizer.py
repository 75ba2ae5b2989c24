"""The WordPiece tokenizer: special ids, round trips, batches, persistence, fragmentation, reference."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mlm_lessons as mlm
from mlm_lessons.tokenizer import MLMTokenizer, tokenizer_from_vocab

TOY = tokenizer_from_vocab(["auto", "##grad", "tensor", "grad", "##ient", "the", "of", ".", ",", "a", "##b"])


def test_special_tokens_have_fixed_ids(general_tok, domain_tok):
    for tok in (general_tok, domain_tok, TOY):
        assert [tok.token_to_id(t) for t in mlm.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
        assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
        assert tok.special_ids == {0, 1, 2, 3, 4}
    assert general_tok.vocab_size == domain_tok.vocab_size == 8000


def test_encode_wraps_in_cls_and_sep():
    assert TOY.encode("Autograd of the tensor.") == [2, 5, 6, 11, 10, 7, 12, 3]
    assert TOY.encode("autograd", add_special_tokens=False) == [5, 6]
    assert TOY.tokenize("Gradient, xyz") == ["grad", "##ient", ",", "[UNK]"]


def test_truncation_keeps_sep():
    ids = TOY.encode("the tensor of the tensor of the tensor", max_length=5)
    assert ids == [2, 10, 7, 11, 3]
    with pytest.raises(ValueError, match="max_length=2 leaves no room"):
        TOY.encode("the", max_length=2)


@pytest.mark.parametrize(
    "text",
    ["autograd computes the gradient of a tensor.", "the weights of a linear layer, initialized uniformly."],
)
def test_round_trip_of_normalised_text(general_tok, domain_tok, text):
    for tok in (general_tok, domain_tok):
        assert tok.decode(tok.encode(text)) == text


def test_decode_then_encode_is_stable_on_real_text(general_tok, corpora):
    docs = corpora["pytorch-docs"].texts("valid")[:200]
    for text in docs:
        ids = general_tok.encode(text)
        if general_tok.unk_id in ids:
            continue
        assert general_tok.encode(general_tok.decode(ids)) == ids


word = st.sampled_from(["auto", "autograd", "tensor", "the", "of", "gradient", "grad", "a", "ab", "abb"])


@settings(max_examples=200)
@given(st.lists(word, min_size=1, max_size=20))
def test_round_trip_property(words):
    text = " ".join(words)
    assert TOY.decode(TOY.encode(text)) == text
    assert "[UNK]" not in TOY.tokenize(text)


def test_decode_rejects_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match=r"id 99 is outside the vocabulary \[0, 16\)"):
        TOY.decode([2, 99, 3])


def test_batch_encoding_pads_masks_and_tracks_words():
    batch = TOY(["autograd of the tensor", "a"], max_length=16)
    assert batch.input_ids.dtype == torch.long and batch.input_ids.shape == (2, 7)
    assert batch.input_ids.tolist() == [[2, 5, 6, 11, 10, 7, 3], [2, 14, 3, 0, 0, 0, 0]]
    assert batch.attention_mask.tolist() == [[1] * 7, [1, 1, 1, 0, 0, 0, 0]]
    assert batch.word_ids == [[None, 0, 0, 1, 2, 3, None], [None, 0, None, None, None, None, None]]
    fixed = TOY.encode_batch(["a"], max_length=5, padding="max_length")
    assert fixed.input_ids.tolist() == [[2, 14, 3, 0, 0]]
    lists = TOY.encode_batch(["a", "the tensor"], padding=False, return_tensors=None)
    assert lists["input_ids"] == [[2, 14, 3], [2, 10, 7, 3]]


def test_batch_truncation(general_tok, corpora):
    texts = corpora["python-docs"].texts("valid")[:64]
    batch = general_tok.encode_batch(texts, max_length=32)
    assert batch.input_ids.shape[1] <= 32
    lengths = batch.attention_mask.sum(1)
    for row, n in zip(batch.input_ids.tolist(), lengths.tolist()):
        assert row[0] == general_tok.cls_id and row[n - 1] == general_tok.sep_id
        assert all(i == general_tok.pad_id for i in row[n:])
        assert general_tok.pad_id not in row[:n]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: TOY.encode_batch([]), "texts is empty"),
        (lambda: TOY.encode_batch("one text"), "got a single str"),
        (lambda: TOY.encode_batch(["a", None]), r"texts\[1\] is a NoneType"),
        (lambda: TOY.encode_batch(["a"], max_length=1), "max_length must be an int >= 2"),
        (lambda: TOY.encode_batch(["a"], padding="left"), "padding must be"),
        (lambda: TOY.encode_batch(["a", "the tensor"], padding=False), "different lengths cannot form a tensor"),
        (lambda: TOY.encode(3), "encode expects a str, got int"),
    ],
)
def test_batch_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_save_and_load(general_tok, tmp_path):
    path = general_tok.save(tmp_path / "sub" / "tok.json")
    again = MLMTokenizer.load(path)
    assert again == general_tok and again.get_vocab() == general_tok.get_vocab()
    text = "Returns a new tensor with the logarithm of the elements."
    assert again.encode(text) == general_tok.encode(text)
    with pytest.raises(ValueError, match="does not exist"):
        MLMTokenizer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a tokenizers JSON file"):
        MLMTokenizer.load(tmp_path / "bad.json")


def test_wrong_special_ids_are_rejected(tmp_path):
    from tokenizers import Tokenizer, models

    bad = Tokenizer(models.WordPiece(vocab={"[UNK]": 0, "[PAD]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}, unk_token="[UNK]"))
    with pytest.raises(ValueError, match=r"special token \[PAD\] must have id 0, found 1"):
        MLMTokenizer(bad)


def test_fragmentation_counts_by_hand():
    frag = TOY.fragmentation(["Autograd tensor, gradient xyz ."])
    # autograd -> auto ##grad (2), tensor (1), gradient -> grad ##ient (2), xyz -> [UNK] (1); punctuation not counted
    assert (frag.words, frag.pieces, frag.split_words, frag.unk_words) == (4, 6, 2, 1)
    assert frag.pieces_per_word == 1.5 and frag.share_split == 0.5 and frag.unk_rate == 0.25


def test_fragmentation_matches_a_brute_force_count(general_tok, corpora):
    texts = corpora["numpy-docs"].texts("valid")[:50]
    words = [w for t in texts for w in general_tok.words(t) if any(ch.isalnum() for ch in w)]
    pieces = [len(general_tok.tokenize(w)) for w in words]
    frag = general_tok.fragmentation(texts)
    assert frag.words == len(words) and frag.pieces == sum(pieces)
    assert frag.split_words == sum(p > 1 for p in pieces)


def test_domain_tokenizer_fragments_domain_text_less(general_tok, domain_tok, corpora):
    valid = corpora["pytorch-docs"].texts("valid")
    assert domain_tok.fragmentation(valid).pieces_per_word < general_tok.fragmentation(valid).pieces_per_word
    assert len(general_tok.tokenize("backpropagation")) > len(domain_tok.tokenize("backpropagation")) == 1


def test_training_is_deterministic(corpora):
    """tokenizers' trainer alone can give a different vocabulary on every run (hash-map order breaks
    ties between equally frequent merges); train_tokenizer fixes the order, so the result is stable."""
    texts = corpora["pytorch-docs"].texts("train")
    first = mlm.train_tokenizer(texts, vocab_size=4000)
    assert all(mlm.train_tokenizer(texts, vocab_size=4000).to_json() == first.to_json() for _ in range(3))
    added = json.loads(first.to_json())["added_tokens"]
    assert [t["content"] for t in added] == list(mlm.SPECIAL_TOKENS) and all(t["special"] for t in added)
    assert first.tokenize("##x") == ["#", "#", "x"], "continuing pieces are ordinary vocabulary, not added tokens"


def test_training_errors():
    with pytest.raises(ValueError, match=r"vocab_size=5 cannot hold the 5 special tokens"):
        mlm.train_tokenizer(["some text"], vocab_size=5)
    with pytest.raises(ValueError, match=r"vocab_size=20 is too small: .* alphabet .* need \d+ entries"):
        mlm.train_tokenizer(["the quick brown fox jumps over the lazy dog"] * 3, vocab_size=20)
    with pytest.raises(ValueError, match="texts is empty"):
        mlm.train_tokenizer([], vocab_size=100)
    with pytest.raises(ValueError, match="all 2 texts are empty"):
        mlm.train_tokenizer(["", "  "], vocab_size=100)
    with pytest.raises(ValueError, match="min_frequency must be a positive int"):
        mlm.train_tokenizer(["text"], vocab_size=100, min_frequency=0)


def test_vocabulary_from_a_list_is_validated():
    with pytest.raises(ValueError, match=r"do not list special tokens \(\[MASK\]\)"):
        tokenizer_from_vocab(["a", "[MASK]"])
    with pytest.raises(ValueError, match=r"repeated: \['a'\]"):
        tokenizer_from_vocab(["a", "b", "a"])
    with pytest.raises(ValueError, match="non-empty strings without spaces"):
        tokenizer_from_vocab(["a b"])


def test_matches_hugging_face_bert_tokenizer(general_tok, corpora, tmp_path):
    """Our normalisation, pre-tokenisation and WordPiece are BERT's: same vocab.txt, same ids."""
    transformers = pytest.importorskip("transformers")
    general_tok.save_vocab(tmp_path / "vocab.txt")
    reference = transformers.BertTokenizerFast.from_pretrained(str(tmp_path))
    texts = [t for c in corpora.values() for t in c.texts("valid")[:100]]
    texts += ["Ça va? naïve CAFÉ 日本語 tab\there", "x" * 150]
    ours = general_tok.encode_batch(texts, max_length=512, padding=False, return_tensors=None)["input_ids"]
    theirs = reference(texts, max_length=512, truncation=True)["input_ids"]
    assert ours == theirs
    assert json.loads(general_tok.to_json())["model"]["type"] == "WordPiece"
