"""Corpora: determinism across processes, splits without leakage, provenance, cache, bad input."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import mlm_lessons as mlm
from mlm_lessons.corpus import build as corpus_build
from mlm_lessons.corpus import split_of

SPLITS = ("train", "valid", "test")


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def _fresh_sha(name: str, seed: int, cache: Path) -> str:
    """Build ``name`` in a new interpreter with its own hash seed and an empty cache."""
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "MLM_LESSONS_CACHE": str(cache)}
    program = f"import mlm_lessons as m; c = m.load_corpus({name!r}); assert not c.meta['cache_hit']; print(c.sha256())"
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("name", mlm.CORPUS_NAMES)
def test_two_builds_in_two_processes_hash_the_same(name, tmp_path, corpora):
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda seed: _fresh_sha(name, seed, tmp_path / f"cache{seed}"), (1, 2))
    assert a == b == corpora[name].sha256()
    # the cache writes atomically: nothing half-written is left behind
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("name", mlm.CORPUS_NAMES)
def test_corpora_are_real_and_sized(corpora, name):
    stats = corpora[name].stats()
    assert stats.documents > 1000 and stats.words > 150_000
    assert stats.documents == sum(len(corpora[name].split(s)) for s in SPLITS)
    assert stats.words == sum(d.words for d in corpora[name].documents)
    assert stats.characters == sum(len(d.text) for d in corpora[name].documents)
    assert re.fullmatch(r"[0-9a-f]{64}", stats.sha256)
    # roughly 90/5/5: a hash behaves like a uniform number
    assert 0.85 < len(corpora[name].train) / stats.documents < 0.95


@pytest.mark.parametrize("name", mlm.CORPUS_NAMES)
def test_no_document_in_two_splits_and_no_duplicates(corpora, name):
    c = corpora[name]
    per_split = [{_normal(d.text) for d in c.split(s)} for s in SPLITS]
    assert not (per_split[0] & per_split[1]) and not (per_split[0] & per_split[2]) and not (per_split[1] & per_split[2])
    assert len({_normal(d.text) for d in c.documents}) == len(c.documents)
    for s in SPLITS:
        assert all(split_of(d.text) == s for d in c.split(s))


@pytest.mark.parametrize("name", mlm.CORPUS_NAMES)
def test_cleaning_removed_the_markup(corpora, name):
    patterns = {
        "role": re.compile(r":(func|class|meth|attr|mod|math|ref|obj|data|exc):`"),
        "directive": re.compile(r"^\s*\.\. [\w:-]+::", re.M),
        "doctest": re.compile(r"^\s*>>>", re.M),
        "address": re.compile(r" at 0x[0-9a-fA-F]{6,}"),
        "section rule": re.compile(r"^\s*-{4,}\s*$", re.M),
    }
    for label, pattern in patterns.items():
        hits = [d for d in corpora[name].documents if pattern.search(d.text)]
        assert not hits, f"{label} left in {hits[0].module}.{hits[0].name}: {hits[0].text[:200]!r}"
    # double backquotes survive only where an author left them unbalanced
    stray = sum("``" in d.text for d in corpora[name].documents)
    assert stray <= 0.005 * len(corpora[name].documents)


def test_provenance(corpora):
    torch_docs = corpora["pytorch-docs"].documents
    assert all(d.source == "pytorch-docs" and d.module.split(".")[0] == "torch" for d in torch_docs)
    assert {d.kind for d in torch_docs} <= {"module", "class", "function", "method", "property"}
    linear = [d for d in torch_docs if d.module == "torch.nn.modules.linear" and d.name == "Linear"]
    assert len(linear) == 1 and "affine linear transformation" in linear[0].text
    # the classification chapter needs several sub-packages with enough documents
    sub = {}
    for d in torch_docs:
        key = ".".join(d.module.split(".")[:2])
        sub[key] = sub.get(key, 0) + 1
    assert sum(n >= 100 for n in sub.values()) >= 5
    python_docs = corpora["python-docs"].documents
    assert any(d.kind == "topic" and d.module == "pydoc_data.topics" for d in python_docs)
    assert all(d.module.split(".")[0] in sys.stdlib_module_names or d.module == "pydoc_data.topics" for d in python_docs)


def test_code_spans_are_inside_the_text(corpora):
    for c in corpora.values():
        for d in c.documents:
            assert all(0 <= a < b <= len(d.text) for a, b in d.code_spans)
    add = [d for d in corpora["pytorch-docs"].documents if d.module == "torch" and d.name == "add"]
    assert add and {"other", "alpha", "input"} <= set(add[0].code_words())


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLM_LESSONS_CACHE", str(tmp_path))
    first = mlm.load_corpus("numpy-docs")
    second = mlm.load_corpus("numpy-docs")
    assert not first.meta["cache_hit"] and second.meta["cache_hit"]
    assert first.sha256() == second.sha256()
    assert [p.parent.name for p in tmp_path.rglob("*.json.gz")] == ["corpora"]


def test_new_package_versions_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("MLM_LESSONS_CACHE", str(tmp_path))
    real_versions = corpus_build._versions
    path_now, _ = corpus_build._cache_path("numpy-docs", 5)
    monkeypatch.setattr(corpus_build, "_versions", lambda name: {**real_versions(name), "numpy": "0.0.test"})
    path_upgraded, _ = corpus_build._cache_path("numpy-docs", 5)
    assert path_now != path_upgraded
    built = []
    monkeypatch.setattr(corpus_build, "_build_in_subprocess", lambda *args: built.append(args) or _fake_build(*args))
    c = mlm.load_corpus("numpy-docs")
    assert len(built) == 1 and not c.meta["cache_hit"] and c.meta["versions"]["numpy"] == "0.0.test"


def _fake_build(name, min_words, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = mlm.Document("a tiny stand-in document for the cache test", name, "m", "n", "text")
    corpus_build.write_documents([doc], {}, str(out))


def test_split_of_is_fixed_by_the_text():
    # pinned values: a change of the hashing scheme would silently move documents between splits
    not_train = {i: split_of(f"document number {i}") for i in range(40) if split_of(f"document number {i}") != "train"}
    assert not_train == {2: "test", 22: "valid"}
    digest = __import__("hashlib").sha256(b"document number 2").digest()
    assert int.from_bytes(digest[:8], "big") / 2**64 < 0.05
    counts = {s: sum(split_of(f"text {i}") == s for i in range(20_000)) for s in SPLITS}
    assert abs(counts["valid"] / 20_000 - 0.05) < 0.01 and abs(counts["test"] / 20_000 - 0.05) < 0.01
    assert split_of("abc", valid_fraction=0.0, test_fraction=0.0) == "train"


def test_own_texts_are_deduplicated_and_split():
    texts = [f"Sentence number {i} about tensors." for i in range(200)] + ["Sentence number 3 about  TENSORS."]
    c = mlm.load_corpus(texts=texts, name="mine")
    assert c.name == "mine" and len(c.documents) == 200
    assert all(d.source == "texts" for d in c.documents)


def test_own_files_become_paragraph_documents(tmp_path):
    (tmp_path / "a.txt").write_text("First paragraph\nwrapped here.\n\nSecond one.\n", encoding="utf-8")
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "b.txt").write_text("Third paragraph, in a folder.", encoding="utf-8")
    (sub / "ignored.md").write_text("not a txt file", encoding="utf-8")
    c = mlm.load_corpus(paths=[tmp_path])
    texts = sorted(d.text for d in c.documents)
    assert texts == ["First paragraph wrapped here.", "Second one.", "Third paragraph, in a folder."]
    assert {Path(d.module).name for d in c.documents} == {"a.txt", "b.txt"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "wikipedia"}, r"unknown corpus 'wikipedia'; choose one of python-docs, pytorch-docs, numpy-docs"),
        ({"name": None}, r"unknown corpus None"),
        ({"texts": []}, r"texts is empty"),
        ({"texts": "one string"}, r"got a single str"),
        ({"texts": ["ok", 3]}, r"texts\[1\] is a int"),
        ({"texts": ["  ", "\n"]}, r"all 2 texts are empty"),
        ({"paths": ["/no/such/file.txt"]}, r"path '/no/such/file.txt' does not exist"),
        ({"paths": []}, r"paths is empty"),
        ({"name": "python-docs", "valid_fraction": 0.6, "test_fraction": 0.5}, r"must leave room for training"),
        ({"name": "python-docs", "test_fraction": -0.1}, r"test_fraction must be in \[0, 1\), got -0.1"),
        ({"name": "python-docs", "min_words": 0}, r"min_words must be a positive int, got 0"),
        ({"texts": ["a"], "paths": ["b"]}, r"either paths= or texts="),
        ({"name": "numpy-docs", "documents": "all"}, r"documents='all' must be 'book' .* or 'installed'"),
        ({"name": "numpy-docs", "min_words": 4}, r"chosen with min_words=5, not 4; pass documents='installed'"),
    ],
)
def test_bad_input_is_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mlm.load_corpus(**kwargs)


def test_files_that_are_not_utf8_text(tmp_path):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café crème".encode("latin-1"))
    with pytest.raises(ValueError, match=r"is not UTF-8 text \(invalid byte 0xe9 at offset 3\)"):
        mlm.load_corpus(paths=[latin])
    binary = tmp_path / "weights.txt"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(ValueError, match="NUL bytes"):
        mlm.load_corpus(paths=[binary])
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(ValueError, match="holds no .txt files"):
        mlm.load_corpus(paths=[empty_dir])


def test_unknown_split_name(corpora):
    with pytest.raises(ValueError, match="unknown split 'dev'; choose one of train, valid, test"):
        corpora["numpy-docs"].texts("dev")


def test_word_statistics():
    counts = mlm.word_frequencies(["The cat saw the other cat's max_pool2d.", "the END"])
    assert counts == {"the": 3, "cat": 1, "saw": 1, "other": 1, "cat's": 1, "max_pool2d": 1, "end": 1}
    zipf = {f"w{r}": round(10_000 / r) for r in range(1, 2001)}
    assert mlm.zipf_exponent(zipf) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="too few"):
        mlm.zipf_exponent({"a": 3, "b": 1})


def test_stdlib_harvest_refuses_a_patched_interpreter():
    import torch  # noqa: F401 - importing torch replaces inspect.getfile

    from mlm_lessons.corpus.harvest import harvest_stdlib

    with pytest.raises(RuntimeError, match="must run in a fresh interpreter, but torch"):
        harvest_stdlib()


def test_importing_the_corpus_code_does_not_import_torch():
    program = "import sys, mlm_lessons, mlm_lessons.corpus._worker; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _doc(name, text, obj):
    return mlm.Document(text, "numpy-docs", "numpy", obj, "function")


def test_the_manifest_keeps_the_books_documents_where_installed(tmp_path, monkeypatch):
    """Another release of the documented package: the book's documents stay where they are unchanged,
    edited ones are taken as installed, new ones are left out, and every count is reported."""
    from mlm_lessons.corpus import manifest as mf

    monkeypatch.setenv("MLM_LESSONS_CACHE", str(tmp_path))
    book_docs = [_doc("numpy-docs", f"the book's text of function number {i}, long enough to keep", f"f{i}") for i in range(6)]
    book = corpus_build.make_corpus("numpy-docs", book_docs, 0.05, 0.05, {})
    manifest = mf.manifest_of(book, {"numpy": "1.0"})
    monkeypatch.setattr(corpus_build, "load_manifest", lambda name: manifest)
    installed = {"docs": book_docs}

    def fake_build(name, min_words, out):
        out.parent.mkdir(parents=True, exist_ok=True)
        corpus_build.write_documents(installed["docs"], {}, str(out))

    monkeypatch.setattr(corpus_build, "_build_in_subprocess", fake_build)
    same = mlm.load_corpus("numpy-docs")
    assert same.sha256() == manifest.sha256 and same.manifest_report().same_as_book
    assert "all 6 of the book's documents, unchanged" in same.manifest_report().sentence()

    # a new release: f0 edited, f5 removed, two functions added (one repeating a book text word for word)
    installed["docs"] = ([_doc("numpy-docs", "an edited text of function number 0, still long enough", "f0")] + book_docs[1:5]
                         + [_doc("numpy-docs", "a new function's text that the book never saw at all", "g1"),
                            _doc("numpy-docs", book_docs[3].text, "a_alias")])
    path, _ = corpus_build._cache_path("numpy-docs", 5)
    path.unlink()
    now = mlm.load_corpus("numpy-docs")
    report = now.manifest_report()
    assert (report.identical, report.changed, report.missing, report.new_left_out) == (4, 1, 1, 2)
    assert sorted(d.name for d in now.documents) == ["f0", "f1", "f2", "f3", "f4"]  # f3 kept, not its alias
    assert "4 of the book's 6 documents are identical here, 1 changed, 1 missing; 2 documents" in report.sentence()
    assert "numpy 1.0" in report.sentence()
    everything = mlm.load_corpus("numpy-docs", documents="installed")
    assert everything.manifest_report() is None
    assert sorted(d.name for d in everything.documents) == ["a_alias", "f0", "f1", "f2", "f4", "g1"]  # dedup keeps a_alias


@pytest.mark.parametrize("name", mlm.CORPUS_NAMES)
def test_the_shipped_manifests_are_the_books_corpora(corpora, name):
    """Each manifest names every document of the corpus it was written from once, with its hash; on
    the set-up it was written with, the corpus built with it is that corpus, byte for byte."""
    from mlm_lessons.corpus.manifest import load_manifest

    manifest = load_manifest(name)
    assert manifest is not None and manifest.corpus == name and manifest.min_words == 5
    assert all(re.fullmatch(r"[0-9a-f]{16}", h) for h in manifest.documents.values())
    here = {k: v for k, v in corpora[name].meta["versions"].items() if k in manifest.made_with}
    report = corpora[name].manifest_report()
    assert report.identical + report.changed + report.missing == len(manifest.documents)
    if here != manifest.made_with:
        pytest.skip(f"{name}: the manifest was written with {manifest.made_with}, this is {here}")
    assert report.same_as_book and corpora[name].sha256() == manifest.sha256
