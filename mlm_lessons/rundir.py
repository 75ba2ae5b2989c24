"""A run directory: every file a run leaves behind, and the run cache that finds it again.

A pretraining (or DAPT) run: ``checkpoint.pt`` (weights, optimizer, schedule, random state,
history: everything a resumed run needs), ``metrics.json`` (the history), ``config.json`` (model and
training settings) and ``tokenizer.json``. A fine-tuning run (the CLI's ``finetune``):
``finetuned.pt`` (the head's weights, kind, pooling, task, label names and scores), ``tokenizer.json``
and ``metrics.json``; :func:`load_finetuned` reads it. Beside either, the CLI records the command
lines that made the run in ``made_by.json`` (:meth:`RunDir.read_made_by`), which an exported model's
card quotes. Checkpoints are written atomically and read with ``weights_only=True``; a missing,
truncated, corrupt or foreign file raises a one-line ValueError that names it and says how to
repair the run. The run cache keeps finished runs under ``<cache>/runs/<key>``, the key hashing
everything that decides a run's result (:func:`run_cache_key`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from pathlib import Path

import torch

from ._checks import require_choice
from .corpus.build import cache_dir
from .heads import HEADS, SequenceClassifier
from .model import EncoderConfig, MaskedLM, check_vocabulary, language_model
from .settings import FinetuneConfig
from .tokenizer import MLMTokenizer

__all__ = ["RunDir", "save_checkpoint", "load_checkpoint", "load_run", "load_finetuned", "run_cache_key", "CHECKPOINT",
           "FINETUNED", "METRICS", "TOKENIZER", "CONFIG", "MADE_BY", "CHECKPOINT_KEYS", "RUN_KEYS", "FINETUNED_KEYS",
           "package_digest", "one_line"]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
TOKENIZER = "tokenizer.json"
CONFIG = "config.json"
FINETUNED = "finetuned.pt"
#: What ``pretrain``, ``dapt`` and ``finetune`` record beside a run, for an exported model's card: the
#: command lines that made it (the earlier runs' first), its corpus or task, and ``data``, a sentence
#: saying what the model was (pre)trained on.
MADE_BY = "made_by.json"

#: The keys that tell one of our files from a foreign one: every ``checkpoint.pt`` (:meth:`RunDir.save`),
#: a pretraining run's (what :func:`load_run` reads), a ``finetuned.pt`` (:meth:`RunDir.save_finetuned`).
CHECKPOINT_KEYS = ("step", "history")
RUN_KEYS = (*CHECKPOINT_KEYS, "model", "model_config", "train_config")
FINETUNED_KEYS = ("format", "task", "label_names", "model", "model_config", "kind", "pooling")
FINETUNED_FORMAT = 1

#: What ``torch.load`` raises on bytes that are not a whole checkpoint (truncated, corrupt, another format).
_UNREADABLE = (RuntimeError, EOFError, OSError, KeyError, IndexError, ValueError, TypeError, AttributeError,
               pickle.UnpicklingError, zipfile.BadZipFile)

#: The package's source outside these folders is hashed into every run-cache key: editing any of it
#: invalidates cached runs, wherever code moves. ``teaching/`` sits above the chain and no run imports
#: it (``tests/test_package_structure.py`` checks that), so editing an exercise keeps the cache.
NOT_RUN_CODE = ("teaching",)


def package_digest() -> str:
    """sha256 of the package's Python source that runs can import (every ``.py`` outside ``NOT_RUN_CODE``)."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted(here.rglob("*.py")):
        rel = f.relative_to(here)
        if rel.parts[0] in NOT_RUN_CODE:
            continue
        h.update(rel.as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def one_line(exc: BaseException) -> str:
    """An exception as one short line: the first sentence of its message, after its type unless a ValueError."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0].split(". ")[0][:160] if lines else ""
    if isinstance(exc, ValueError) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _fix(path: Path) -> str:
    """How to repair the run directory that should hold ``path``."""
    run = path.parent
    if path.name == FINETUNED:
        return f"fine-tune it again with `python -m mlm_lessons finetune --out {run}`, or copy the whole run directory again"
    if path.name == CHECKPOINT:
        return f"train it again with `python -m mlm_lessons pretrain --out {run}`, or copy the whole run directory again"
    return "copy the whole run directory again"


def save_checkpoint(path: str | os.PathLike, **state) -> Path:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu", *, keys: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint with ``weights_only=True``: tensors and plain Python values, no code.

    A missing file, bytes ``torch.load`` cannot read (truncated, corrupt) and a foreign file (not a
    dict, or without one of ``keys``) raise a one-line ValueError naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {str(path)!r}; {_fix(path)}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except _UNREADABLE as exc:  # an OSError that is no bad bytes (permissions, say) is named as it is
        why = "" if type(exc) in (PermissionError, IsADirectoryError) else ": it is truncated or corrupt"
        raise ValueError(f"{str(path)!r} cannot be read{why} ({one_line(exc)}); {_fix(path)}") from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{str(path)!r} is not a {path.name} of this package (it holds a {type(ckpt).__name__}, "
                         f"not a dict); {_fix(path)}")
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise ValueError(f"{str(path)!r} is not a {path.name} of this package (it has no {', '.join(map(repr, missing))}); "
                         f"{_fix(path)}")
    return ckpt


def _built(path: Path, build):
    """``build()``, its errors on a checkpoint's contents (a configuration or weights of another
    model) turned into a ValueError that names the file."""
    try:
        return build()
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} holds no model this package can build ({one_line(exc)}); {_fix(path)}") from exc


class RunDir:
    """The files of one run, in ``path``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def cached(cls, key: str) -> "RunDir":
        """The run cache's directory for ``key`` (see :func:`run_cache_key`)."""
        return cls(cache_dir() / "runs" / key)

    checkpoint = property(lambda self: self.path / CHECKPOINT, doc="a pretraining run's checkpoint")
    finetuned = property(lambda self: self.path / FINETUNED, doc="a fine-tuning run's checkpoint")
    metrics = property(lambda self: self.path / METRICS, doc="the history (a fine-tuning run's: with its scores)")
    config = property(lambda self: self.path / CONFIG, doc="a pretraining run's settings")
    tokenizer_file = property(lambda self: self.path / TOKENIZER, doc="the tokenizer the run's model reads with")
    made_by_file = property(lambda self: self.path / MADE_BY, doc="the CLI's record of the commands that made the run")

    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    def has_finetuned(self) -> bool:
        return self.finetuned.is_file()

    def load(self, map_location="cpu", keys: tuple[str, ...] = CHECKPOINT_KEYS) -> dict:
        """The checkpoint (see :func:`load_checkpoint`), which must hold ``keys``."""
        return load_checkpoint(self.checkpoint, map_location=map_location, keys=keys)

    def finished(self, max_steps: int) -> dict | None:
        """The checkpoint of a run that ran to ``max_steps`` or stopped early; None otherwise."""
        if not self.has_checkpoint():
            return None
        ckpt = self.load()
        return ckpt if ckpt["step"] == max_steps or ckpt.get("stopped_at") is not None else None

    def save(self, *, tokenizer, history: list[dict], config: dict, **state) -> None:
        """The checkpoint (``state``, with the history), then the metrics, the configuration and the tokenizer."""
        save_checkpoint(self.checkpoint, history=history, **state)
        self.metrics.write_text(json.dumps(history, indent=1))
        self.config.write_text(json.dumps(config, indent=1))
        tokenizer.save(self.tokenizer_file)

    def load_tokenizer(self) -> MLMTokenizer:
        """The run's tokenizer; a missing or unreadable ``tokenizer.json`` raises a one-line ValueError naming it."""
        path, fix = self.tokenizer_file, "copy the whole run directory again (a model needs the tokenizer saved with it)"
        if not path.is_file():
            raise ValueError(f"{str(path)!r} is missing; {fix}")
        try:
            return MLMTokenizer.load(path)
        except ValueError as exc:
            said = one_line(exc)
            raise ValueError(f"{said if str(path) in said else f'{str(path)!r}: {said}'}; {fix}") from exc

    def read_made_by(self) -> dict:
        """The CLI's record of the run (``commands``, and ``corpus``, ``task``, ``data``); empty for a run
        made without the CLI (e.g. ``pretrain(..., out_dir=...)``)."""
        path = self.made_by_file
        if not path.is_file():
            return {}
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            record = exc
        if not isinstance(record, dict) or not isinstance(record.get("commands", []), list):
            why = one_line(record) if isinstance(record, Exception) else "not a record of commands"
            raise ValueError(f"{str(path)!r} cannot be read ({why}); copy the whole run directory again, or delete "
                             f"the file (a model card then lists only the commands that follow)")
        return record

    def write_made_by(self, record: dict) -> Path:
        """Write the CLI's record of the run (see :meth:`read_made_by`)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.made_by_file.write_text(json.dumps(record, indent=1))
        return self.made_by_file

    def save_finetuned(self, model, tokenizer: MLMTokenizer, *, task: str, label_names, config: FinetuneConfig,
                       history: list[dict], valid: dict, test: dict, best_step: int | None) -> None:
        """A fine-tuning run: ``finetuned.pt`` (the head – a class of :data:`~mlm_lessons.heads.HEADS` –
        its task, labels, settings and scores), then ``tokenizer.json`` and ``metrics.json``."""
        kind = require_choice(type(model).__name__, "the model's class", tuple(HEADS))
        save_checkpoint(self.finetuned, format=FINETUNED_FORMAT, task=task, label_names=list(label_names),
                        model=model.state_dict(), model_config=model.config.to_dict(), kind=kind,
                        pooling=getattr(model, "pooling", None), finetune_config=config.to_dict(),
                        valid=valid, test=test, best_step=best_step)
        tokenizer.save(self.tokenizer_file)
        self.metrics.write_text(json.dumps({"history": history, "valid": valid, "test": test}, indent=1))

    def load_finetuned(self, map_location="cpu") -> dict:
        """``finetuned.pt``, checked: it must hold :data:`FINETUNED_KEYS` and a head of :data:`~mlm_lessons.heads.HEADS`."""
        if not self.has_finetuned():
            raise ValueError(f"{str(self.path)!r} holds no {FINETUNED} ({str(self.finetuned)!r} does not exist); "
                             f"fine-tune with `python -m mlm_lessons finetune --out {self.path}`")
        ckpt = load_checkpoint(self.finetuned, map_location=map_location, keys=FINETUNED_KEYS)
        try:
            require_choice(ckpt["kind"], "its kind", tuple(HEADS))
        except ValueError as exc:
            raise ValueError(f"{str(self.finetuned)!r}: {exc}; {_fix(self.finetuned)}") from exc
        return ckpt


def load_run(run_dir: str | os.PathLike, device: str = "cpu"):
    """``(model, tokenizer, checkpoint)`` from a run directory written by ``pretrain``: a ``MaskedLM``
    (or ``CausalLM``) in eval mode, its vocabulary checked against the saved tokenizer."""
    run = RunDir(run_dir)
    if not run.has_checkpoint():
        other = f" (it holds {FINETUNED}: a fine-tuning run)" if run.has_finetuned() else ""
        raise ValueError(f"{str(run.path)!r} holds no {CHECKPOINT}{other}: {str(run.checkpoint)!r} does not exist; "
                         f"train a model into it with `python -m mlm_lessons pretrain --out {run.path}`")
    ckpt = run.load(map_location=device, keys=RUN_KEYS)
    model = _built(run.checkpoint, lambda: _with_weights(language_model(EncoderConfig(**ckpt["model_config"])), ckpt))
    tokenizer = run.load_tokenizer()
    # a model that records no fingerprint yet takes the tokenizer's
    _matching(run.tokenizer_file, run.checkpoint, lambda: model.adopt_vocabulary(tokenizer))
    return model.to(device).eval(), tokenizer, ckpt


def load_finetuned(run_dir: str | os.PathLike, device: str = "cpu"):
    """``(model, tokenizer, checkpoint)`` from a run directory written by the CLI's ``finetune``: the
    ``SequenceClassifier`` (with its pooling) or ``TokenClassifier`` it trained, in eval mode, its
    vocabulary checked against the saved tokenizer; the checkpoint holds ``task``, ``label_names``,
    ``valid``, ``test`` and ``best_step``."""
    run = RunDir(run_dir)
    ckpt = run.load_finetuned(map_location=device)
    head = HEADS[ckpt["kind"]]

    def build():
        config = EncoderConfig(**ckpt["model_config"])
        kwargs = {"pooling": ckpt["pooling"]} if head is SequenceClassifier else {}
        return _with_weights(head(config, len(ckpt["label_names"]), **kwargs), ckpt)

    model = _built(run.finetuned, build)
    tokenizer = run.load_tokenizer()
    _matching(run.tokenizer_file, run.finetuned, lambda: check_vocabulary(model.config, tokenizer))
    return model.to(device).eval(), tokenizer, ckpt


def _with_weights(model, ckpt: dict):
    model.load_state_dict(ckpt["model"])
    return model


def _matching(tokenizer_file: Path, checkpoint: Path, check) -> None:
    """``check()`` (the tokenizer against the model), its ValueError naming both files."""
    try:
        check()
    except ValueError as exc:
        raise ValueError(f"{str(tokenizer_file)!r} does not match {str(checkpoint)!r}: {one_line(exc)}; "
                         f"copy the whole run directory again") from exc


def _digest_texts(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    return h.hexdigest()


def _digest_state(model: MaskedLM) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def run_cache_key(model: MaskedLM | EncoderConfig, tokenizer, train_texts, valid_texts, config,
                  device: torch.device | str = "cpu", **options) -> str:
    """A key that changes with anything that changes a run's result: the model (its configuration,
    and its weights when it is a trained model), the tokenizer, the texts, the training settings
    (``config``, a ``TrainConfig``, its early-stopping plan included), the device type (and on a CPU
    the number of threads: one and two threads sum in another order, so train other weights), PyTorch's
    version and the package's source (:func:`package_digest`). ``options``: what else decides the
    run (``also_evaluate`` sets, ``world``, ``seed_offset``); ``patience``, ``min_delta`` and
    ``eval_at_start`` given here are the configuration's fields (as ``pretrain`` accepts them)."""
    plan = {k: options.pop(k) for k in ("patience", "min_delta", "eval_at_start") if k in options}
    config = config.replace(**plan) if plan else config
    parts = {
        "model": model.to_dict() if isinstance(model, EncoderConfig) else {**model.config.to_dict(), "state": _digest_state(model)},
        "tokenizer": hashlib.sha256(tokenizer.to_json().encode()).hexdigest(),
        "train": _digest_texts(list(train_texts)), "valid": _digest_texts(list(valid_texts)),
        # the device that runs it, not how it was asked for ("auto" and "cpu" on a CPU are the same run)
        "config": {**config.to_dict(), "device": None}, "device": torch.device(device).type, "torch": torch.__version__,
        "threads": torch.get_num_threads() if torch.device(device).type == "cpu" else None,
        "code": package_digest(),
        "options": {k: ({n: _digest_texts(list(t)) for n, t in v.items()} if isinstance(v, dict) else v) for k, v in sorted(options.items())},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
