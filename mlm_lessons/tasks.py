"""Fine-tuning tasks labelled from provenance, not by hand.

- ``torch-subpackage`` (sequence classification): which ``torch`` sub-package a docstring paragraph
  comes from – ``nn``, ``optim``, ``distributed``, ... – read off the module the docstring belongs
  to.
- ``code-spans`` (token labeling): which words of a docstring paragraph are code – what the reST
  markup marked with double backquotes or roles such as ``:attr:``, ``:func:`` and ``:class:``
  before the cleaning stripped it (the corpus keeps those character spans as ``code_spans``).

A task's *kind* – :data:`SEQUENCE_CLASSIFICATION` or :data:`TOKEN_LABELING` here, retrieval pairs
in :mod:`mlm_lessons.retrieval` – is an object chosen once, when the task is made; it owns what
differs between kinds: the head, the encoding of examples, the decoding of the head's logits into
predictions, the metrics and the main metric (which early stopping and model choice follow).
:func:`first_pieces` finds each word's first piece in an encoded chunk, for fine-tuning's
predictions and the token probe's features alike.

Examples come from the corpus's own splits: a paragraph of a train document is a training example,
of a valid document a validation example, of a test document a test example. Domain-adaptive
pretraining reads only the train split, so a test paragraph is never seen there; paragraphs whose
text also occurs anywhere in a train document (boilerplate repeated across docstrings) are dropped
from valid and test, and repeated paragraphs are kept once.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import torch
from tokenizers import pre_tokenizers

from ._checks import require_int
from .corpus import Corpus, Document, load_corpus
from .corpus.documents import SPLITS
from .heads import SequenceClassifier, TokenClassifier, sequence_loss, token_loss
from .masking import IGNORE_INDEX
from .model import EncoderConfig, MaskedLM
from .settings import TASK_NAMES

__all__ = [
    "TASKS", "SUBPACKAGES", "ClassificationExample", "TaggingExample", "TaskData", "paragraphs",
    "subpackage_task", "code_span_task", "load_task", "words_with_offsets", "spans_of", "TaskKind", "KINDS",
    "SEQUENCE_CLASSIFICATION", "TOKEN_LABELING", "kind_of", "first_pieces", "encode_classification", "encode_tagging",
    "f1_score", "classification_metrics", "tagging_metrics",
]

#: The task names the command line and :func:`load_task` accept.
TASKS = TASK_NAMES
#: The classes of ``torch-subpackage``: the sub-packages with enough paragraphs in every split of the book's corpus.
SUBPACKAGES = ("nn", "optim", "distributed", "fx", "ao", "utils")
#: Labels of ``code-spans``.
CODE_LABELS = ("prose", "code")

_PRE_TOKENIZER = pre_tokenizers.BertPreTokenizer()


@dataclass(frozen=True)
class ClassificationExample:
    text: str
    label: int
    source: str  # module.name of the docstring


@dataclass(frozen=True)
class TaggingExample:
    """A paragraph cut into words (the tokenizer's pre-tokenizer units), one label per word."""

    words: tuple[str, ...]
    labels: tuple[int, ...]
    source: str

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class TaskData:
    """A task's examples by split, and the names of its labels (index = label id). ``kind`` is given
    by name ("classification" or "tagging") and held as its :class:`TaskKind` (equal to its name)."""

    name: str
    kind: "TaskKind"
    label_names: tuple[str, ...]
    train: list = field(default_factory=list)
    valid: list = field(default_factory=list)
    test: list = field(default_factory=list)

    def __post_init__(self):
        self.kind = kind_of(self.kind)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> list:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose train, valid or test")
        return getattr(self, name)

    def label_counts(self, split: str) -> dict[str, int]:
        """Examples per class (classification) or words per label (tagging)."""
        counts: Counter = Counter()
        for ex in self.split(split):
            counts.update(self.kind.labels(ex))
        return {name: counts[i] for i, name in enumerate(self.label_names)}

    def subsample(self, per_class: int | None, seed: int = 0) -> "TaskData":
        """The same task with at most ``per_class`` training examples per class (classification),
        or ``per_class × num_labels`` training examples (tagging), drawn with ``seed``; valid and
        test unchanged. ``None`` keeps every label."""
        if per_class is None:
            return self
        require_int(per_class, "per_class", why=" or None (all labels)")
        chosen = self.kind.sample(self.train, per_class, self.num_labels, random.Random(seed))
        chosen.sort(key=self.train.index)
        return TaskData(self.name, self.kind, self.label_names, chosen, self.valid, self.test)

    def stats(self) -> list[dict]:
        return [{"split": s, "examples": len(self.split(s)), **self.label_counts(s)} for s in SPLITS]


def paragraphs(doc: Document, min_words: int = 8) -> list[tuple[str, tuple[tuple[int, int], ...]]]:
    """A document's paragraphs (blank-line separated) of at least ``min_words`` words, each with
    its code spans moved to the paragraph's own character offsets (a span cut by the paragraph
    boundary is clipped)."""
    out, pos = [], 0
    for para in doc.text.split("\n\n"):
        start, end = pos, pos + len(para)
        pos = end + 2
        stripped = para.strip()
        if len(stripped.split()) < min_words:
            continue
        offset = start + para.index(stripped)
        spans = tuple((max(a, offset) - offset, min(b, offset + len(stripped)) - offset)
                      for a, b in doc.code_spans if a < offset + len(stripped) and b > offset)
        out.append((stripped, spans))
    return out


def subpackage_of(module: str, classes: tuple[str, ...] = SUBPACKAGES) -> str | None:
    """``"torch.nn.modules.linear"`` -> ``"nn"`` (when ``nn`` is one of ``classes``), else None."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "torch" and parts[1] in classes:
        return parts[1]
    return None


def _build(corpus: Corpus, make) -> tuple[list, list, list]:
    """Examples per split through ``make(doc, paragraph, spans)``, leakage and repeats removed."""
    train_text = "\x00".join(d.text for d in corpus.train)  # everything DAPT may read
    splits = {}
    for split in SPLITS:
        kept, seen = [], set()
        for doc in corpus.split(split):
            for para, spans in paragraphs(doc):
                if para in seen or (split != "train" and para in train_text):
                    continue
                example = make(doc, para, spans)
                if example is not None:
                    seen.add(para)
                    kept.append(example)
        splits[split] = kept
    return splits["train"], splits["valid"], splits["test"]


def subpackage_task(corpus: Corpus | None = None, classes: tuple[str, ...] = SUBPACKAGES) -> TaskData:
    """Classify a paragraph of ``torch``'s documentation by the sub-package it documents."""
    corpus = corpus if corpus is not None else load_corpus("pytorch-docs")
    classes = tuple(classes)
    if len(set(classes)) < 2:
        raise ValueError(f"a classification task needs at least two classes, got {classes!r}")
    index = {c: i for i, c in enumerate(classes)}

    def make(doc, para, spans):
        sub = subpackage_of(doc.module, classes)
        return None if sub is None else ClassificationExample(para, index[sub], f"{doc.module}.{doc.name}")

    # the same paragraph under two sub-packages would be a contradiction: such texts are dropped
    labels_of: dict[str, set] = {}
    for doc in corpus.documents:
        sub = subpackage_of(doc.module, classes)
        if sub is not None:
            for para, _ in paragraphs(doc):
                labels_of.setdefault(para, set()).add(sub)
    ambiguous = {p for p, subs in labels_of.items() if len(subs) > 1}
    train, valid, test = _build(corpus, lambda d, p, s: None if p in ambiguous else make(d, p, s))
    task = TaskData("torch-subpackage", "classification", classes, train, valid, test)
    empty = [(s, c) for s in SPLITS for c, n in task.label_counts(s).items() if n == 0]
    if empty:
        raise ValueError(f"class {empty[0][1]!r} has no example in the {empty[0][0]} split; choose other classes")
    return task


def words_with_offsets(text: str) -> list[tuple[str, tuple[int, int]]]:
    """The words of ``text`` as BERT's pre-tokenizer cuts them (punctuation apart), with offsets."""
    return _PRE_TOKENIZER.pre_tokenize_str(text)


def code_span_task(corpus: Corpus | None = None, *, only_with_code: bool = True) -> TaskData:
    """Label every word of a paragraph ``code`` (1) if it lies in a span the markup marked as code,
    else ``prose`` (0). With ``only_with_code`` only paragraphs holding at least one code span."""
    corpus = corpus if corpus is not None else load_corpus("pytorch-docs")

    def make(doc, para, spans):
        if only_with_code and not spans:
            return None
        words = words_with_offsets(para)
        labels = tuple(int(any(a < e and b > s for a, b in spans)) for _, (s, e) in words)
        return TaggingExample(tuple(w for w, _ in words), labels, f"{doc.module}.{doc.name}")

    train, valid, test = _build(corpus, make)
    return TaskData("code-spans", "tagging", CODE_LABELS, train, valid, test)


def load_task(name: str, corpus: Corpus | None = None) -> TaskData:
    """``"torch-subpackage"`` or ``"code-spans"`` on ``pytorch-docs`` (or the corpus given)."""
    if name == "torch-subpackage":
        return subpackage_task(corpus)
    if name == "code-spans":
        return code_span_task(corpus)
    raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")


def spans_of(labels) -> set[tuple[int, int]]:
    """The maximal runs of consecutive words labelled 1, as ``(first, last + 1)`` word indices."""
    spans, start = set(), None
    for i, y in enumerate(list(labels) + [0]):
        if y == 1 and start is None:
            start = i
        elif y != 1 and start is not None:
            spans.add((start, i))
            start = None
    return spans


# -- task kinds -----------------------------------------------------------------------------------


class TaskKind:
    """What a kind of task does its own way. A kind equals its name (``task.kind == "tagging"``).

    - ``labels(example)``: the example's label ids (one, or one per word);
    - ``sample(train, per_class, num_labels, rng)``: a few-label training set;
    - ``head(init, num_labels, pooling=, dropout=)``: the model to fine-tune, on ``init``'s encoder
      (a pretrained ``MaskedLM``) or a new one (an ``EncoderConfig``);
    - ``encode(tokenizer, examples, max_length)``: the examples as the head reads them;
    - ``empty(examples)`` and ``decode(out, items, batch, predicted, start)``: predictions, from the
      head's argmax over a padded batch of encoded items;
    - ``metrics(examples, predictions, num_labels)`` and ``main_metric``;
    - ``loss(logits, labels)``: the head's loss, for heads made elsewhere (a published model's);
    - ``auto_class`` and ``pipeline``: the ``transformers`` class and pipeline of such a head.
    """

    name = ""
    main_metric = ""
    head_class: type = SequenceClassifier
    auto_class = ""
    pipeline = ""
    #: whether the head reads one pooled vector per text (``pooling`` has a meaning)
    pooled = False

    def __eq__(self, other) -> bool:
        return self.name == (other.name if isinstance(other, TaskKind) else other)

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)

    def __repr__(self) -> str:
        return repr(self.name)

    def head(self, init: MaskedLM | EncoderConfig, num_labels: int, *, pooling: str = "cls", dropout: float = 0.1):
        kwargs = self.head_options(pooling=pooling, dropout=dropout)
        if isinstance(init, MaskedLM):
            return self.head_class.from_pretrained(init, num_labels, **kwargs)
        if isinstance(init, EncoderConfig):
            return self.head_class(init, num_labels, **kwargs)
        raise ValueError(f"init must be a pretrained MaskedLM or an EncoderConfig (from scratch), got {type(init).__name__}")

    def head_options(self, *, pooling: str, dropout: float) -> dict:
        return {"dropout": dropout}


class SequenceClassification(TaskKind):
    """One label per text, from a :class:`~mlm_lessons.heads.SequenceClassifier`; scored by accuracy and macro-F1."""

    name, main_metric, head_class = "classification", "macro_f1", SequenceClassifier
    auto_class, pipeline, pooled = "AutoModelForSequenceClassification", "text-classification", True
    loss = staticmethod(sequence_loss)

    def labels(self, example) -> list[int]:
        return [example.label]

    def sample(self, train: list, per_class: int, num_labels: int, rng: random.Random) -> list:
        chosen = []
        for label in range(num_labels):
            pool = [ex for ex in train if ex.label == label]
            chosen += rng.sample(pool, min(per_class, len(pool)))
        return chosen

    def head_options(self, *, pooling: str, dropout: float) -> dict:
        return {"pooling": pooling, "dropout": dropout}

    def encode(self, tokenizer, examples, max_length: int) -> list[dict]:
        return encode_classification(tokenizer, examples, max_length)

    def empty(self, examples) -> list:
        return [None] * len(examples)

    def decode(self, out: list, items: list[dict], batch: dict, predicted: torch.Tensor, start: int) -> None:
        for j in range(len(items)):
            out[start + j] = int(predicted[j])

    def metrics(self, examples, predictions, num_labels: int) -> dict:
        return classification_metrics([ex.label for ex in examples], predictions, num_labels)


class TokenLabeling(TaskKind):
    """One label per word, from a :class:`~mlm_lessons.heads.TokenClassifier` at the word's first
    piece; scored by word and span precision, recall and F1 (span F1 first)."""

    name, main_metric, head_class = "tagging", "span_f1", TokenClassifier
    auto_class, pipeline = "AutoModelForTokenClassification", "token-classification"
    loss = staticmethod(token_loss)

    def labels(self, example) -> list[int]:
        return list(example.labels)

    def sample(self, train: list, per_class: int, num_labels: int, rng: random.Random) -> list:
        return rng.sample(train, min(per_class * num_labels, len(train)))

    def encode(self, tokenizer, examples, max_length: int) -> list[dict]:
        return encode_tagging(tokenizer, examples, max_length)

    def empty(self, examples) -> list:
        return [[0] * len(ex.words) for ex in examples]  # a word with no piece is predicted 0

    def decode(self, out: list, items: list[dict], batch: dict, predicted: torch.Tensor, start: int) -> None:
        for row, example, word, position in first_pieces(items, batch["labels"]):
            out[example][word] = int(predicted[row, position])

    def metrics(self, examples, predictions, num_labels: int) -> dict:
        return tagging_metrics([ex.labels for ex in examples], predictions)


SEQUENCE_CLASSIFICATION = SequenceClassification()
TOKEN_LABELING = TokenLabeling()
#: The kinds of :class:`TaskData`, by name.
KINDS = {k.name: k for k in (SEQUENCE_CLASSIFICATION, TOKEN_LABELING)}


def kind_of(kind) -> TaskKind:
    """The :class:`TaskKind` of ``kind`` (one, or its name)."""
    if isinstance(kind, TaskKind):
        return kind
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}; expected {' or '.join(repr(k) for k in KINDS)}")
    return KINDS[kind]


def first_pieces(items: list[dict], labels: torch.Tensor) -> Iterator[tuple[int, int, int, int]]:
    """``(row, example, word, position)`` for the first piece of every word in a padded batch of
    :func:`encode_tagging` chunks (``labels``: the batch's labels, -100 but at first pieces): where a
    :class:`~mlm_lessons.heads.TokenClassifier` predicts, and where the token probe reads its states."""
    for row, item in enumerate(items):
        positions = (labels[row] != IGNORE_INDEX).nonzero().flatten().tolist()
        for word, position in zip(item["words"], positions):
            yield row, item["example"], word, position


# -- encoding ---------------------------------------------------------------------------------------


def encode_classification(tokenizer, examples, max_length: int) -> list[dict]:
    """``{"input_ids", "label"}`` per example; texts longer than ``max_length`` pieces are truncated."""
    enc = tokenizer.encode_batch([ex.text for ex in examples], max_length=max_length, padding=False, return_tensors=None)
    return [{"input_ids": ids, "label": ex.label} for ids, ex in zip(enc["input_ids"], examples)]


def encode_tagging(tokenizer, examples, max_length: int) -> list[dict]:
    """Each example cut into chunks of at most ``max_length`` pieces at word boundaries (so no
    word is lost), with its word's label at the first piece of every word and -100 elsewhere.

    ``example`` and ``words`` (the word index of each labelled piece) say where a chunk's words sit
    in its example, so that word predictions can be put back together (:func:`predict`). A word the
    normaliser erases entirely has no piece and is predicted ``0``.
    """
    require_int(max_length, "max_length", 3)
    budget = max_length - 2
    chunks = []
    for e, (ex, pieces) in enumerate(zip(examples, tokenizer.pieces_by_word([ex.words for ex in examples]))):
        current, labels, words = [], [], []
        for w, word in enumerate(pieces):
            if not word:  # normalisation left nothing of it (a lone control character): no prediction
                continue
            word = word[:budget]  # a word longer than a whole chunk keeps its first pieces
            if current and len(current) + len(word) > budget:
                chunks.append(_tagged_chunk(tokenizer, current, labels, e, words))
                current, labels, words = [], [], []
            current += word
            labels += [ex.labels[w]] + [IGNORE_INDEX] * (len(word) - 1)
            words.append(w)
        chunks.append(_tagged_chunk(tokenizer, current, labels, e, words))
    return chunks


def _tagged_chunk(tokenizer, ids, labels, example, words) -> dict:
    return {"input_ids": [tokenizer.cls_id, *ids, tokenizer.sep_id], "labels": [IGNORE_INDEX, *labels, IGNORE_INDEX],
            "example": example, "words": words}


# -- metrics ----------------------------------------------------------------------------------------


def f1_score(tp: int, fp: int, fn: int) -> float:
    """F1 from counts: 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall (0 when all are 0)."""
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def classification_metrics(y_true, y_pred, num_labels: int) -> dict:
    """Accuracy and macro-F1 (the unweighted mean of the per-class F1 over all ``num_labels``
    classes: a rare class counts as much as a frequent one)."""
    y_true, y_pred = [int(y) for y in y_true], [int(y) for y in y_pred]
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError(f"need as many predictions as labels, and at least one; got {len(y_pred)} and {len(y_true)}")
    f1s = []
    for c in range(num_labels):
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred))
        fn = sum(t == c and p != c for t, p in zip(y_true, y_pred))
        f1s.append(f1_score(tp, fp, fn))
    return {"accuracy": sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true), "macro_f1": sum(f1s) / num_labels}


def tagging_metrics(gold: list, pred: list) -> dict:
    """Word-level precision/recall/F1 of the ``code`` label (1), word accuracy, and span-level
    precision/recall/F1: a predicted span (a maximal run of code words) counts only if a gold span
    has exactly the same first and last word."""
    if len(gold) != len(pred) or not gold:
        raise ValueError(f"need one prediction per example, and at least one; got {len(pred)} and {len(gold)}")
    tp = fp = fn = correct = words = 0
    s_tp = s_pred = s_gold = 0
    for g, p in zip(gold, pred):
        g, p = list(g), list(p)
        if len(g) != len(p):
            raise ValueError(f"an example has {len(g)} gold labels but {len(p)} predictions")
        tp += sum(a == 1 and b == 1 for a, b in zip(g, p))
        fp += sum(a != 1 and b == 1 for a, b in zip(g, p))
        fn += sum(a == 1 and b != 1 for a, b in zip(g, p))
        correct += sum(a == b for a, b in zip(g, p))
        words += len(g)
        gs, ps = spans_of(g), spans_of(p)
        s_tp, s_pred, s_gold = s_tp + len(gs & ps), s_pred + len(ps), s_gold + len(gs)
    return {
        "word_accuracy": correct / max(words, 1),
        "token_precision": tp / (tp + fp) if tp + fp else 0.0, "token_recall": tp / (tp + fn) if tp + fn else 0.0,
        "token_f1": f1_score(tp, fp, fn),
        "span_precision": s_tp / s_pred if s_pred else 0.0, "span_recall": s_tp / s_gold if s_gold else 0.0,
        "span_f1": f1_score(s_tp, s_pred - s_tp, s_gold - s_tp),
    }
