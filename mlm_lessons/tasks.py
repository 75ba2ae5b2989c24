"""Fine-tuning tasks labelled from provenance, not by hand.

- ``torch-subpackage`` (sequence classification): which ``torch`` sub-package a docstring paragraph
  comes from – ``nn``, ``optim``, ``distributed``, ... – read off the module the docstring belongs
  to.
- ``code-spans`` (token labeling): which words of a docstring paragraph are code – what the reST
  markup marked with double backquotes or roles such as ``:attr:``, ``:func:`` and ``:class:``
  before the cleaning stripped it (the corpus keeps those character spans as ``code_spans``).

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

from tokenizers import pre_tokenizers

from .corpus import Corpus, Document, load_corpus

__all__ = [
    "TASKS", "SUBPACKAGES", "ClassificationExample", "TaggingExample", "TaskData", "paragraphs",
    "subpackage_task", "code_span_task", "load_task", "words_with_offsets", "spans_of",
]

#: The task names the command line and :func:`load_task` accept.
TASKS = ("torch-subpackage", "code-spans")
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
    """A task's examples by split, and the names of its labels (index = label id)."""

    name: str
    kind: str  # "classification" or "tagging"
    label_names: tuple[str, ...]
    train: list = field(default_factory=list)
    valid: list = field(default_factory=list)
    test: list = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> list:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}; choose train, valid or test")
        return getattr(self, name)

    def label_counts(self, split: str) -> dict[str, int]:
        """Examples per class (classification) or words per label (tagging)."""
        counts: Counter = Counter()
        for ex in self.split(split):
            counts.update([ex.label] if self.kind == "classification" else ex.labels)
        return {name: counts[i] for i, name in enumerate(self.label_names)}

    def subsample(self, per_class: int | None, seed: int = 0) -> "TaskData":
        """The same task with at most ``per_class`` training examples per class (classification),
        or ``per_class × num_labels`` training examples (tagging), drawn with ``seed``; valid and
        test unchanged. ``None`` keeps every label."""
        if per_class is None:
            return self
        if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
            raise ValueError(f"per_class must be a positive int or None (all labels), got {per_class!r}")
        rng = random.Random(seed)
        if self.kind == "classification":
            chosen = []
            for label in range(self.num_labels):
                pool = [ex for ex in self.train if ex.label == label]
                chosen += rng.sample(pool, min(per_class, len(pool)))
        else:
            chosen = rng.sample(self.train, min(per_class * self.num_labels, len(self.train)))
        chosen.sort(key=self.train.index)
        return TaskData(self.name, self.kind, self.label_names, chosen, self.valid, self.test)

    def stats(self) -> list[dict]:
        return [{"split": s, "examples": len(self.split(s)), **self.label_counts(s)} for s in ("train", "valid", "test")]


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
    for split in ("train", "valid", "test"):
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
    empty = [(s, c) for s in ("train", "valid", "test") for c, n in task.label_counts(s).items() if n == 0]
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
