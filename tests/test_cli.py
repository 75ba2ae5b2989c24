"""The command line, called in-process (``main(argv)``) and once as ``python -m mlm_lessons``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlm_lessons as mlm
import mlm_lessons.training
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


def _tiny_run(tmp_path):
    """A pretraining run directory with a tiny model and vocabulary (tests/tiny_data.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_data import tiny_tokenizer_and_texts

    from mlm_lessons.model import EncoderConfig
    from mlm_lessons.training import TrainConfig, pretrain

    tok, train, valid = tiny_tokenizer_and_texts()
    config = TrainConfig(max_steps=4, batch_size=8, max_length=16, warmup_steps=1, eval_every=2, eval_sequences=16,
                         log_every=1, device="cpu")
    model_config = EncoderConfig(vocab_size=tok.vocab_size, max_len=16, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    pretrain(model_config, tok, train, valid, config, out_dir=tmp_path / "general", progress=False)
    return tmp_path / "general", tok


def test_dapt_and_finetune_commands(capsys, tmp_path, corpora):
    run, _ = _tiny_run(tmp_path)
    assert main(["dapt", "--checkpoint", str(run), "--corpus", "numpy-docs", "--out", str(tmp_path / "dapt"),
                 "--max-steps", "4", "--eval-every", "2", "--device", "cpu", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "numpy-docs [MASK] loss" in out and "python-docs [MASK] loss" in out and "before (step 0)" in out
    assert "numpy-docs loss (all labelled)" in out
    history = json.loads((tmp_path / "dapt" / "metrics.json").read_text())
    assert history[0]["step"] == 0 and "general_loss" in history[0] and "general_mask_loss" in history[0]

    args = ["finetune", "--task", "torch-subpackage", "--checkpoint", str(tmp_path / "dapt"), "--out", str(tmp_path / "ft"),
            "--labels-per-class", "4", "--max-steps", "3", "--device", "cpu", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "macro_f1" in out and "24 training examples" in out
    saved = mlm.training.load_checkpoint(tmp_path / "ft" / "finetuned.pt")
    assert saved["task"] == "torch-subpackage" and saved["label_names"] == ["nn", "optim", "distributed", "fx", "ao", "utils"]
    assert saved["model"]["classifier.weight"].shape == (6, 16)


def test_adaptation_commands_reject_bad_input(capsys, tmp_path, general_tok):
    run, _ = _tiny_run(tmp_path)
    other = tmp_path / "other.json"
    general_tok.save(other)
    assert main(["finetune", "--task", "code-spans", "--checkpoint", str(run), "--out", str(tmp_path / "x"),
                 "--tokenizer", str(other)]) == 2
    assert "another vocabulary" in capsys.readouterr().err
    assert main(["dapt", "--checkpoint", str(tmp_path / "nowhere"), "--corpus", "pytorch-docs", "--out", str(tmp_path / "y")]) == 2
    assert "holds no checkpoint.pt" in capsys.readouterr().err
    try:
        main(["finetune", "--task", "sentiment", "--checkpoint", str(run), "--out", str(tmp_path / "z")])
    except SystemExit as exc:  # argparse: an unknown choice exits with status 2 and names the choices
        assert exc.code == 2
    assert "invalid choice: 'sentiment'" in capsys.readouterr().err
