"""The training engine pretraining, DAPT, fine-tuning and contrastive fine-tuning share.

- where a run computes: :func:`pick_device`, :func:`resolve_precision`, :func:`autocast`, :func:`peak_flops`;
- :class:`StepCore`, one optimizer step: the micro-batches' forward and backward passes (gradient
  accumulation, mixed precision, a token mean over the whole step), gradient clipping, AdamW and the
  learning-rate schedule (:func:`lr_factor`: linear warm-up, then linear decay);
- :class:`EarlyStopping`: the best score so far, its weights, and when to give up;
- :func:`fit`, the one training loop: steps, the evaluation cadence, the history, early stopping
  and the best weights restored, as a :class:`FitPlan` says; every kind of training returns its
  :class:`TrainResult`.

The batches come from :mod:`mlm_lessons.batches`, the run directory from :mod:`mlm_lessons.rundir`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ._checks import require_choice, require_int, require_number
from .masking import IGNORE_INDEX
from .settings import PRECISIONS, FitPlan

__all__ = [
    "pick_device", "resolve_precision", "autocast", "peak_flops", "PEAK_TFLOPS", "param_groups", "lr_factor",
    "StepCore", "EarlyStopping", "unwrap", "FitPlan", "TrainResult", "fit",
]


# -- devices, precision, peak FLOPs ----------------------------------------------------------


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA if available (this process's GPU under torchrun), else Apple MPS, else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} asked for, but CUDA is not available here; use device='auto' or 'cpu'")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)  # "cuda": this process's GPU
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={name!r} asked for, but Apple MPS is not available here; use 'auto' or 'cpu'")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"`` for ``precision`` on ``device``; ``"auto"`` is bf16 on a
    GPU that has it, fp16 (with loss scaling) on one that does not, fp32 elsewhere."""
    require_choice(precision, "precision", PRECISIONS)
    if precision != "auto":
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision='bf16' asked for, but this GPU has no bf16 support; use 'fp16' or 'auto'")
        if precision in ("bf16", "fp16") and device.type != "cuda":
            raise ValueError(f"precision={precision!r} is for CUDA GPUs; on {device.type} use 'fp32' or 'auto'")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"  # a T4 has no bf16: fp16 + loss scaling
    return "fp32"


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` (none for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


#: Dense peak TFLOP/s by GPU and precision (vendor figures, no sparsity).
PEAK_TFLOPS = {
    "H100 PCIe": {"bf16": 756, "fp16": 756, "fp32": 51},
    "H100": {"bf16": 989, "fp16": 989, "fp32": 67},
    "H200": {"bf16": 989, "fp16": 989, "fp32": 67},
    "A100": {"bf16": 312, "fp16": 312, "fp32": 19.5},
    "L4": {"bf16": 121, "fp16": 121, "fp32": 30.3},
    "T4": {"fp16": 65, "fp32": 8.1},
}


def peak_flops(device: torch.device, precision: str) -> float | None:
    """The GPU's dense peak in FLOP/s for ``precision``, or None when unknown (CPU, other GPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key in PEAK_TFLOPS:  # ordered: "H100 PCIe" before "H100"
        if all(part in name for part in key.split()):
            tflops = PEAK_TFLOPS[key].get(precision)
            return tflops * 1e12 if tflops else None
    return None


# -- the optimizer and its schedule --------------------------------------------------------------


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's two parameter groups: weight decay for weight matrices and embeddings, none for
    biases and LayerNorm parameters (those with fewer than two dimensions)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> float:
    """The multiple of the peak learning rate at ``step`` (0-based): a linear warm-up over
    ``warmup_steps`` steps, then a linear decay to ``min_lr_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr_ratio + (1 - min_lr_ratio) * max(0.0, 1 - progress)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DistributedDataParallel and ``torch.compile``."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


class StepCore:
    """One optimizer step at a time, for any model whose ``forward(input_ids, attention_mask, labels)``
    returns an output with a ``loss`` (the mean over the batch's labelled positions or examples).

    ``trainable`` is the module whose parameters AdamW updates (the whole model by default; a
    probe passes its head alone). ``world`` processes under DistributedDataParallel each run their
    share of every batch; the gradients are averaged across them.
    """

    def __init__(self, model: torch.nn.Module, *, lr: float, total_steps: int, warmup_steps: int = 0,
                 min_lr_ratio: float = 0.0, weight_decay: float = 0.01, betas: tuple[float, float] = (0.9, 0.98),
                 eps: float = 1e-6, clip_norm: float = 1.0, device: torch.device, precision: str = "fp32",
                 compile: bool = False, world: int = 1, trainable: torch.nn.Module | None = None):
        self.model, self.device, self.precision, self.clip_norm, self.world = model, device, precision, clip_norm, world
        # the fused kernel updates every tensor in one pass (CPU kernels since PyTorch 2.4); without it,
        # PyTorch's default on a CPU is a Python loop over the tensors, about 5% of a cpu-small step
        self.optimizer = torch.optim.AdamW(param_groups(trainable or model, weight_decay), lr=lr, betas=tuple(betas), eps=eps,
                                           fused=device.type in ("cuda", "cpu"))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, warmup_steps=warmup_steps, total_steps=total_steps, min_lr_ratio=min_lr_ratio))
        self.scaler = torch.amp.GradScaler("cuda" if device.type == "cuda" else "cpu", enabled=precision == "fp16")
        self.trained = torch.compile(model) if compile else model
        if world > 1:
            self.trained = torch.nn.parallel.DistributedDataParallel(
                self.trained, device_ids=[device.index] if device.type == "cuda" else None)

    def step(self, batches: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward over the micro-batches of one step, then clip and update.

        The loss is a mean over every labelled position (or example) of the step, in all
        micro-batches and processes, whatever their sizes. Returns ``(loss, grad_norm)`` as tensors
        on the device (no synchronisation).
        """
        counts = [int((b["labels"] != IGNORE_INDEX).sum()) for b in batches]
        if self.world > 1:
            total = torch.tensor(float(sum(counts)), device=self.device)
            dist.all_reduce(total)
            total = total.item()
        else:
            total = sum(counts)
        loss_sum = torch.zeros((), device=self.device)
        for m, (b, count) in enumerate(zip(batches, counts)):
            sync = m == len(batches) - 1 or self.world == 1
            ids, mask, labels = (b[k].to(self.device, non_blocking=True) for k in ("input_ids", "attention_mask", "labels"))
            with (contextlib.nullcontext() if sync else self.trained.no_sync()), autocast(self.device, self.precision):
                out = self.trained(ids, mask, labels)
                # this micro-batch's share of the step's mean (× world: DistributedDataParallel averages the processes)
                part = out.loss * (count / max(total, 1))
            self.scaler.scale(part * self.world).backward()
            loss_sum += part.detach()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.world > 1:
            dist.all_reduce(loss_sum)
        return loss_sum, grad_norm

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])


class EarlyStopping:
    """The best score so far, the weights that scored it, and whether to stop.

    ``update`` returns True once ``patience`` evaluations in a row have not improved on the best by
    more than ``min_delta`` (``patience=None``: never; nothing is kept). ``start_from`` counts a
    model's current weights as the best so far (score ``-inf`` or ``inf``) at step 0: a fine-tuning
    run that never improves returns the weights it started from.
    """

    def __init__(self, patience: int | None, *, min_delta: float = 0.0, higher_is_better: bool = False,
                 start_from: torch.nn.Module | None = None):
        if patience is not None:
            require_int(patience, "patience", why=" (evaluations without improvement) or None")
        require_number(min_delta, "min_delta", at_least=0)
        self.patience, self.min_delta, self.higher = patience, min_delta, higher_is_better
        self.best_score = -float("inf") if higher_is_better else float("inf")
        self.best_step, self.best_state, self.bad = None, None, 0
        if start_from is not None:
            self.best_step, self.best_state = 0, self._copy(start_from)

    @staticmethod
    def _copy(model: torch.nn.Module) -> dict:
        return {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}

    def update(self, score: float, step: int, model: torch.nn.Module) -> bool:
        if self.patience is None:
            return False
        better = score > self.best_score + self.min_delta if self.higher else score < self.best_score - self.min_delta
        if better:
            self.best_score, self.best_step, self.best_state, self.bad = score, step, self._copy(model), 0
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best weights into ``model`` (nothing when none were kept)."""
        if self.best_state is not None:
            unwrap(model).load_state_dict(self.best_state)


# -- the training loop -----------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What every kind of training returns: the model (with the kept weights), its history (training
    and evaluation entries, in order), the step of the kept weights (``best_step``; None when
    nothing was followed), the step early stopping fired at (``stopped_at``), the validation scores
    of the kept weights (``valid``, from its history entry, without the ``valid_`` prefix), the test
    scores where the caller measured them, the time taken, and the run directory (``cached``: loaded
    from the run cache instead of trained)."""

    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    best_step: int | None = None
    stopped_at: int | None = None
    valid: dict = field(default_factory=dict)
    test: dict | None = None
    seconds: float = 0.0
    out_dir: Path | None = None
    cached: bool = False

    def evaluations(self) -> list[dict]:
        """The history's evaluation entries (those with validation scores)."""
        return [h for h in self.history if any(k.startswith("valid_") for k in h)]


def fit(core: StepCore, batches: Callable[[int], list[dict]], plan: FitPlan,
        evaluate: Callable[[int, float | None], dict | None], *, before_step: Callable[[int], None] | None = None,
        log: Callable[..., dict | None] | None = None, save: Callable[[int, int | None], None] | None = None,
        agree: Callable[[bool], bool] | None = None, start: int = 0, history: list[dict] | None = None,
        progress: bool = False, desc: str = "training") -> TrainResult:
    """Train ``core.model`` from step ``start`` as ``plan`` says; the one loop of the package.

    Each step: ``before_step(step)`` (the step's dropout seed), ``core.step(batches(step))``, then
    ``log(done, loss, grad_norm, batches, t0)``, which may return a training entry for the history.
    At an evaluation, ``evaluate(done, train_loss)`` returns the history entry (``train_loss``: the
    mean loss since the last evaluation; None at step 0) or None where this process does not
    evaluate; ``agree(stop)`` makes every process take rank 0's decision. ``save(step, best_step)``
    writes a checkpoint every ``plan.checkpoint_every`` steps. At the end the best weights are restored.
    """
    history = [] if history is None else history
    stopper = EarlyStopping(plan.patience, min_delta=plan.min_delta, higher_is_better=plan.higher_is_better,
                            start_from=core.model if plan.keep_start else None)
    best: dict = {}

    def evaluation(step: int, train_loss: float | None) -> bool:
        nonlocal best
        entry, stop = evaluate(step, train_loss), False
        if entry is not None:
            history.append(entry)
            stop = stopper.update(plan.score(entry), step, core.model)
            if stopper.best_step == step:
                best = {k[len("valid_"):]: v for k, v in entry.items() if k.startswith("valid_")}
        return agree(stop) if agree is not None else stop

    if start == 0 and plan.eval_at_start:
        evaluation(0, None)
    core.trained.train()
    window, stopped_at = [], None
    bar = tqdm(range(start, plan.end), initial=start, total=plan.max_steps, desc=desc, disable=not progress, dynamic_ncols=True)
    for step in bar:
        t0 = time.perf_counter()
        if before_step is not None:
            before_step(step)
        step_batches = batches(step)
        loss, grad_norm = core.step(step_batches)
        done = step + 1
        window.append(loss.item())
        entry = log(done, window[-1], grad_norm, step_batches, t0) if log is not None else None
        if entry is not None:
            history.append(entry)
            bar.set_postfix(loss=f"{entry['train_loss']:.3f}", **({"tok_s": f"{entry['tokens_per_s']:.0f}"} if "tokens_per_s" in entry else {}))
        if done % plan.eval_every == 0 or done == plan.max_steps:
            train_loss, window = sum(window) / len(window), []
            if evaluation(done, train_loss):
                stopped_at = done
                break
        if save is not None and plan.checkpoint_every and done % plan.checkpoint_every == 0 and done != plan.end:
            save(done, stopper.best_step)
    bar.close()
    stopper.restore(core.model)
    return TrainResult(core.model, history, stopper.best_step, stopped_at, best)
