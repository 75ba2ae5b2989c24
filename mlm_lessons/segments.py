"""Segments and next-sentence prediction: BERT's second objective, and why later encoders dropped it.

BERT (Devlin et al., 2019) read two *segments* per sequence, ``[CLS] A [SEP] B [SEP]``
(:meth:`~mlm_lessons.tokenizer.MLMTokenizer.encode_pair`), and added a learned *segment embedding*
(one vector for A, one for B) to each position's token and position embeddings. Beside MLM it
trained *next-sentence prediction* (NSP): a binary classifier on the final state of ``[CLS]`` says
whether B is the text that follows A in its document (IsNext) or a segment drawn from another
document (NotNext), half and half. RoBERTa (Liu et al., 2019) found that removing the objective
and reading whole, packed documents matches or improves the fine-tuned results; ALBERT (Lan et al.,
2020) gave a reason: a NotNext segment usually comes from another topic, so NSP can be solved by
topic alone, a task MLM already teaches. :func:`overlap_baseline` measures how far topic gets on
pairs of this package's corpora, with no model at all.

The book's encoders read one segment, as RoBERTa and ModernBERT do: packed rows of whole
documents (:func:`~mlm_lessons.masking.pack_examples`), no segment embeddings, no NSP.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Sequence

from ._checks import require_int

__all__ = ["SentencePair", "split_sentences", "next_sentence_pairs", "word_overlap", "overlap_baseline"]

_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][)\"']))\s+(?=[A-Z0-9`(\"'])")
_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")


def split_sentences(text: str) -> list[str]:
    """``text`` cut after ``.``, ``!`` or ``?`` (and a closing bracket or quote after one) where
    whitespace and a capital, a digit or an opening quote or bracket follow (``e.g. the`` stays
    whole); blank pieces are dropped."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


@dataclass(frozen=True)
class SentencePair:
    """Segment A, segment B, whether B follows A in A's document, and the documents they come from."""

    a: str
    b: str
    is_next: bool
    doc_a: int
    doc_b: int


def next_sentence_pairs(texts: Sequence[str], *, seed: int = 0, min_words: int = 4) -> list[SentencePair]:
    """BERT's NSP data, one pair per document: A is a sentence of the document at a random place and
    B, with probability 1/2, the sentence after it (IsNext), else a random sentence of another
    document (NotNext). Only sentences of at least ``min_words`` words count; a document needs two in
    a row. ``seed`` fixes every draw."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of documents, got a single str; wrap it: [text]")
    require_int(min_words, "min_words")
    docs = [[s for s in split_sentences(t)] for t in texts]
    usable = [s for s in ((i, d) for i, d in enumerate(docs)) if any(
        len(a.split()) >= min_words and len(b.split()) >= min_words for a, b in zip(s[1], s[1][1:]))]
    if len(usable) < 2:
        raise ValueError(f"need at least two documents with two consecutive sentences of >= {min_words} words; "
                         f"got {len(usable)} of {len(docs)}")
    long_sentences = [(i, s) for i, d in usable for s in d if len(s.split()) >= min_words]
    rng = random.Random(seed)
    pairs = []
    for i, sentences in usable:
        starts = [k for k in range(len(sentences) - 1)
                  if len(sentences[k].split()) >= min_words and len(sentences[k + 1].split()) >= min_words]
        k = rng.choice(starts)
        if rng.random() < 0.5:
            pairs.append(SentencePair(sentences[k], sentences[k + 1], True, i, i))
        else:
            j, other = rng.choice(long_sentences)
            while j == i:
                j, other = rng.choice(long_sentences)
            pairs.append(SentencePair(sentences[k], other, False, i, j))
    return pairs


def word_overlap(a: str, b: str) -> float:
    """The Jaccard overlap of the two segments' words (lower-cased, of three characters or more):
    |A ∩ B| / |A ∪ B|, 0 when neither has such a word."""
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


def overlap_baseline(train: Sequence[SentencePair], test: Sequence[SentencePair]) -> dict:
    """NSP without a model: call a pair IsNext when its :func:`word_overlap` exceeds a threshold,
    the threshold that is most accurate on ``train``. Returns the threshold and the accuracy on
    both, and the share of IsNext pairs in ``test`` (the accuracy of always guessing the majority
    is at most that share or its complement)."""
    if not train or not test:
        raise ValueError(f"need pairs to choose the threshold on and to test on, got {len(train)} and {len(test)}")
    scored = sorted((word_overlap(p.a, p.b), p.is_next) for p in train)
    candidates = sorted({s for s, _ in scored} | {-1.0})

    def accuracy(pairs_scores, threshold):
        return sum((s > threshold) == y for s, y in pairs_scores) / len(pairs_scores)

    threshold = max(candidates, key=lambda t: (accuracy(scored, t), -t))
    test_scored = [(word_overlap(p.a, p.b), p.is_next) for p in test]
    return {"threshold": threshold, "train_accuracy": accuracy(scored, threshold),
            "test_accuracy": accuracy(test_scored, threshold),
            "test_is_next": sum(p.is_next for p in test) / len(test)}
