"""The chapters' tolerant checks of trained models: mlm_lessons.teaching.claims."""

from __future__ import annotations

import math

import pytest
import torch

from mlm_lessons.teaching import claims
from mlm_lessons.teaching.claims import claim


@pytest.fixture(autouse=True)
def fresh_record(monkeypatch):
    monkeypatch.delenv(claims.CLAIMS_ENV, raising=False)
    claims.reset()
    yield
    claims.reset()


def test_a_claim_that_holds_is_recorded_and_shows_nothing():
    assert claim("gap to unigram (nats)", 0.31, above=0.2) is None  # like assert: a cell ending with it shows no output
    claim("share", torch.tensor(0.4), above=0.1, below=0.5)  # tensors and numpy scalars convert
    assert claims.recorded() == [
        {"name": "gap to unigram (nats)", "value": 0.31, "above": 0.2, "below": None, "holds": True},
        {"name": "share", "value": pytest.approx(0.4), "above": 0.1, "below": 0.5, "holds": True},
    ]


@pytest.mark.parametrize("value, bounds, missed", [
    (0.2, {"above": 0.2}, "is not above 0.2"),          # the bound itself is not enough: strictly above
    (0.7, {"below": 0.5}, "is not below 0.5"),
    (0.05, {"above": 0.1, "below": 0.5}, "is not above 0.1 and below 0.5"),
])
def test_a_claim_that_fails_names_itself_the_value_and_the_bound(value, bounds, missed):
    with pytest.raises(AssertionError, match=f"claim 'the margin' does not hold: {value:.4g} {missed}"):
        claim("the margin", value, **bounds)
    assert claims.recorded()[-1]["holds"] is False


def test_record_mode_notes_failures_and_goes_on(monkeypatch):
    monkeypatch.setenv(claims.CLAIMS_ENV, "record")
    claim("too small", 0.01, above=0.2)
    claim("fine", 1.0, above=0.2)
    assert [c["holds"] for c in claims.recorded()] == [False, True]
    claims.reset()
    assert claims.recorded() == []


def test_note_mode_prints_what_the_text_says_and_what_was_measured(monkeypatch, capsys):
    monkeypatch.setenv(claims.CLAIMS_ENV, "note")
    claim("unigram − valid loss (nats)", 0.15, above=0.2)
    claim("fine", 1.0, above=0.2)
    out = capsys.readouterr().out
    assert out.count("Note:") == 1  # only the claim that does not hold speaks
    assert "'unigram − valid loss (nats)' being above 0.2; this run measured 0.15" in out
    assert "documentation installed" in out and "The chapter goes on." in out
    assert [c["holds"] for c in claims.recorded()] == [False, True]


def test_outside_pytest_a_failing_claim_is_a_note_and_inside_it_fails():
    """A reader's kernel has no pytest: the default there is a note. Here (pytest) it is a failure."""
    import subprocess
    import sys

    script = ("from mlm_lessons.teaching.claims import claim\n"
              "claim('the margin', 0.1, above=0.2)\n"
              "print('the cell goes on')\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != claims.CLAIMS_ENV}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Note: the text above rests on 'the margin' being above 0.2; this run measured 0.1." in proc.stdout
    assert proc.stdout.rstrip().endswith("the cell goes on")
    assert claims._mode() == "check"


@pytest.mark.parametrize("args, kwargs, message", [
    (("", 1.0), {"above": 0}, "a claim needs a name"),
    (("x", 1.0), {}, "needs a bound"),
    (("x", True), {"above": 0}, "turn a comparison into a margin"),
    (("x", "0.5"), {"above": 0}, "the value must be a number, got str"),
    (("x", math.nan), {"above": 0}, "the value is NaN"),
    (("x", 1.0), {"above": 2, "below": 1}, "above=2 must be smaller than below=1"),
])
def test_bad_claims_are_refused(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        claim(*args, **kwargs)
    assert claims.recorded() == []


def test_an_unknown_mode_is_refused(monkeypatch):
    monkeypatch.setenv(claims.CLAIMS_ENV, "lenient")
    with pytest.raises(ValueError, match="MLM_LESSONS_CLAIMS='lenient' must be 'check' .*'note'"):
        claim("x", 2.0, above=1.0)  # refused even when the claim holds


def test_a_note_records_a_number_without_judging_it():
    assert claims.note("rise difference", -0.02) is None
    assert claims.recorded() == [{"name": "rise difference", "value": -0.02, "above": None, "below": None, "holds": None}]
    with pytest.raises(ValueError, match="the value must be a number, got NoneType"):
        claims.note("rise difference", None)


def test_same_model_compares_a_stored_record_with_the_model_that_would_train_now():
    import json

    from mlm_lessons.model import EncoderConfig
    from mlm_lessons.teaching.claims import model_record, same_model

    config = EncoderConfig(vocab_size=300, d_model=32, n_heads=2, n_layers=1, d_ff=64, positions="rope", vocab_fingerprint="abc")
    stored = json.loads(json.dumps({"model": model_record(config)}))  # as a benchmark writes it, and a chapter reads it
    assert "vocab_fingerprint" not in stored["model"]
    assert same_model(stored, config)
    assert same_model(stored, EncoderConfig(**{**config.to_dict(), "vocab_fingerprint": "other"}))  # the same text, retrained
    assert not same_model(stored, EncoderConfig(**{**config.to_dict(), "embedding_norm": True}))  # another layout
    assert not same_model({"command": "an older record"}, config)  # no model recorded: not comparable
    with pytest.raises(ValueError, match="stored benchmark record"):
        same_model([], config)
    with pytest.raises(ValueError, match="model configuration"):
        model_record({"d_model": 32})


@pytest.mark.slow
def test_a_stored_run_is_compared_only_where_a_run_here_can_reproduce_it(corpora, monkeypatch, capsys):
    from mlm_lessons.model import EncoderConfig
    from mlm_lessons.teaching.claims import agrees_with_stored, comparable, environment_record, model_record

    env = environment_record(("python-docs", "pytorch-docs"))
    assert env["corpora"] == {name: corpora[name].sha256()[:16] for name in ("python-docs", "pytorch-docs")}
    assert env["torch"] == torch.__version__ and env["device"] in ("cpu", "cuda", "mps")
    config = EncoderConfig(vocab_size=300, d_model=32, n_heads=2, n_layers=1, d_ff=64, positions="rope")
    stored = {"model": model_record(config), "environment": env}
    assert comparable(stored, config) is None
    other_text = {**stored, "environment": {**env, "corpora": {**env["corpora"], "pytorch-docs": "0" * 16}}}
    assert comparable(other_text, config).startswith("pytorch-docs here is another text")
    other_device = {**stored, "environment": {**env, "device": "cuda" if env["device"] != "cuda" else "cpu"}}
    assert "this machine trains on" in comparable(other_device, config)
    assert comparable({"model": model_record(config)}, config) == "the stored record does not say which corpora and device it used"
    assert comparable({**stored, "model": {}}, config) == "the stored runs trained another model"
    # the corpora alone (chapter 8 compares a live BM25 with a stored grid only where they are the same text)
    assert claims.corpora_differ(stored) == [] and claims.corpora_differ(other_text) == ["pytorch-docs"]
    with pytest.raises(ValueError, match="does not say which corpora it read"):
        claims.corpora_differ({"model": model_record(config)})

    agrees_with_stored("seed 0", {"general": (0.640, 0.645)}, tolerance=0.02, stored=stored, config=config)
    assert claims.recorded()[-1]["name"] == "seed 0, general: |run here − stored run|" and claims.recorded()[-1]["holds"]
    with pytest.raises(AssertionError, match="does not hold"):
        agrees_with_stored("seed 0", {"general": (0.58, 0.645)}, tolerance=0.02, stored=stored, config=config)
    before = len(claims.recorded())
    agrees_with_stored("seed 0", {"general": (0.58, 0.645)}, tolerance=0.02, stored=other_text, config=config)
    assert capsys.readouterr().out.startswith("(Not compared with the stored benchmark: pytorch-docs here is another text")
    assert len(claims.recorded()) == before  # nothing checked
    monkeypatch.setenv("MLM_LESSONS_SEED_OFFSET", "1")
    assert comparable(stored, config) == "this run trains with seed offset 1, the stored runs with 0"
    with pytest.raises(ValueError, match="no \\(run here, stored\\) pairs"):
        agrees_with_stored("seed 0", {}, tolerance=0.02, stored=stored, config=config)


def test_made_with_says_what_the_outputs_were_made_with_and_how_a_run_differs(corpora, monkeypatch, capsys, tmp_path):
    record = tmp_path / "made_with.json"
    monkeypatch.setattr(claims, "MADE_WITH", record)
    with pytest.raises(ValueError, match=r"made_with.json has no record of what chapter '05_x' was made with; execute the chapter once with MLM_LESSONS_MADE_WITH=write"):
        claims.made_with("05_x", corpora=("python-docs",))
    monkeypatch.setenv(claims.MADE_WITH_ENV, "write")
    claims.made_with("05_x", corpora=("python-docs",))
    monkeypatch.delenv(claims.MADE_WITH_ENV)
    sha = corpora["python-docs"].sha256()
    assert record.is_file() and f'"python-docs": "{sha[:16]}"' in record.read_text()
    capsys.readouterr()
    claims.made_with("05_x", corpora=("python-docs",))  # the same set-up: one line
    out = capsys.readouterr().out.splitlines()
    assert out == [f"This chapter's stored outputs were made with Python {claims._environment_without_corpora()['python']}, "
                   f"torch {torch.__version__} on a CPU; corpora python-docs {sha[:8]}."]
    # a reader with another torch and another corpus: one line more, naming both
    here = claims._environment_without_corpora()
    monkeypatch.setattr(claims, "_environment_without_corpora", lambda: {**here, "torch": "9.9.9", "device": "cuda"})
    real_record = claims.environment_record
    monkeypatch.setattr(claims, "environment_record",
                        lambda names: {**real_record(names), "torch": "9.9.9", "device": "cuda", "corpora": {"python-docs": "0" * 16}})
    claims.made_with("05_x", corpora=("python-docs",))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("This run differs – torch 9.9.9; device cuda; another python-docs (")
    assert "documents" in out[1] and "a note says so" in out[1]
    with pytest.raises(ValueError, match=r"recorded reading the corpora \['python-docs'\], not \['pytorch-docs'\]"):
        claims.made_with("05_x", corpora=("pytorch-docs",))
