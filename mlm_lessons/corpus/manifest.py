"""The book's documents, named without their text: so a reader's corpus is the book's where it can be.

The corpora are harvested from the documentation installed with Python, PyTorch and NumPy, so
another version installs another text: a docstring is reworded, a function is added or removed.
A manifest lists the documents of a corpus as the book built it – each one's provenance (source,
module, name, kind) and a hash of its text, never the text – and :func:`apply_manifest` keeps, of the
installed documents, those the book has:

- **identical**: the same provenance and the same text as the book's – kept;
- **changed**: the same provenance, another text (the docstring was edited) – kept, as installed;
- **missing**: in the book, not installed any more – nothing to keep;
- **new**: installed, not in the book – left out, so the corpus does not grow with each release.

Where every document is identical, the corpus is the book's, byte for byte (the same sha256).
``load_corpus(name)`` applies the manifest shipped with the package; ``load_corpus(name,
documents="installed")`` takes everything installed instead. ``python -m mlm_lessons.corpus.manifest``
writes the manifests from the corpora built on this machine (the book's set-up).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Manifest", "ManifestReport", "MANIFEST_DIR", "load_manifest", "manifest_of", "apply_manifest", "write_manifest"]

#: Where the package keeps one manifest per corpus built from installed documentation.
MANIFEST_DIR = Path(__file__).parent / "manifests"


def _key(doc) -> tuple[str, str, str, str]:
    return (doc.source, doc.module, doc.name, doc.kind)


@dataclass(frozen=True)
class Manifest:
    """The book's documents of one corpus: provenance → text hash, and what the book built it with."""

    corpus: str
    documents: dict  # (source, module, name, kind) -> Document.id
    sha256: str  # the book's corpus, as Corpus.sha256()
    min_words: int
    made_with: dict  # versions of Python and of the documented package

    def to_json(self) -> dict:
        return {"corpus": self.corpus, "sha256": self.sha256, "min_words": self.min_words, "made_with": self.made_with,
                "documents": [[*key, doc_id] for key, doc_id in sorted(self.documents.items())]}

    @classmethod
    def from_json(cls, d: dict) -> "Manifest":
        return cls(d["corpus"], {tuple(row[:4]): row[4] for row in d["documents"]}, d["sha256"], d["min_words"],
                   d["made_with"])


@dataclass(frozen=True)
class ManifestReport:
    """How the installed documentation compares with the book's documents."""

    corpus: str
    book_documents: int
    identical: int
    changed: int
    missing: int
    new_left_out: int
    made_with: dict

    @property
    def same_as_book(self) -> bool:
        return self.identical == self.book_documents and self.new_left_out == 0

    def counts(self) -> str:
        """How many of the book's documents are here as they were, changed or missing, and how many are new."""
        if self.same_as_book:
            return f"all {self.book_documents:,} of the book's documents, unchanged"
        return (f"{self.identical:,} of the book's {self.book_documents:,} documents are identical here, "
                f"{self.changed:,} changed, {self.missing:,} missing; {self.new_left_out:,} documents the book does not "
                f"have are left out")

    def sentence(self) -> str:
        """One line for a reader: how much of the book's text this corpus is."""
        if self.same_as_book:
            return f"{self.corpus}: {self.counts()}."
        made = ", ".join(f"{k} {v}" for k, v in self.made_with.items())
        return f"{self.corpus}: {self.counts()} (the book's were built with {made})."

    def to_json(self) -> dict:
        return {"book_documents": self.book_documents, "identical": self.identical, "changed": self.changed,
                "missing": self.missing, "new_left_out": self.new_left_out}


def manifest_path(name: str) -> Path:
    return MANIFEST_DIR / f"{name}.json.gz"


def load_manifest(name: str) -> Manifest | None:
    """The manifest shipped for corpus ``name``, or None when the package has none."""
    path = manifest_path(name)
    if not path.is_file():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return Manifest.from_json(json.load(f))


def manifest_of(corpus, made_with: dict, min_words: int = 5) -> Manifest:
    """The manifest of a built corpus: every document's provenance and text hash."""
    docs = {}
    for d in corpus.documents:
        if _key(d) in docs:
            raise ValueError(f"two documents of {corpus.name!r} share the provenance {_key(d)}; a manifest needs each "
                             f"document named once")
        docs[_key(d)] = d.id
    return Manifest(corpus.name, docs, corpus.sha256(), min_words, dict(made_with))


def apply_manifest(docs: list, manifest: Manifest, installed: list | None = None) -> tuple[list, ManifestReport]:
    """Keep the installed documents the book has (identical or changed); leave out the new ones.

    ``installed`` is the corpus every installed document would make (de-duplicated), to count the new
    documents the manifest leaves out; by default ``docs``."""
    kept, identical, changed, seen = [], 0, 0, set()
    for d in docs:
        key = _key(d)
        book_id = manifest.documents.get(key)
        if book_id is None or key in seen:
            continue
        seen.add(key)
        kept.append(d)
        if d.id == book_id:
            identical += 1
        else:
            changed += 1
    new = len({_key(d) for d in (docs if installed is None else installed)} - set(manifest.documents))
    report = ManifestReport(manifest.corpus, len(manifest.documents), identical, changed,
                            len(manifest.documents) - identical - changed, new, manifest.made_with)
    return kept, report


def write_manifest(name: str, directory: Path = MANIFEST_DIR) -> Path:
    """Write the manifest of corpus ``name`` as built here (every installed document) to ``directory``."""
    from .build import load_corpus  # here: build imports this module (load_corpus applies the manifests)

    corpus = load_corpus(name, documents="installed")
    made_with = {k: v for k, v in corpus.meta["versions"].items() if k not in ("code", "format", "platform")}
    manifest = manifest_of(corpus, made_with)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json.gz"
    payload = json.dumps(manifest.to_json(), ensure_ascii=False, sort_keys=True)
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: the same corpus writes the same bytes
        f.write(payload.encode())
    return path

