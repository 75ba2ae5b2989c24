"""Segments and next-sentence prediction: BERT's pair input, the NSP data and the overlap baseline."""

from __future__ import annotations

import pytest

from mlm_lessons.segments import SentencePair, next_sentence_pairs, overlap_baseline, split_sentences, word_overlap


def test_split_sentences_cuts_at_sentence_ends_only():
    text = "Returns a tensor. See e.g. the notes below! Is it 3.5 or 4? (Yes.) 2 more follow."
    assert split_sentences(text) == ["Returns a tensor.", "See e.g. the notes below!", "Is it 3.5 or 4?", "(Yes.)", "2 more follow."]
    assert split_sentences("  ") == []
    with pytest.raises(ValueError, match="text must be a str, got list"):
        split_sentences(["a"])


DOCS = [f"Topic{i} alpha{i} first{i} line{i}. Topic{i} beta{i} second{i} part{i}. Topic{i} gamma{i} third{i} end{i}."
        for i in range(40)]


def test_next_sentence_pairs_follow_berts_sampling():
    pairs = next_sentence_pairs(DOCS, seed=0)
    assert len(pairs) == len(DOCS)
    for p in pairs:
        sentences = split_sentences(DOCS[p.doc_a])
        k = sentences.index(p.a)
        if p.is_next:
            assert p.doc_b == p.doc_a and p.b == sentences[k + 1]
        else:
            assert p.doc_b != p.doc_a and p.b in split_sentences(DOCS[p.doc_b])
    share = sum(p.is_next for p in next_sentence_pairs(DOCS * 50, seed=1)) / (len(DOCS) * 50)
    assert share == pytest.approx(0.5, abs=0.04)
    assert next_sentence_pairs(DOCS, seed=0) == pairs
    assert next_sentence_pairs(DOCS, seed=3) != pairs


@pytest.mark.parametrize("texts, kwargs, message", [
    ("one text", {}, "texts must be a list of documents, got a single str"),
    (DOCS, {"min_words": 0}, "min_words must be a positive int, got 0"),
    (["Too short. Also short."] * 3, {}, "need at least two documents with two consecutive sentences of >= 4 words; got 0 of 3"),
])
def test_next_sentence_pairs_bad_input(texts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        next_sentence_pairs(texts, **kwargs)


def test_overlap_baseline_solves_pairs_that_differ_in_topic():
    assert word_overlap("The tensor grad", "grad of a tensor") == pytest.approx(2 / 3)
    assert word_overlap("a b", "c d") == 0.0
    train, test = next_sentence_pairs(DOCS[:20], seed=0), next_sentence_pairs(DOCS[20:], seed=0)
    result = overlap_baseline(train, test)
    assert result["train_accuracy"] == 1.0 and result["test_accuracy"] == 1.0  # IsNext shares "topicN", NotNext does not
    flipped = [SentencePair(p.a, p.b, not p.is_next, p.doc_a, p.doc_b) for p in test]
    assert overlap_baseline(train, flipped)["test_accuracy"] == 0.0
    with pytest.raises(ValueError, match="need pairs to choose the threshold on and to test on, got 0 and"):
        overlap_baseline([], test)


def test_encode_pair_marks_segments_as_bert_does(general_tok):
    a, b = "the gradient flows backward", "every tensor keeps its history of operations"
    enc = general_tok.encode_pair(a, b)
    ids, types = enc["input_ids"], enc["token_type_ids"]
    seps = [i for i, t in enumerate(ids) if t == general_tok.sep_id]
    assert ids[0] == general_tok.cls_id and len(seps) == 2 and seps[1] == len(ids) - 1
    assert types == [0] * (seps[0] + 1) + [1] * (len(ids) - seps[0] - 1)
    body_a = general_tok.encode_examples([a])[0]["input_ids"][1:-1]
    assert ids[1 : seps[0]] == body_a
    short = general_tok.encode_pair(a, b * 5, max_length=16)
    assert len(short["input_ids"]) == 16 and short["token_type_ids"].count(0) >= 3  # the longer segment is cut first
    with pytest.raises(ValueError, match="max_length must be an int >= 5"):
        general_tok.encode_pair(a, b, max_length=4)
