"""The Hub corpora, offline: ``datasets`` reads parquet files this test writes in each dataset's
format (its columns and split names); the guards for a missing library and a missing network."""

from __future__ import annotations

import sys

import pytest

import mlm_lessons as mlm
from mlm_lessons.corpus import hub
from mlm_lessons.corpus.hub import HUB_CORPORA, load_hub_corpus

datasets = pytest.importorskip("datasets")

WIKI_TRAIN = [
    "", " = Valkyria Chronicles III = ", "",
    " Senjō no Valkyria 3 is a tactical role @-@ playing video game developed by Sega for the PlayStation Portable . ",
    " = = Gameplay = = ",
    " The game sold 102 @,@ 000 copies in its first week , about 1 @.@ 5 times its predecessor . ",
    " Too short here . ",
    " The game sold 102 @,@ 000 copies in its first week , about 1 @.@ 5 times its predecessor . ",  # a repeat
]
WIKI_VALID = ["", " = Homarus gammarus = ", " Homarus gammarus is a species of clawed lobster from the eastern Atlantic Ocean . ",
              " Senjō no Valkyria 3 is a tactical role @-@ playing video game developed by Sega for the PlayStation Portable . "]
WIKI_TEST = [" = Robert Boulter = ", " Robert Boulter is an English film , television and theatre actor who trained in London . "]


def write_parquet(path, column, values, **other_columns):
    datasets.Dataset.from_dict({column: values, **other_columns}).to_parquet(str(path))
    return str(path)


@pytest.fixture
def wikitext_files(tmp_path):
    return {split: write_parquet(tmp_path / f"{split}.parquet", "text", rows)
            for split, rows in (("train", WIKI_TRAIN), ("validation", WIKI_VALID), ("test", WIKI_TEST))}


def test_wikitext_paragraphs_keep_the_datasets_own_splits(wikitext_files):
    corpus = load_hub_corpus("wikitext-103", data_files=wikitext_files)
    assert corpus.name == "wikitext-103"
    assert corpus.texts("train") == [
        "Senjō no Valkyria 3 is a tactical role-playing video game developed by Sega for the PlayStation Portable .",
        "The game sold 102,000 copies in its first week , about 1.5 times its predecessor .",
    ]  # headings and a four-word line dropped, WikiText's @-@ marks repaired, the repeat dropped
    assert corpus.texts("valid") == ["Homarus gammarus is a species of clawed lobster from the eastern Atlantic Ocean ."]  # train's text dropped
    assert len(corpus.test) == 1 and corpus.test[0].kind == "paragraph"
    assert corpus.meta["licence"] == "CC BY-SA 3.0 (and GFDL)" and corpus.meta["source"] == "Salesforce/wikitext"
    assert corpus.meta["duplicates_removed"] == 2 and corpus.meta["too_short_removed_train"] == 1
    assert load_hub_corpus("wikitext-103", data_files=wikitext_files, max_documents=1).texts("train") == corpus.texts("train")[:1]


def test_arxiv_abstracts_are_split_by_content_hash(tmp_path):
    abstracts = [f"We study problem number {i} of the masked language modeling literature and report results." for i in range(60)]
    files = {"train": write_parquet(tmp_path / "arxiv.parquet", "abstract", abstracts + [abstracts[0]],
                                    id=[f"2101.{i:05d}" for i in range(61)], title=["t"] * 61)}
    corpus = load_hub_corpus("arxiv-abstracts", data_files=files)
    assert sorted(corpus.texts("train") + corpus.texts("valid") + corpus.texts("test")) == sorted(abstracts)
    assert corpus.meta["duplicates_removed"] == 1 and corpus.meta["licence"] == "CC0 1.0"
    for d in corpus.valid:
        assert mlm.corpus.split_of(d.text, 0.05, 0.05) == "valid"
    few = load_hub_corpus("arxiv-abstracts", data_files=files, max_documents=10)
    assert len(few.documents) == 10


def test_load_corpus_reads_the_hub_through_datasets(monkeypatch, wikitext_files):
    """``load_corpus("wikitext-103")`` asks ``datasets`` for the Hub dataset; here it gets the local files."""
    asked = []

    def fake_load_dataset(path, name=None, **kwargs):
        asked.append((path, name, kwargs.get("streaming")))
        return real("parquet", data_files=wikitext_files, streaming=True)

    real = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    corpus = mlm.load_corpus("wikitext-103")
    assert asked == [("Salesforce/wikitext", "wikitext-103-raw-v1", True)]
    assert len(corpus.train) == 2 and len(corpus.valid) == 1


def test_no_network_is_an_error_that_says_what_to_do(monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'Salesforce/wikitext' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(hub.HubUnavailable, match=r"could not read Salesforce/wikitext from the Hugging Face Hub .*ConnectionError.*"
                                                 r"pass data_files="):
        mlm.load_corpus("wikitext-103")
    from mlm_lessons.cli import main

    assert main(["corpus", "wikitext-103"]) == 2  # the command line says it in one line, no traceback
    assert "error: could not read Salesforce/wikitext" in capsys.readouterr().err


def test_no_datasets_library_is_an_error_that_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now fails
    with pytest.raises(ImportError, match="pip install datasets"):
        load_hub_corpus("arxiv-abstracts")


def test_bad_arguments(tmp_path, wikitext_files):
    with pytest.raises(ValueError, match="unknown Hub corpus 'wiki'; choose one of wikitext-103, arxiv-abstracts"):
        load_hub_corpus("wiki")
    with pytest.raises(ValueError, match="max_documents must be a positive int"):
        load_hub_corpus("wikitext-103", max_documents=0)
    with pytest.raises(ValueError, match=r"the data has no split 'validation' \(it has train\)"):
        load_hub_corpus("wikitext-103", data_files={"train": wikitext_files["train"]})
    wrong = {"train": write_parquet(tmp_path / "wrong.parquet", "body", ["some text here and more words"])}
    with pytest.raises(ValueError, match="rows need a 'abstract' column, got \\['body'\\]"):
        load_hub_corpus("arxiv-abstracts", data_files=wrong)
    with pytest.raises(ValueError, match=r"wikitext-103, arxiv-abstracts \(from the Hugging Face Hub"):
        mlm.load_corpus("wikitext")
    assert set(HUB_CORPORA) == {"wikitext-103", "arxiv-abstracts"} and hub.HUB_CORPUS_NAMES == tuple(HUB_CORPORA)
