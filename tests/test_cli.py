"""The command line, called in-process (``main(argv)``) and once as ``python -m mlm_lessons``."""

from __future__ import annotations

import json
import subprocess
import sys

import mlm_lessons as mlm
from mlm_lessons.cli import main


def test_corpus_table(capsys, corpora):
    assert main(["corpus"]) == 0
    out = capsys.readouterr().out
    for name, c in corpora.items():
        assert name in out and f"{c.stats().documents:,}" in out and c.sha256()[:16] in out


def test_corpus_json_and_export(capsys, tmp_path, corpora):
    assert main(["corpus", "numpy-docs", "--json", "--write", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[: out.rindex("]") + 1])
    assert rows[0]["sha256"] == corpora["numpy-docs"].sha256()
    lines = (tmp_path / "numpy-docs" / "valid.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(corpora["numpy-docs"].valid)


def test_train_tokenizer_and_fragmentation(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("Tensors flow through layers.\n\nGradients flow back.\n" * 20, encoding="utf-8")
    out_file = tmp_path / "tok.json"
    assert main(["tokenizer", "--paths", str(tmp_path / "notes.txt"), "--vocab-size", "120", "--out", str(out_file)]) == 0
    tok = mlm.MLMTokenizer.load(out_file)
    assert tok.vocab_size <= 120 and tok.token_to_id("[MASK]") == 4
    capsys.readouterr()
    assert main(["fragmentation", "--tokenizer", str(out_file), "--paths", str(tmp_path)]) == 2
    assert "the valid split of 'files' is empty (3 documents in all)" in capsys.readouterr().err
    args = ["fragmentation", "--tokenizer", str(out_file), "--words", "tensors", "--paths", str(tmp_path), "--split", "train"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "tensors" in out and "pieces per word" in out


def test_errors_are_reported_not_raised(capsys, tmp_path):
    assert main(["tokenizer", "--paths", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "t.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["tokenizer", "--out", str(tmp_path / "t.json")]) == 2
    assert "--corpus NAME or --paths" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "mlm_lessons", "--help"], capture_output=True, text=True, check=True).stdout
    assert "corpus" in out and "tokenizer" in out and "fragmentation" in out
