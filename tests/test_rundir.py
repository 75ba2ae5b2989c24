"""The run directory: each file of a run written and read back, and every bad file answered in one line
that names it and the fix. (The commands that read runs, on the same bad files: tests/test_cli.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from mlm_lessons.heads import SequenceClassifier, TokenClassifier
from mlm_lessons.model import EncoderConfig, MaskedLM
from mlm_lessons.rundir import (
    CHECKPOINT, FINETUNED, MADE_BY, TOKENIZER, RunDir, load_checkpoint, load_finetuned, load_run, save_checkpoint,
)
from mlm_lessons.settings import FinetuneConfig, TrainConfig

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import tiny_tokenizer_and_texts  # noqa: E402

TINY_MODEL = dict(max_len=16, d_model=16, n_layers=1, n_heads=2, d_ff=32)


def pretrain_run(path: Path):
    """A run directory as ``pretrain`` leaves one, with an untrained tiny model (no training: fast)."""
    tok, _, _ = tiny_tokenizer_and_texts()
    torch.manual_seed(0)
    model = MaskedLM(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL))
    model.check_vocabulary(tok)
    RunDir(path).save(tokenizer=tok, history=[], config={}, format=1, step=0, model=model.state_dict(),
                      model_config=model.config.to_dict(), train_config=TrainConfig().to_dict(), best_step=None,
                      stopped_at=None)
    return model, tok


def one_line_naming(exc_info, path: Path) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and str(path) in message, message
    return message


@pytest.mark.parametrize("damage", ["missing", "truncated", "empty", "garbage", "tensor", "list", "without keys"])
def test_load_checkpoint_answers_a_bad_file_in_one_line(tmp_path, damage):
    good = save_checkpoint(tmp_path / "good.pt", step=1, history=[], model={"w": torch.zeros(64, 64)})
    path = tmp_path / CHECKPOINT
    if damage == "truncated":
        path.write_bytes(good.read_bytes()[:1000])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_text("not a checkpoint at all\n")
    elif damage == "tensor":
        torch.save(torch.zeros(3), path)
    elif damage == "list":
        torch.save([1, 2], path)
    elif damage == "without keys":
        save_checkpoint(path, model={})
    with pytest.raises(ValueError) as exc_info:
        load_checkpoint(path, keys=("step", "history"))
    message = one_line_naming(exc_info, path)
    assert f"python -m mlm_lessons pretrain --out {tmp_path}" in message
    if damage == "without keys":
        assert "it has no 'step', 'history'" in message
    assert load_checkpoint(good, keys=("step",))["step"] == 1


def test_run_directory_files(tmp_path):
    run = RunDir(tmp_path / "run")
    names = {run.checkpoint.name, run.finetuned.name, run.metrics.name, run.config.name, run.tokenizer_file.name,
             run.made_by_file.name}
    assert names == {"checkpoint.pt", "finetuned.pt", "metrics.json", "config.json", "tokenizer.json", "made_by.json"}
    assert all(p.parent == run.path for p in (run.checkpoint, run.finetuned, run.made_by_file))


def test_made_by_record(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.read_made_by() == {}, "a run made without the CLI has no record"
    record = {"commands": ["python -m mlm_lessons pretrain --out run"], "corpus": "files", "data": "the corpus 'files'"}
    assert run.write_made_by(record) == tmp_path / "run" / MADE_BY
    assert run.read_made_by() == record
    for bad in ("{oops", "[1, 2]", '{"commands": "one string"}'):
        run.made_by_file.write_text(bad)
        with pytest.raises(ValueError, match="copy the whole run directory again, or delete the file") as exc_info:
            run.read_made_by()
        one_line_naming(exc_info, run.made_by_file)


def test_load_run_reads_what_pretrain_writes_and_names_a_bad_tokenizer(tmp_path):
    model, tok = pretrain_run(tmp_path / "run")
    loaded, own, ckpt = load_run(tmp_path / "run")
    assert own == tok and loaded.config == model.config and ckpt["step"] == 0
    run = RunDir(tmp_path / "run")
    run.tokenizer_file.unlink()
    with pytest.raises(ValueError, match="is missing; copy the whole run directory again") as exc_info:
        load_run(run.path)
    one_line_naming(exc_info, run.tokenizer_file)
    run.tokenizer_file.write_text("{oops")
    with pytest.raises(ValueError, match="copy the whole run directory again") as exc_info:
        run.load_tokenizer()
    one_line_naming(exc_info, run.tokenizer_file)
    from mlm_lessons.tokenizer import tokenizer_from_vocab

    tokenizer_from_vocab(["x"]).save(run.tokenizer_file)  # another vocabulary beside the checkpoint
    with pytest.raises(ValueError, match="vocabulary") as exc_info:
        load_run(run.path)
    assert str(run.checkpoint) in one_line_naming(exc_info, run.tokenizer_file)


def test_load_run_names_weights_of_another_model(tmp_path):
    pretrain_run(tmp_path / "run")
    run = RunDir(tmp_path / "run")
    ckpt = run.load()
    save_checkpoint(run.checkpoint, **{**ckpt, "model_config": {**ckpt["model_config"], "d_ff": 48}})
    with pytest.raises(ValueError, match="holds no model this package can build") as exc_info:
        load_run(run.path)
    one_line_naming(exc_info, run.checkpoint)


@pytest.mark.parametrize("kind", ["sequence", "token"])
def test_a_finetuning_run_round_trips(tmp_path, kind):
    model, tok = pretrain_run(tmp_path / "general")
    torch.manual_seed(1)
    head = (SequenceClassifier.from_pretrained(model, 3, pooling="mean") if kind == "sequence"
            else TokenClassifier.from_pretrained(model, 2))
    run = RunDir(tmp_path / "ft")
    run.save_finetuned(head, tok, task="some-task", label_names=("a", "b", "c")[: head.num_labels], config=FinetuneConfig(),
                       history=[{"step": 1, "valid_macro_f1": 0.5}], valid={"macro_f1": 0.5}, test={"macro_f1": 0.25}, best_step=1)
    assert sorted(p.name for p in run.path.iterdir()) == ["finetuned.pt", "metrics.json", "tokenizer.json"]
    assert json.loads(run.metrics.read_text()) == {"history": [{"step": 1, "valid_macro_f1": 0.5}], "valid": {"macro_f1": 0.5},
                                                  "test": {"macro_f1": 0.25}}
    loaded, own, ckpt = load_finetuned(run.path)
    assert type(loaded) is type(head) and own == tok and not loaded.training
    assert ckpt["task"] == "some-task" and ckpt["best_step"] == 1 and ckpt["finetune_config"] == FinetuneConfig().to_dict()
    assert getattr(loaded, "pooling", None) == ("mean" if kind == "sequence" else None)
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, head.eval()(ids).logits)


def test_load_finetuned_answers_bad_files(tmp_path):
    model, tok = pretrain_run(tmp_path / "general")
    with pytest.raises(ValueError, match="holds no finetuned.pt") as exc_info:
        load_finetuned(tmp_path / "general")
    one_line_naming(exc_info, tmp_path / "general" / FINETUNED)
    run = RunDir(tmp_path / "ft")
    run.save_finetuned(TokenClassifier.from_pretrained(model, 2), tok, task="t", label_names=["x", "y"], config=FinetuneConfig(),
                       history=[], valid={}, test={}, best_step=0)
    save_checkpoint(run.finetuned, **{**run.load_finetuned(), "kind": "Regressor"})
    with pytest.raises(ValueError, match="'Regressor'") as exc_info:
        load_finetuned(run.path)
    one_line_naming(exc_info, run.finetuned)
    (tmp_path / "general" / CHECKPOINT).replace(run.finetuned)  # a pretraining checkpoint under the fine-tuning name
    with pytest.raises(ValueError, match="is not a finetuned.pt of this package") as exc_info:
        load_finetuned(run.path)
    assert "python -m mlm_lessons finetune --out" in one_line_naming(exc_info, run.finetuned)
    (run.path / TOKENIZER).unlink()
    with pytest.raises(ValueError, match="must be 'SequenceClassifier' or 'TokenClassifier'"):
        run.save_finetuned(model, tok, task="t", label_names=["x", "y"], config=FinetuneConfig(), history=[], valid={},
                           test={}, best_step=0)
