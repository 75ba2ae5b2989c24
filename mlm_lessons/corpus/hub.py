"""Corpora from the Hugging Face Hub, for readers with a network (Colab): optional and guarded.

The book's own corpora are built from documentation installed with its requirements, so it runs
with no network. A reader who wants more text, or the text the papers used, can load these through
the ``datasets`` library (``pip install datasets``):

- ``"wikitext-103"``: WikiText-103 (Merity et al. 2016; ``Salesforce/wikitext``,
  ``wikitext-103-raw-v1``), English Wikipedia's good and featured articles, CC BY-SA 3.0 (and GFDL).
  One paragraph per document; headings dropped; the dataset's own train / validation / test split
  (by article) is kept.
- ``"arxiv-abstracts"``: arXiv abstracts to 2021 (``gfissore/arxiv-abstracts-2021``; arXiv's
  metadata, CC0 1.0), a scientific domain for chapter 7's DAPT. One abstract per document, split by
  a hash of its text as the book's corpora are.

Both are streamed: only the first ``max_documents`` training documents are read (the full sets are
hundreds of megabytes). With no ``datasets`` the loader raises an ``ImportError`` that says what to
install; when the Hub cannot be reached it raises :class:`HubUnavailable` (a ``RuntimeError``) that says how to read the same
files from disk (``data_files=``, parquet files of the same columns). It never falls back to
another corpus.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .._checks import require_int
from .cleaning import clean_plain_text
from .documents import SPLITS, Corpus, Document, check_fractions, dedup_key, make_corpus

__all__ = ["HubUnavailable", "HubSource", "HUB_CORPORA", "HUB_CORPUS_NAMES", "load_hub_corpus"]


class HubUnavailable(RuntimeError):
    """The Hub (or the local files given instead) could not be read: no network, no such dataset."""


@dataclass(frozen=True)
class HubSource:
    """Where a Hub corpus lives, which column holds the text, and how it is split."""

    dataset: str
    config: str | None
    text_field: str
    licence: str
    url: str
    description: str
    splits: tuple[tuple[str, str], ...] | None  # (our split, the dataset's split); None: one split, re-split by hash
    unit: str  # what one document is
    row_text: Callable[[str], str | None] | None = None  # a row's text as a document, None to skip it (default: as it is)


# WikiText's raw text keeps its tokenizer's marks around in-word hyphens and number separators
_WIKITEXT_MARKS = re.compile(r" @([-,.])@ ")
_HEADING = re.compile(r"^=+ .* =+$")


def _wikitext_paragraph(line: str) -> str | None:
    line = line.strip()
    if not line or _HEADING.match(line):
        return None
    return _WIKITEXT_MARKS.sub(r"\1", line)


HUB_CORPORA: dict[str, HubSource] = {
    "wikitext-103": HubSource(
        "Salesforce/wikitext", "wikitext-103-raw-v1", "text", "CC BY-SA 3.0 (and GFDL)",
        "https://huggingface.co/datasets/Salesforce/wikitext",
        "English Wikipedia's good and featured articles (Merity et al. 2016)",
        (("train", "train"), ("valid", "validation"), ("test", "test")), "paragraph", _wikitext_paragraph),
    "arxiv-abstracts": HubSource(
        "gfissore/arxiv-abstracts-2021", None, "abstract", "CC0 1.0",
        "https://huggingface.co/datasets/gfissore/arxiv-abstracts-2021",
        "arXiv abstracts up to 2021, from arXiv's metadata", None, "abstract"),
}
HUB_CORPUS_NAMES = tuple(HUB_CORPORA)


def _stream(source: HubSource, data_files):
    """The dataset's splits as iterables of rows, from the Hub or from local files in its format."""
    try:
        import datasets  # optional (pip install datasets): imported only when a Hub corpus is asked for
    except ImportError as exc:
        raise ImportError(f"the Hub corpora are read with the `datasets` library, which is not installed: pip install datasets "
                          f"(or build a corpus from your own files: load_corpus(paths=[...]))") from exc
    try:
        if data_files is not None:
            return datasets.load_dataset("parquet", data_files=data_files, streaming=True)
        return datasets.load_dataset(source.dataset, source.config, streaming=True)
    except Exception as exc:  # no network, no such dataset, a refused download: say so, and how to read local files
        where = "the local files" if data_files is not None else f"{source.dataset} from the Hugging Face Hub ({source.url})"
        raise HubUnavailable(f"could not read {where}: {type(exc).__name__}: {exc}. With no network, download the dataset's "
                           f"parquet files elsewhere and pass data_files={{split: path}} (the dataset's split names)") from exc


def load_hub_corpus(name: str, *, data_files: dict | None = None, max_documents: int = 100_000, min_words: int = 5,
                    valid_fraction: float = 0.05, test_fraction: float = 0.05) -> Corpus:
    """A Hub corpus (:data:`HUB_CORPORA`) as a :class:`Corpus` like the book's own.

    ``max_documents`` bounds the training documents read (WikiText's validation and test splits
    are read whole; a re-split corpus reads ``max_documents`` in all). ``data_files`` reads parquet
    files with the dataset's columns and split names instead of the Hub (offline, and in tests).
    ``meta`` records the source, licence and counts.
    """
    if name not in HUB_CORPORA:
        raise ValueError(f"unknown Hub corpus {name!r}; choose one of {', '.join(HUB_CORPUS_NAMES)}")
    require_int(max_documents, "max_documents", why=" (training documents to read)")
    if not isinstance(min_words, int) or min_words < 1:
        raise ValueError(f"min_words must be a positive int, got {min_words!r}")
    check_fractions(valid_fraction, test_fraction)
    source = HUB_CORPORA[name]
    streams = _stream(source, data_files)
    meta = {"source": source.dataset, "config": source.config, "licence": source.licence, "url": source.url,
            "unit": source.unit, "max_documents": max_documents, "min_words": min_words}

    def documents(split_name: str, limit: int | None) -> list[Document]:
        if split_name not in streams:
            raise ValueError(f"{name}: the data has no split {split_name!r} (it has {', '.join(streams)}); "
                             f"with data_files, name the files by the dataset's splits")
        docs, short = [], 0
        for i, row in enumerate(streams[split_name]):
            if source.text_field not in row:
                raise ValueError(f"{name}: rows need a {source.text_field!r} column, got {sorted(row)}")
            raw = row[source.text_field] or ""
            text = source.row_text(raw) if source.row_text else raw
            if text is None:
                continue
            text = clean_plain_text(text)
            if len(text.split()) < min_words:
                short += 1
                continue
            docs.append(Document(text, "hub", source.dataset, f"{split_name} row {i}", source.unit))
            if limit is not None and len(docs) >= limit:
                break
        meta[f"too_short_removed_{split_name}"] = short
        return docs

    if source.splits is None:  # one split: read, de-duplicate and split by content hash
        corpus = make_corpus(name, documents("train", max_documents), valid_fraction, test_fraction, meta)
        return corpus
    splits = {ours: documents(theirs, max_documents if ours == "train" else None) for ours, theirs in source.splits}
    seen, dropped = set(), 0
    for split in SPLITS:  # the dataset's own split is kept; repeats (within it, or of train text) dropped
        kept = []
        for d in splits[split]:
            key = dedup_key(d.text)
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            kept.append(d)
        splits[split] = kept
    return Corpus(name, splits["train"], splits["valid"], splits["test"], {**meta, "duplicates_removed": dropped})
