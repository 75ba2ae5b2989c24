"""Corpora as the book uses them: cleaned documents with provenance, split without leakage, cached.

``load_corpus("python-docs")`` (general English about programming), ``load_corpus("pytorch-docs")``
(the domain) and ``load_corpus("numpy-docs")`` (a neighbouring domain) are built from
documentation installed with the requirements, so nothing is downloaded. ``load_corpus(paths=...)``
and ``load_corpus(texts=...)`` take the reader's own text.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .cleaning import clean_docstring, clean_plain_text, clean_reference_text
# The data model lives in .documents (shared with .hub, which builds corpora from the Hub); its names
# are imported here too, so that ``corpus.build.Document``, ``corpus.build.make_corpus`` ... still work.
from .documents import (  # noqa: F401 - re-exported
    SPLITS,
    Corpus,
    CorpusStats,
    Document,
    SplitStats,
    check_fractions,
    dedup_key,
    make_corpus,
    split_of,
)
from .hub import HUB_CORPUS_NAMES, load_hub_corpus
from .manifest import ManifestReport, apply_manifest, load_manifest  # noqa: F401 - ManifestReport re-exported

__all__ = [
    "Document", "Corpus", "CorpusStats", "SplitStats", "CORPUS_NAMES", "load_corpus",
    "split_of", "cache_dir", "build_documents",
]

#: The corpora that can be built from installed documentation.
CORPUS_NAMES = ("python-docs", "pytorch-docs", "numpy-docs")
_FORMAT_VERSION = 1


def build_documents(name: str, min_words: int = 5) -> tuple[list[Document], dict]:
    """Harvest and clean the documents of a named corpus in *this* process (see :func:`load_corpus`)."""
    # Imported here: only the build process (``_worker``, a fresh interpreter) harvests.
    from .harvest import harvest_package, harvest_stdlib

    raws, meta = harvest_stdlib() if name == "python-docs" else harvest_package(name)
    docs, short = [], 0
    for r in raws:
        if r.kind == "topic":
            text, spans = clean_reference_text(r.raw), []
        else:
            text, spans = clean_docstring(r.raw)
        if len(text.split()) < min_words:
            short += 1
            continue
        docs.append(Document(text, r.source, r.module, r.name, r.kind, tuple(spans)))
    return docs, {**meta, "raw_docstrings": len(raws), "too_short_removed": short, "min_words": min_words}


def cache_dir() -> Path:
    """Where built corpora are kept: ``$MLM_LESSONS_CACHE``, else ``$XDG_CACHE_HOME/mlm_lessons``,
    else ``~/.cache/mlm_lessons``. Nothing here is tracked in git."""
    env = os.environ.get("MLM_LESSONS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlm_lessons"


def _versions(name: str) -> dict:
    v = {"python": platform.python_version(), "platform": sys.platform, "format": _FORMAT_VERSION}
    pkg = {"pytorch-docs": "torch", "numpy-docs": "numpy"}.get(name)
    if pkg:
        try:
            v[pkg] = version(pkg)
        except PackageNotFoundError as exc:
            raise ValueError(f"corpus {name!r} needs the package {pkg!r}; install it with `pip install {pkg}`") from exc
    # Editing the cleaning or harvesting code must invalidate the cache too.
    code = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        code.update(f.read_bytes())
    v["code"] = code.hexdigest()[:12]
    return v


def _cache_path(name: str, min_words: int) -> tuple[Path, dict]:
    versions = _versions(name)
    key = hashlib.sha256(json.dumps({**versions, "min_words": min_words}, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "corpora" / f"{name}-{key}.json.gz", versions


def _worker_env() -> dict:
    """The environment of the build process: this package importable even if not installed."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""), "PYTHONWARNINGS": "ignore"}


def _build_in_subprocess(name: str, min_words: int, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{name}-", suffix=".tmp")
    os.close(fd)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlm_lessons.corpus._worker", name, str(min_words), tmp],
            capture_output=True, text=True, env=_worker_env(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"building corpus {name!r} failed:\n{proc.stderr[-3000:]}")
        os.replace(tmp, out)  # atomic: a reader never sees half a file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_documents(docs: list[Document], meta: dict, path: str) -> None:
    payload = {"meta": meta, "documents": [d.to_json() for d in docs]}
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False, sort_keys=True)


def _read_documents(path: Path) -> tuple[list[Document], dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        payload = json.load(f)
    return [Document.from_json(d) for d in payload["documents"]], payload["meta"]


def _read_text_file(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data:
        raise ValueError(f"{str(path)!r} is not a text file (it contains NUL bytes); pass UTF-8 .txt files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{str(path)!r} is not UTF-8 text (invalid byte {data[exc.start]:#04x} at offset {exc.start}); "
            f"re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def _expand_paths(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise ValueError(f"path {str(p)!r} does not exist; pass existing .txt files or folders of them")
        if path.is_dir():
            found = sorted(path.rglob("*.txt"))
            if not found:
                raise ValueError(f"folder {str(p)!r} holds no .txt files")
            files.extend(found)
        else:
            files.append(path)
    return files


def load_corpus(
    name: str | None = None,
    *,
    paths=None,
    texts=None,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    min_words: int = 5,
    rebuild: bool = False,
    documents: str = "book",
) -> Corpus:
    """Load a corpus by name, or build one from your own files or strings.

    - ``load_corpus("python-docs" | "pytorch-docs" | "numpy-docs")``: harvested from installed
      documentation in a fresh interpreter, cleaned, de-duplicated and cached under
      :func:`cache_dir`, keyed by the Python, package and code versions (a new version rebuilds).
      Docstrings shorter than ``min_words`` words after cleaning are dropped.
    - ``load_corpus(paths=["notes.txt", "folder/"])``: UTF-8 text files (folders are searched for
      ``*.txt``); each paragraph (blank-line separated) is a document.
    - ``load_corpus(texts=[...], name="mine")``: each string is a document.
    - ``load_corpus("wikitext-103" | "arxiv-abstracts")``: streamed from the Hugging Face Hub with
      the optional ``datasets`` library (:func:`~mlm_lessons.corpus.hub.load_hub_corpus`: the first
      100,000 training documents; a clear error with no library or no network).

    Of a corpus built from installed documentation, ``documents="book"`` (the default) keeps the
    documents the book was built with wherever they are still installed (the package's manifest,
    :mod:`~mlm_lessons.corpus.manifest`: identical or changed ones kept, new ones left out; how many
    of each is in ``corpus.meta["manifest"]`` and :meth:`Corpus.manifest_report`);
    ``documents="installed"`` keeps every installed document.

    Splits are decided by :func:`split_of` on each document's text.
    """
    check_fractions(valid_fraction, test_fraction)
    if documents not in ("book", "installed"):
        raise ValueError(f"documents={documents!r} must be 'book' (the book's documents, where still installed) or "
                         f"'installed' (every installed document)")
    if not isinstance(min_words, int) or min_words < 1:
        raise ValueError(f"min_words must be a positive int, got {min_words!r}")
    given = [x for x in (paths, texts) if x is not None]
    if len(given) > 1:
        raise ValueError("pass either paths= or texts=, not both")
    if texts is not None:
        return _corpus_of_texts(name, texts, valid_fraction, test_fraction)
    if paths is not None:
        return _corpus_of_files(name, paths, valid_fraction, test_fraction)
    if name in HUB_CORPUS_NAMES:  # optional: needs the datasets library and a network (see corpus.hub)
        return load_hub_corpus(name, min_words=min_words, valid_fraction=valid_fraction, test_fraction=test_fraction)
    if name not in CORPUS_NAMES:
        raise ValueError(
            f"unknown corpus {name!r}; choose one of {', '.join(CORPUS_NAMES)} (built here), "
            f"{', '.join(HUB_CORPUS_NAMES)} (from the Hugging Face Hub, with the datasets library), "
            f"or pass paths=[...] or texts=[...] for your own text"
        )
    return _installed_corpus(name, min_words, rebuild, documents, valid_fraction, test_fraction)


def _corpus_of_texts(name: str | None, texts, valid_fraction: float, test_fraction: float) -> Corpus:
    """``load_corpus(texts=...)``: each string is a document."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, got a single str; wrap it: texts=[text]")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty; pass at least one non-empty string")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts[{bad[0]}] is a {type(texts[bad[0]]).__name__}, not a str")
    docs = [Document(clean_plain_text(t), "texts", name or "texts", f"text {i}", "text") for i, t in enumerate(texts)]
    docs = [d for d in docs if d.text]
    if not docs:
        raise ValueError(f"all {len(texts)} texts are empty or whitespace")
    return make_corpus(name or "texts", docs, valid_fraction, test_fraction, {})


def _corpus_of_files(name: str | None, paths, valid_fraction: float, test_fraction: float) -> Corpus:
    """``load_corpus(paths=...)``: each paragraph (blank-line separated) of each file is a document."""
    files = _expand_paths(paths)
    if not files:
        raise ValueError("paths is empty; pass at least one .txt file or folder")
    docs = []
    for f in files:
        for i, para in enumerate(clean_plain_text(_read_text_file(f)).split("\n\n")):
            if para.strip():
                docs.append(Document(para, "files", str(f), f"paragraph {i}", "paragraph"))
    if not docs:
        raise ValueError(f"the {len(files)} file(s) given hold no text")
    return make_corpus(name or "files", docs, valid_fraction, test_fraction, {"files": len(files)})


def _installed_corpus(name: str, min_words: int, rebuild: bool, documents: str, valid_fraction: float,
                      test_fraction: float) -> Corpus:
    """A corpus built from installed documentation: from the cache, or built in a subprocess and
    cached; then the book's manifest applied (``documents="book"``)."""
    path, versions = _cache_path(name, min_words)
    built = False
    if rebuild or not path.exists():
        start = time.perf_counter()
        _build_in_subprocess(name, min_words, path)
        built = time.perf_counter() - start
    docs, meta = _read_documents(path)
    meta = {**meta, "versions": versions, "cache_hit": not built}
    if built:
        meta["build_seconds"] = round(built, 2)
    manifest = load_manifest(name) if documents == "book" else None
    if manifest is None:
        return make_corpus(name, docs, valid_fraction, test_fraction, meta)
    if min_words != manifest.min_words:
        raise ValueError(f"the book's {name!r} documents were chosen with min_words={manifest.min_words}, not "
                         f"{min_words}; pass documents='installed' to build {name!r} from every installed document")
    ordered = sorted(docs, key=lambda d: (d.source, d.module, d.name, d.kind, d.text))
    everything = make_corpus(name, docs, valid_fraction, test_fraction, {})
    kept, report = apply_manifest(ordered, manifest, installed=everything.documents)
    duplicates = everything.meta["duplicates_removed"]  # among everything installed
    meta["manifest"] = {**report.to_json(), "book_sha256": manifest.sha256, "made_with": manifest.made_with}
    corpus = make_corpus(name, kept, valid_fraction, test_fraction, meta)
    corpus.meta["duplicates_removed"] = duplicates
    return corpus
