"""A run directory: what a pretraining (or DAPT) run leaves behind, and the run cache that finds it again.

``checkpoint.pt`` (weights, optimizer, schedule, random state, history: everything a resumed run
needs), ``metrics.json`` (the history), ``config.json`` (model and training settings) and
``tokenizer.json``. Checkpoints are written atomically and read with ``weights_only=True``. A
fine-tuning run (the CLI's ``finetune``) leaves ``finetuned.pt`` instead of ``checkpoint.pt`` (the
head's weights, kind, pooling, task, label names and scores), which :func:`mlm_lessons.finetuning.load_finetuned` reads. The run
cache keeps finished runs under ``<cache>/runs/<key>``, the key hashing everything that decides a
run's result (:func:`run_cache_key`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .corpus.build import cache_dir
from .model import EncoderConfig, MaskedLM, language_model

__all__ = ["RunDir", "save_checkpoint", "load_checkpoint", "load_run", "run_cache_key", "CHECKPOINT", "FINETUNED", "METRICS",
           "TOKENIZER", "CONFIG"]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
TOKENIZER = "tokenizer.json"
CONFIG = "config.json"
FINETUNED = "finetuned.pt"

#: The modules whose code decides what a run computes: editing one invalidates cached runs.
RUN_CODE = ("tokenizer.py", "masking.py", "objective.py", "model.py", "seeding.py", "batches.py", "engine.py", "training.py")


def save_checkpoint(path: str | os.PathLike, **state) -> Path:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``: tensors and plain Python values, no code."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {str(path)!r}")
    return torch.load(path, map_location=map_location, weights_only=True)


class RunDir:
    """The files of one run, in ``path``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def cached(cls, key: str) -> "RunDir":
        """The run cache's directory for ``key`` (see :func:`run_cache_key`)."""
        return cls(cache_dir() / "runs" / key)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    def load(self, map_location="cpu") -> dict:
        return load_checkpoint(self.checkpoint, map_location=map_location)

    def finished(self, max_steps: int) -> dict | None:
        """The checkpoint of a run that ran to ``max_steps`` or stopped early; None otherwise."""
        if not self.has_checkpoint():
            return None
        ckpt = self.load()
        return ckpt if ckpt["step"] == max_steps or ckpt.get("stopped_at") is not None else None

    def save(self, *, tokenizer, history: list[dict], config: dict, **state) -> None:
        """The checkpoint (``state``, with the history), then the metrics, the configuration and the tokenizer."""
        save_checkpoint(self.checkpoint, history=history, **state)
        (self.path / METRICS).write_text(json.dumps(history, indent=1))
        (self.path / CONFIG).write_text(json.dumps(config, indent=1))
        tokenizer.save(self.path / TOKENIZER)


def load_run(run_dir: str | os.PathLike, device: str = "cpu"):
    """``(model, tokenizer, checkpoint)`` from a run directory written by ``pretrain``: a ``MaskedLM``
    (or ``CausalLM``) in eval mode, its vocabulary checked against the saved tokenizer."""
    from .tokenizer import MLMTokenizer

    run = RunDir(run_dir)
    if not run.has_checkpoint():
        raise ValueError(f"{str(run.path)!r} holds no {CHECKPOINT}; train with `python -m mlm_lessons pretrain --out {run.path}`")
    ckpt = run.load(map_location=device)
    model = language_model(EncoderConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    tokenizer = MLMTokenizer.load(run.path / TOKENIZER)
    model.check_vocabulary(tokenizer)
    return model.to(device).eval(), tokenizer, ckpt


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
    (``config``, a ``TrainConfig``), the device type, PyTorch's version and the package's training code."""
    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / f).read_bytes() for f in RUN_CODE)).hexdigest()
    parts = {
        "model": model.to_dict() if isinstance(model, EncoderConfig) else {**model.config.to_dict(), "state": _digest_state(model)},
        "tokenizer": hashlib.sha256(tokenizer.to_json().encode()).hexdigest(),
        "train": _digest_texts(list(train_texts)), "valid": _digest_texts(list(valid_texts)),
        # the device that runs it, not how it was asked for ("auto" and "cpu" on a CPU are the same run)
        "config": {**config.to_dict(), "device": None}, "device": torch.device(device).type, "torch": torch.__version__, "code": code,
        "options": {k: ({n: _digest_texts(list(t)) for n, t in v.items()} if isinstance(v, dict) else v) for k, v in sorted(options.items())},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
