"""The command line, called in-process (``main(argv)``) and once as ``python -m mlm_lessons``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlm_lessons as mlm
import mlm_lessons.training
from mlm_lessons.cli import main


def test_corpus_table(capsys, corpora):
    assert main(["corpus"]) == 0
    out = capsys.readouterr().out
    for name, c in corpora.items():
        assert name in out and f"{c.stats().documents:,}" in out and c.sha256()[:16] in out


def test_corpus_says_how_much_of_the_books_text_it_is(capsys, corpora):
    """By default each corpus keeps the book's documents and says how many of them are here;
    --documents installed takes every installed document and says nothing of the book's."""
    assert main(["corpus", "numpy-docs"]) == 0
    report = corpora["numpy-docs"].manifest_report()
    assert report.sentence() in capsys.readouterr().out
    assert main(["corpus", "numpy-docs", "--documents", "installed"]) == 0
    out = capsys.readouterr().out
    everything = mlm.load_corpus("numpy-docs", documents="installed")
    assert everything.sha256()[:16] in out and "the book's documents" not in out
    if report.same_as_book:  # the installed documentation is the book's: both ways build the same corpus
        assert everything.sha256() == corpora["numpy-docs"].sha256()
    else:  # another release: taking everything installed gives another corpus than the book's documents
        assert everything.sha256() != corpora["numpy-docs"].sha256()


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


def test_export_writes_every_run_the_cli_makes(capsys, tmp_path, corpora, one_thread):
    """pretrain (tiny) -> dapt -> finetune (a sequence head with mean pooling, a token head), then each run
    directory exported and loaded with its Auto class, with no code of ours: the same logits."""
    transformers = pytest.importorskip("transformers")
    import torch

    from mlm_lessons.finetuning import SequenceClassifier, TokenClassifier
    from mlm_lessons.model import EncoderConfig
    from mlm_lessons.rundir import load_run

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_data import tiny_tokenizer_and_texts

    _, paragraphs, _ = tiny_tokenizer_and_texts(n_train=300)
    (tmp_path / "notes.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    runs = {name: tmp_path / name for name in ("general", "dapt", "ft-seq", "ft-tok")}
    quick = ["--max-steps", "2", "--device", "cpu", "--quiet"]
    assert main(["pretrain", "--paths", str(tmp_path / "notes.txt"), "--vocab-size", "200", "--out", str(runs["general"]), *quick]) == 0
    assert main(["dapt", "--checkpoint", str(runs["general"]), "--corpus", "numpy-docs", "--out", str(runs["dapt"]),
                 "--eval-every", "2", *quick]) == 0
    assert main(["finetune", "--task", "torch-subpackage", "--checkpoint", str(runs["dapt"]), "--out", str(runs["ft-seq"]),
                 "--labels-per-class", "2", "--pooling", "mean", *quick]) == 0
    assert main(["finetune", "--task", "code-spans", "--checkpoint", str(runs["general"]), "--out", str(runs["ft-tok"]),
                 "--labels-per-class", "2", *quick]) == 0
    capsys.readouterr()

    tok = mlm.MLMTokenizer.load(runs["general"] / "tokenizer.json")
    texts = ["the tensor returns a new output with the same shape .", "a layer", "weight and bias of the module is the input ."]
    batch = tok.encode_batch(texts, max_length=64)
    mask = batch.attention_mask
    assert len(set(mask.sum(1).tolist())) == 3  # padded rows of different lengths

    def ours_of(name):
        if name in ("general", "dapt"):
            return load_run(runs[name])[0], transformers.AutoModelForMaskedLM, None
        saved = mlm.training.load_checkpoint(runs[name] / "finetuned.pt")
        config, n = EncoderConfig(**saved["model_config"]), len(saved["label_names"])
        model = SequenceClassifier(config, n, pooling="mean") if name == "ft-seq" else TokenClassifier(config, n)
        model.load_state_dict(saved["model"])
        auto = transformers.AutoModelForSequenceClassification if name == "ft-seq" else transformers.AutoModelForTokenClassification
        return model.eval(), auto, saved

    cards = {}
    for name, run in runs.items():
        out = tmp_path / f"hub-{name}"
        assert main(["export", "--checkpoint", str(run), "--out", str(out)]) == 0
        ours, auto, saved = ours_of(name)
        assert f"transformers.{auto.__name__}.from_pretrained" in capsys.readouterr().out
        hf = auto.from_pretrained(out).eval()
        with torch.no_grad():
            a, b = ours(batch.input_ids, mask).logits, hf(input_ids=batch.input_ids, attention_mask=mask).logits
        diff = (a - b).abs()
        assert (diff if name == "ft-seq" else diff[mask.bool()]).max().item() <= 1e-4, name
        if saved is not None:
            assert hf.config.id2label == dict(enumerate(saved["label_names"]))
        cards[name] = (out / "README.md").read_text()

    pretrain_line, dapt_line, seq_line, tok_line = (f"python -m mlm_lessons {c}" for c in ("pretrain", "dapt", "finetune --task torch",
                                                                                           "finetune --task code"))
    assert "pipeline_tag: fill-mask" in cards["general"] and "data: the corpus 'files' (sha256 " in cards["general"]
    assert "steps: 2" in cards["general"] and pretrain_line in cards["general"]
    dapt_ckpt = mlm.training.load_checkpoint(runs["dapt"] / "checkpoint.pt")
    kept = next(h for h in dapt_ckpt["history"] if "valid_mask_loss" in h and h["step"] == dapt_ckpt["best_step"])
    dapt_card = cards["dapt"]
    assert "then domain-adaptive pretraining on the corpus 'numpy-docs'" in dapt_card and "2 steps; then" in dapt_card
    assert f"validation [MASK] loss (nats): {kept['valid_mask_loss']:.4f}" in dapt_card
    assert f"[MASK] loss on the general text (nats): {kept['general_mask_loss']:.4f}" in dapt_card
    assert dapt_card.index(pretrain_line) < dapt_card.index(dapt_line) < dapt_card.index("python -m mlm_lessons export")
    seq = mlm.training.load_checkpoint(runs["ft-seq"] / "finetuned.pt")
    card = cards["ft-seq"]
    assert "pipeline_tag: text-classification" in card and "ModernBertForSequenceClassification" in card
    assert "fine-tuned on: the task 'torch-subpackage'" in card and "head: the mean of the real tokens' states" in card
    assert f"validation macro_f1: {seq['valid']['macro_f1']:.4f}" in card and f"test macro_f1: {seq['test']['macro_f1']:.4f}" in card
    assert "labels (6): 0 `nn`, 1 `optim`" in card and "pretraining data: the corpus 'files'" in card and "numpy-docs" in card
    assert card.index(pretrain_line) < card.index(dapt_line) < card.index(seq_line) < card.index("python -m mlm_lessons export")
    card = cards["ft-tok"]
    assert "pipeline_tag: token-classification" in card and "ModernBertForTokenClassification" in card
    assert "fine-tuned on: the task 'code-spans'" in card and "test span_f1: " in card and "labels (2): 0 `prose`, 1 `code`" in card
    assert "numpy-docs" not in card and card.index(pretrain_line) < card.index(tok_line)

    assert main(["export", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "hub-x")]) == 2
    err = capsys.readouterr().err
    assert f"{str(tmp_path)!r} holds neither checkpoint.pt (a pretrain or dapt run) nor finetuned.pt (a finetune run)" in err
    assert not (tmp_path / "hub-x").exists()
