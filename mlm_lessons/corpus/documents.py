"""What a corpus is: documents with provenance, split by a hash of their text, de-duplicated.

:class:`Document` and :class:`Corpus`, :func:`split_of` (the split a text belongs to) and
:func:`make_corpus` (de-duplicate, then split) are shared by every way of building a corpus: from
installed documentation, the reader's own text (:mod:`~mlm_lessons.corpus.build`) and the Hugging
Face Hub (:mod:`~mlm_lessons.corpus.hub`). All are importable from :mod:`mlm_lessons.corpus.build`
too, where they were first defined.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

from .manifest import ManifestReport

__all__ = ["SPLITS", "Document", "SplitStats", "CorpusStats", "Corpus", "split_of", "check_fractions", "dedup_key",
           "make_corpus"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Document:
    """A cleaned document and where it came from.

    ``module`` and ``name`` say which object's docstring it is (``torch.nn.modules.linear`` /
    ``Linear``); ``code_spans`` are the character ranges of ``text`` that the markup marked as code.
    """

    text: str
    source: str
    module: str
    name: str
    kind: str
    code_spans: tuple[tuple[int, int], ...] = ()

    @property
    def id(self) -> str:
        """A short content hash: equal texts have equal ids."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def words(self) -> int:
        return len(self.text.split())

    def code_words(self) -> list[str]:
        """The text of each code span, in order."""
        return [self.text[a:b] for a, b in self.code_spans]

    def to_json(self) -> dict:
        d = asdict(self)
        d["code_spans"] = [list(s) for s in self.code_spans]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Document":
        return cls(**{**d, "code_spans": tuple(tuple(s) for s in d.get("code_spans", ()))})


@dataclass(frozen=True)
class SplitStats:
    documents: int
    words: int
    characters: int


@dataclass(frozen=True)
class CorpusStats:
    """Sizes per split and a sha256 of the whole content (texts and provenance, in order)."""

    name: str
    train: SplitStats
    valid: SplitStats
    test: SplitStats
    sha256: str

    @property
    def documents(self) -> int:
        return self.train.documents + self.valid.documents + self.test.documents

    @property
    def words(self) -> int:
        return self.train.words + self.valid.words + self.test.words

    @property
    def characters(self) -> int:
        return self.train.characters + self.valid.characters + self.test.characters

    def as_row(self) -> dict:
        """A flat dict, convenient for a table."""
        return {
            "corpus": self.name, "documents": self.documents, "words": self.words,
            "characters": self.characters, "train docs": self.train.documents,
            "valid docs": self.valid.documents, "test docs": self.test.documents,
            "sha256": self.sha256[:16],
        }


@dataclass
class Corpus:
    """Documents split into ``train``, ``valid`` and ``test`` by a hash of their text."""

    name: str
    train: list[Document]
    valid: list[Document]
    test: list[Document]
    meta: dict = field(default_factory=dict)

    def split(self, name: str) -> list[Document]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def texts(self, split: str = "train") -> list[str]:
        return [d.text for d in self.split(split)]

    @property
    def documents(self) -> list[Document]:
        return self.train + self.valid + self.test

    def stats(self) -> CorpusStats:
        def one(docs):
            return SplitStats(len(docs), sum(d.words for d in docs), sum(len(d.text) for d in docs))

        return CorpusStats(self.name, one(self.train), one(self.valid), one(self.test), self.sha256())

    def sha256(self) -> str:
        h = hashlib.sha256()
        for split in SPLITS:
            h.update(f"\x00{split}\x00".encode())
            for d in self.split(split):
                h.update(json.dumps(d.to_json(), sort_keys=True, ensure_ascii=False).encode())
                h.update(b"\n")
        return h.hexdigest()

    def manifest_report(self) -> ManifestReport | None:
        """How this corpus compares with the book's documents (None unless built with the manifest)."""
        m = self.meta.get("manifest")
        if m is None:
            return None
        return ManifestReport(self.name, m["book_documents"], m["identical"], m["changed"], m["missing"],
                              m["new_left_out"], m["made_with"])

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"Corpus({self.name!r}: {s.documents:,} documents, {s.words:,} words; "
            f"train/valid/test = {s.train.documents:,}/{s.valid.documents:,}/{s.test.documents:,})"
        )


def split_of(text: str, valid_fraction: float = 0.05, test_fraction: float = 0.05) -> str:
    """The split a text belongs to, decided by the sha256 of its text alone.

    The same text always lands in the same split, whichever corpus or order it comes in, so a
    duplicate can never sit on both sides of the train/test line.
    """
    check_fractions(valid_fraction, test_fraction)
    u = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + valid_fraction:
        return "valid"
    return "train"


def check_fractions(valid_fraction: float, test_fraction: float) -> None:
    """Raise a ValueError unless the two held-out fractions leave room for training."""
    for label, v in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 <= v < 1:
            raise ValueError(f"{label} must be in [0, 1), got {v!r}")
    if valid_fraction + test_fraction >= 1:
        raise ValueError(
            f"valid_fraction + test_fraction must leave room for training, got "
            f"{valid_fraction!r} + {test_fraction!r} = {valid_fraction + test_fraction!r}"
        )


def dedup_key(text: str) -> str:
    """What two documents share when one repeats the other: the text, case and spacing aside."""
    return re.sub(r"\s+", " ", text).strip().lower()


def make_corpus(name: str, docs: list[Document], valid_fraction: float, test_fraction: float, meta: dict) -> Corpus:
    """De-duplicate (keeping the first by provenance), then split by content hash."""
    by_key: dict[str, Document] = {}
    for d in sorted(docs, key=lambda d: (d.source, d.module, d.name, d.kind, d.text)):
        by_key.setdefault(dedup_key(d.text), d)
    unique = sorted(by_key.values(), key=lambda d: (d.source, d.module, d.name, d.kind, d.id))
    splits: dict[str, list[Document]] = {s: [] for s in SPLITS}
    for d in unique:
        splits[split_of(d.text, valid_fraction, test_fraction)].append(d)
    meta = {**meta, "duplicates_removed": len(docs) - len(unique),
            "valid_fraction": valid_fraction, "test_fraction": test_fraction}
    return Corpus(name, splits["train"], splits["valid"], splits["test"], meta)
