"""The command line, called in-process (``main(argv)``) and once as ``python -m mlm_lessons``."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import shutil
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


# -- the parser: its defaults and choices are the settings' -------------------------------------------


def test_building_the_parser_imports_no_torch():
    code = "import sys, mlm_lessons.cli; mlm_lessons.cli.build_parser(); assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_parser_defaults_and_choices_come_from_the_settings():
    from mlm_lessons import cli, settings
    from mlm_lessons.heads import SequenceClassifier
    from mlm_lessons.tokenizer import train_tokenizer

    def parsed(*argv):
        return cli.build_parser().parse_args(list(argv))

    finetune = parsed("finetune", "--task", settings.TASK_NAMES[0], "--checkpoint", "r", "--out", "o")
    fields = {f.name: f.default for f in dataclasses.fields(settings.FinetuneConfig)}
    assert (finetune.lr, finetune.max_steps, finetune.max_length, finetune.seed, finetune.device) == tuple(
        fields[k] for k in ("lr", "max_steps", "max_length", "seed", "device"))
    assert finetune.pooling == inspect.signature(SequenceClassifier).parameters["pooling"].default
    dapt = parsed("dapt", "--checkpoint", "r", "--corpus", "numpy-docs", "--out", "o")
    d = settings.DAPT_DEFAULTS
    assert (dapt.max_steps, dapt.eval_every, dapt.patience, dapt.general_corpus) == (d.max_steps, d.eval_every, d.patience,
                                                                                     d.general_corpus)
    pretrain = parsed("pretrain", "--out", "o")
    assert pretrain.preset == settings.DEFAULT_PRESET and pretrain.vocab_size == settings.VOCAB_SIZE
    tokenizer = parsed("tokenizer", "--out", "t.json")
    assert (tokenizer.vocab_size, tokenizer.min_frequency) == (settings.VOCAB_SIZE, settings.MIN_FREQUENCY)
    signature = inspect.signature(train_tokenizer).parameters
    assert (signature["vocab_size"].default, signature["min_frequency"].default) == (settings.VOCAB_SIZE, settings.MIN_FREQUENCY)
    choices = {a.dest: a.choices for p in _subparsers(cli.build_parser()).values() for a in p._actions if a.choices}
    assert tuple(_subparsers(cli.build_parser())["pretrain"]._option_string_actions["--preset"].choices) == settings.PRESET_NAMES
    assert tuple(choices["task"]) == settings.TASK_NAMES and tuple(choices["pooling"]) == settings.CLASSIFIER_POOLINGS
    assert cli.MADE_BY == "made_by.json"


def _subparsers(parser) -> dict:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


# -- bad run directories: one line, never a traceback ---------------------------------------------------


@pytest.fixture(scope="module")
def good_runs(tmp_path_factory):
    """A pretraining run (with the CLI's made_by record) and a fine-tuning run made from it, to damage copies of."""
    from mlm_lessons.heads import SequenceClassifier
    from mlm_lessons.rundir import RunDir, load_run
    from mlm_lessons.settings import FinetuneConfig

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_data import tiny_tokenizer_and_texts

    root = tmp_path_factory.mktemp("good")
    general, _ = _tiny_run(root)
    RunDir(general).write_made_by({"commands": ["python -m mlm_lessons pretrain --out general"], "data": "tiny text"})
    model, tok, _ = load_run(general)
    ft = RunDir(root / "ft")
    ft.save_finetuned(SequenceClassifier.from_pretrained(model, 3), tok, task="torch-subpackage", label_names=["a", "b", "c"],
                      config=FinetuneConfig(), history=[], valid={}, test={}, best_step=0)
    ft.write_made_by({"commands": ["python -m mlm_lessons finetune --out ft"], "task": "torch-subpackage", "data": "tiny text"})
    _, paragraphs, _ = tiny_tokenizer_and_texts(n_train=300)
    (root / "notes.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    return {"checkpoint.pt": general, "finetuned.pt": root / "ft", "notes": root / "notes.txt"}


def _damaged(runs: dict, tmp_path: Path, model_file: str, damage: str) -> tuple[Path, Path]:
    """A copy of the run holding ``model_file`` with ``damage`` done: (run directory, the damaged file)."""
    import torch

    run = Path(shutil.copytree(runs[model_file], tmp_path / "run"))
    target = run / ("tokenizer.json" if "tokenizer" in damage else "made_by.json" if "made_by" in damage else model_file)
    if damage.startswith("missing"):
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:1000])  # what `head -c 1000` leaves
    elif damage == "empty":
        target.write_bytes(b"")
    elif damage == "tensor":
        torch.save(torch.zeros(3), target)  # a plain torch.save: loads, but is no run of ours
    elif damage == "foreign":  # the other kind of run's file under this name
        other = "finetuned.pt" if model_file == "checkpoint.pt" else "checkpoint.pt"
        shutil.copy(runs[other] / other, target)
    elif damage.startswith("corrupt"):
        target.write_text('{"commands": ["python -m')
    return run, target


def _command(name: str, run: Path, tmp_path: Path, runs: dict) -> list[str]:
    quick = ["--device", "cpu", "--quiet"]
    return {
        "fill-mask": ["fill-mask", "--checkpoint", str(run), "the [MASK] ."],
        "export": ["export", "--checkpoint", str(run), "--out", str(tmp_path / "hub")],
        "dapt": ["dapt", "--checkpoint", str(run), "--corpus", "numpy-docs", "--out", str(tmp_path / "dapt"), "--max-steps", "2", *quick],
        "finetune": ["finetune", "--task", "code-spans", "--checkpoint", str(run), "--out", str(tmp_path / "ft"), "--max-steps", "2",
                     *quick],
        "pretrain --resume": ["pretrain", "--paths", str(runs["notes"]), "--resume", "--out", str(run), "--max-steps", "2", *quick],
    }[name]


def _fails_in_one_line(capsys, argv: list[str], *names: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1 and captured.err.endswith("\n"), captured.err
    for name in names:
        assert name in captured.err, (name, captured.err)
    return captured.err


RUN_DAMAGES = ["missing", "truncated", "empty", "foreign", "tensor", "missing tokenizer", "corrupt tokenizer", "corrupt made_by"]
READERS = ["fill-mask", "export", "dapt", "finetune", "pretrain --resume"]


@pytest.mark.parametrize("damage", RUN_DAMAGES)
@pytest.mark.parametrize("command", READERS)
def test_a_bad_pretraining_run_is_one_line(capsys, tmp_path, good_runs, command, damage):
    if damage == "corrupt made_by" and command == "fill-mask":
        pytest.skip("fill-mask reads no made_by.json")
    run, target = _damaged(good_runs, tmp_path, "checkpoint.pt", damage)
    names = [str(run), "checkpoint.pt"] if (command, damage) == ("export", "missing") else [str(target)]
    err = _fails_in_one_line(capsys, _command(command, run, tmp_path, good_runs), *names)
    fix = {"checkpoint.pt": f"python -m mlm_lessons pretrain --out {run}", "made_by.json": "copy the whole run directory again"}
    if damage != "missing":
        assert fix.get(target.name, "copy the whole run directory again") in err
    assert not (tmp_path / "hub").exists() and not (tmp_path / "dapt").exists() and not (tmp_path / "ft").exists()


@pytest.mark.parametrize("damage", RUN_DAMAGES)
def test_a_bad_finetuning_run_is_one_line(capsys, tmp_path, good_runs, damage):
    run, target = _damaged(good_runs, tmp_path, "finetuned.pt", damage)
    names = [str(run), "finetuned.pt"] if damage == "missing" else [str(target)]
    err = _fails_in_one_line(capsys, _command("export", run, tmp_path, good_runs), *names)
    if damage in ("truncated", "empty", "foreign", "tensor"):
        assert f"python -m mlm_lessons finetune --out {run}" in err
    assert not (tmp_path / "hub").exists()


def test_the_good_runs_are_good(capsys, good_runs):
    """The runs the tests above damage work as they are (the tiny model is not in ModernBERT's layout, so
    exporting it is left to test_export_writes_every_run_the_cli_makes)."""
    from mlm_lessons.rundir import RunDir, load_finetuned

    assert main(["fill-mask", "--checkpoint", str(good_runs["checkpoint.pt"]), "the [MASK] ."]) == 0
    assert "[MASK] #1:" in capsys.readouterr().out
    model, _, ckpt = load_finetuned(good_runs["finetuned.pt"])
    assert type(model).__name__ == ckpt["kind"] == "SequenceClassifier" and ckpt["label_names"] == ["a", "b", "c"]
    assert RunDir(good_runs["finetuned.pt"]).read_made_by()["task"] == "torch-subpackage"


def test_export_onnx_and_fill_mask_one_at_a_time(capsys, tmp_path, one_thread):
    """export --onnx writes the run's masked LM as one ONNX file that onnxruntime runs to the same logits;
    a finetune run is refused in one line; fill-mask --one-at-a-time prints fill_mask's sequential answer."""
    pytest.importorskip("onnxruntime")
    import torch

    from mlm_lessons.model import fill_mask
    from mlm_lessons.rundir import load_run
    from mlm_lessons.web import onnx_logits

    run, tok = _tiny_run(tmp_path)
    assert main(["export", "--checkpoint", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "run it with onnxruntime.InferenceSession" in capsys.readouterr().out
    model, _, _ = load_run(run)
    ids = torch.tensor([tok.encode("the tensor [MASK] a new shape .")])
    with torch.no_grad():
        ours = model(ids, torch.ones_like(ids)).logits
    theirs, _ = onnx_logits(tmp_path / "m.onnx", ids)
    assert (ours - torch.from_numpy(theirs)).abs().max().item() <= 1e-4
    with pytest.raises(SystemExit):  # --out and --onnx exclude each other (argparse exits with status 2)
        main(["export", "--checkpoint", str(run), "--onnx", str(tmp_path / "x.onnx"), "--out", str(tmp_path / "x")])
    capsys.readouterr()
    ft = tmp_path / "ft"
    assert main(["finetune", "--task", "code-spans", "--checkpoint", str(run), "--out", str(ft), "--labels-per-class", "2",
                 "--max-steps", "1", "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(ft), "--onnx", str(tmp_path / "ft.onnx")]) == 2
    err = capsys.readouterr().err
    assert "is a finetune run; --onnx writes masked LMs" in err and len(err.strip().splitlines()) == 1
    text = "the [MASK] of a [MASK] ."
    assert main(["fill-mask", "--checkpoint", str(run), "--one-at-a-time", text]) == 0
    first = [line.split(": ", 1)[1].split(" (")[0] for line in capsys.readouterr().out.splitlines()]
    assert first == [answer[0][0] for answer in fill_mask(model, tok, text, one_at_a_time=True)]
