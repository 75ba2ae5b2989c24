"""Pretraining with MLM: one ``pretrain`` for the notebook, the command line and ``torchrun``.

Every optimizer step: build this step's batch (dynamic masking), run the micro-batches (gradient
accumulation, mixed precision where the device supports it), clip the gradient norm, step AdamW
and the learning-rate schedule (linear warm-up, then linear decay). Every ``eval_every`` steps:
masked-token loss, accuracy and perplexity on validation text masked once with a fixed seed, so
the curve compares like with like.

Reproducibility: the data order, the masks and the dropout of step ``s`` are derived from
``(seed, rank, s)`` alone, so a run resumed from a checkpoint continues exactly as an uninterrupted
one would (bit for bit on a CPU). Under ``torchrun`` each rank takes its share of every batch, the
gradients are averaged by DistributedDataParallel, and rank 0 evaluates, logs and saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ._checks import require_ints
from .corpus.build import cache_dir
from .masking import Fate, MaskingConfig, mask_once, mask_tokens, next_token_labels, pack_examples, pad_examples
from .model import EncoderConfig, MaskedLM, flops_per_token

__all__ = [
    "TrainConfig", "PRESETS", "preset", "pretrain", "PretrainResult", "evaluate", "pick_device",
    "save_checkpoint", "load_checkpoint", "load_run", "peak_flops", "set_training_seed", "run_cache_key",
    "eval_batches", "train_rows", "param_groups", "static_mask", "seed_offset", "SEED_OFFSET_ENV", "FATE_KEYS", "history_metrics",
]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
TOKENIZER = "tokenizer.json"
CONFIG = "config.json"


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``batch_size`` counts sequences per optimizer step, over all micro-batches
    (``grad_accum``) and all processes."""

    max_steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    max_length: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = 1e-6
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0
    clip_norm: float = 1.0
    eval_every: int = 100
    eval_sequences: int = 512
    log_every: int = 10
    checkpoint_every: int = 0  # 0: only at the end
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # "auto", "fp32", "bf16", "fp16"
    compile: bool = False
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    # how the validation text is masked (once, with ``seed``); None: as ``masking``. The presets train
    # with 40% and evaluate with BERT's 15%, so that their curves compare with the book's baselines.
    eval_masking: MaskingConfig | None = None
    # 0: dynamic masking (new masks every step, as RoBERTa); k >= 1: static masking, each training
    # sequence masked k ways once and for all, copy ``epoch % k`` used in each epoch (BERT's "dupe factor")
    static_masks: int = 0
    # pack consecutive training chunks into rows of max_length (``masking.pack_examples``), so that a
    # step computes on text rather than padding; the validation text is never packed
    pack: bool = False
    # "mlm": masked language modeling; "causal": next-token prediction, for a model with causal=True
    objective: str = "mlm"

    def __post_init__(self):
        if isinstance(self.masking, dict):
            object.__setattr__(self, "masking", MaskingConfig(**self.masking))
        if isinstance(self.eval_masking, dict):
            object.__setattr__(self, "eval_masking", MaskingConfig(**self.eval_masking))
        if self.eval_masking is not None and not isinstance(self.eval_masking, MaskingConfig):
            raise ValueError(f"eval_masking must be a MaskingConfig (or None: mask validation text as training), "
                             f"got {self.eval_masking!r}")
        object.__setattr__(self, "betas", tuple(self.betas))
        require_ints(self, ("max_steps", "batch_size", "grad_accum", "max_length", "eval_every", "eval_sequences", "log_every"), minimum=1)
        require_ints(self, ("warmup_steps", "checkpoint_every", "seed", "static_masks"), minimum=0)
        if not isinstance(self.pack, bool):
            raise ValueError(f"pack must be True or False, got {self.pack!r}")
        if self.objective not in ("mlm", "causal"):
            raise ValueError(f"objective must be 'mlm' (masked LM) or 'causal' (next token), got {self.objective!r}")
        if self.objective == "causal" and self.static_masks:
            raise ValueError(f"static_masks={self.static_masks} has no meaning for the causal objective, which masks nothing; use 0")
        if self.batch_size % self.grad_accum:
            raise ValueError(
                f"batch_size={self.batch_size} must be divisible by grad_accum={self.grad_accum} "
                f"(each micro-batch holds batch_size / grad_accum sequences)"
            )
        if self.max_length < 3:
            raise ValueError(f"max_length must be >= 3, got {self.max_length}")
        if self.warmup_steps >= self.max_steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} must be smaller than max_steps={self.max_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.weight_decay < 0 or self.clip_norm <= 0:
            raise ValueError(f"weight_decay must be >= 0 and clip_norm > 0, got {self.weight_decay!r} and {self.clip_norm!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {self.precision!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


#: What every preset shares: 40% of the positions masked in training (Wettig et al. 2023; chapter 6),
#: BERT's 15% for the validation text, so that every curve is scored like chapter 3's baselines, and
#: training chunks packed into full rows (short docstrings would leave a padded batch half empty).
_PRESET_RECIPE = dict(masking=dict(mask_ratio=0.4), eval_masking=dict(mask_ratio=0.15), pack=True)

#: Named set-ups: (model sizes, training settings). ``cpu-small`` is chapter 5's run on a laptop CPU,
#: the recipe ``benchmarks/cpu_recipe.py`` chose at equal wall-clock time (``benchmarks/RESULTS.md``);
#: the GPU presets share its position scheme and masking.
PRESETS: dict[str, tuple[dict, dict]] = {
    "cpu-small": (
        # no dropout: a few epochs of a tiny model are far from overfitting, and dropout slows it down
        dict(max_len=64, d_model=128, n_layers=2, n_heads=4, d_ff=512, dropout=0.0, positions="rope"),
        dict(max_steps=5200, batch_size=12, max_length=64, lr=1.4e-3, warmup_steps=520, eval_every=200, eval_sequences=256, log_every=50,
             **_PRESET_RECIPE),
    ),
    "colab-t4": (
        dict(max_len=128, d_model=256, n_layers=4, n_heads=4, d_ff=1024, dropout=0.1, positions="rope"),
        dict(max_steps=4000, batch_size=128, max_length=128, lr=7e-4, warmup_steps=300, eval_every=250, log_every=50, **_PRESET_RECIPE),
    ),
    "a100": (
        dict(max_len=128, d_model=512, n_layers=8, n_heads=8, d_ff=2048, dropout=0.1, positions="rope"),
        dict(max_steps=6000, batch_size=256, max_length=128, lr=5e-4, warmup_steps=500, eval_every=500, log_every=50, compile=True,
             **_PRESET_RECIPE),
    ),
    "h100": (
        dict(max_len=128, d_model=768, n_layers=12, n_heads=12, d_ff=3072, dropout=0.1, positions="rope"),
        dict(max_steps=6000, batch_size=256, max_length=128, lr=4e-4, warmup_steps=500, eval_every=500, log_every=50, compile=True,
             **_PRESET_RECIPE),
    ),
}


def preset(name: str, vocab_size: int, **train_overrides) -> tuple[EncoderConfig, TrainConfig]:
    """The model and training configuration of a preset, with training settings overridden.

    Overriding ``max_steps`` alone also scales the warm-up to the same 10% of the run the presets
    use (a short trial run keeps the shape of its schedule); pass ``warmup_steps`` to set it.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    model_kw, train_kw = PRESETS[name]
    train_kw = {**train_kw, **train_overrides}
    if "max_steps" in train_overrides and "warmup_steps" not in train_overrides:
        train_kw["warmup_steps"] = max(1, train_kw["max_steps"] // 10) if train_kw["max_steps"] > 1 else 0
    return EncoderConfig(vocab_size=vocab_size, **model_kw), TrainConfig(**train_kw)


# -- devices, precision, peak FLOPs ----------------------------------------------------------

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


def _precision(config: TrainConfig, device: torch.device) -> str:
    if config.precision != "auto":
        if config.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision='bf16' asked for, but this GPU has no bf16 support; use 'fp16' or 'auto'")
        if config.precision in ("bf16", "fp16") and device.type != "cuda":
            raise ValueError(f"precision={config.precision!r} is for CUDA GPUs; on {device.type} use 'fp32' or 'auto'")
        return config.precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"  # a T4 has no bf16: fp16 + loss scaling
    return "fp32"


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


# -- reproducible randomness ---------------------------------------------------------------------


def _mix(*parts: int) -> int:
    """A 63-bit seed from several integers (seed, rank, step, ...), well spread."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (p + 0x632BE59BD9B4E019 + (h << 6) + (h >> 2))) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


#: Environment variable that shifts every training seed (see :func:`seed_offset`).
SEED_OFFSET_ENV = "MLM_LESSONS_SEED_OFFSET"


def seed_offset() -> int:
    """The number ``$MLM_LESSONS_SEED_OFFSET`` adds to every training seed (0 when it is unset).

    It moves what training draws – initial weights, data order, the masks of each step, dropout,
    a fine-tuning head's initialisation – to another run of the same recipe, without touching a
    line of the code that asked for ``seed=0``. Measuring instruments keep their seeds: the fixed
    evaluation mask, subsamples of labels, sampling from a trained model. The book's tests run the
    notebooks with an offset, so an output that depends on one particular training run cannot pass
    as an exact one.
    """
    raw = os.environ.get(SEED_OFFSET_ENV, "").strip()
    if not raw:
        return 0
    try:
        offset = int(raw)
    except ValueError:
        offset = -1
    if offset < 0:
        raise ValueError(f"{SEED_OFFSET_ENV}={raw!r} must be a whole number >= 0 (the shift added to training seeds); "
                         f"unset it, or set it to 0, for the seeds as written")
    return offset


def set_training_seed(seed: int) -> None:
    """Seed torch's generators (CPU and every GPU): model initialisation and dropout."""
    torch.manual_seed(seed)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(_mix(seed, 7919, epoch)))


def static_mask(example: dict, index: int, copy: int, config: TrainConfig, tokenizer) -> dict:
    """Training sequence ``index`` masked in its ``copy``-th fixed way: a function of (seed, index,
    copy) alone, whatever batch, epoch or padding it lands in."""
    gen = torch.Generator().manual_seed(_mix(config.seed, index, copy, 3))
    return mask_once([example], tokenizer, config.masking, generator=gen)[0]


def _step_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The dataset indices of step ``step``'s global batch: consecutive slices of a fresh
    permutation per epoch (a function of the step alone, so resuming needs no sampler state)."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    return _epoch_order(n, seed, epoch)[k * batch_size : (k + 1) * batch_size].tolist()


# -- distributed ------------------------------------------------------------------------------


def _dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank); (0, 1, 0) when not launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


# -- evaluation ---------------------------------------------------------------------------------


#: The fates of a labelled position, as ``evaluate`` names them in its keys (``mask_loss``, ...).
FATE_KEYS = (("mask", Fate.MASKED), ("random", Fate.RANDOM), ("kept", Fate.KEPT))


@torch.no_grad()
def evaluate(model: MaskedLM, batches: list[dict], device: torch.device, precision: str = "fp32") -> dict:
    """Masked-token loss (token mean), accuracy and perplexity over pre-masked batches.

    ``loss``, ``accuracy``, ``perplexity`` and ``positions`` cover every labelled position. Batches
    that carry the ``fate`` of their positions (those of :func:`eval_batches`) are also scored apart
    by what the model saw there: ``mask_loss``, ``mask_accuracy``, ``mask_positions`` where it saw
    ``[MASK]`` – the headline, predicting from context alone – and the same for ``random`` (a wrong
    token to repair) and ``kept`` (the right token, visible: a model can copy it without context).
    A fate that holds no position (``p_random=0``, say) has ``{fate}_positions`` 0 and no loss or
    accuracy.
    """
    was_training = model.training
    model.eval()
    sums = {name: [0.0, 0, 0] for name in ("all", *(n for n, _ in FATE_KEYS))}  # loss sum, right, count
    split = all("fate" in b for b in batches)
    try:
        for b in batches:
            ids, mask, labels = (b[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
            with _autocast(device, precision):
                out = model(ids, mask, labels)
            selected = labels != -100
            targets = labels[selected]
            token_loss = F.cross_entropy(out.logits.float(), targets, reduction="none")  # one loss per labelled position
            right = out.logits.argmax(-1) == targets
            groups = [("all", torch.ones_like(targets, dtype=torch.bool))]
            if split:
                fate = b["fate"].to(device)[selected]
                groups += [(name, fate == code) for name, code in FATE_KEYS]
            for name, where in groups:
                sums[name][0] += token_loss[where].sum().item()
                sums[name][1] += int(right[where].sum())
                sums[name][2] += int(where.sum())
    finally:
        model.train(was_training)
    total, correct, count = sums["all"]
    if count == 0:
        raise ValueError("the evaluation batches hold no labelled position")
    loss = total / count
    result = {"loss": loss, "accuracy": correct / count, "perplexity": math.exp(loss), "positions": count}
    if split:  # a fate with no position in these batches gets its count (0) and no loss or accuracy
        for name, _ in FATE_KEYS:
            total, correct, count = sums[name]
            if count:
                result[f"{name}_loss"], result[f"{name}_accuracy"] = total / count, correct / count
            result[f"{name}_positions"] = count
    return result


def history_metrics(name: str, metrics: dict) -> dict:
    """An evaluation as ``pretrain``'s history logs it: ``{name}_loss``, ``{name}_accuracy``,
    ``{name}_perplexity`` over every labelled position, and, where ``metrics`` has them,
    ``{name}_mask_loss``, ``{name}_mask_accuracy`` (the ``[MASK]`` positions: the headline) and the
    same for ``random`` and ``kept``."""
    entry = {f"{name}_{k}": metrics[k] for k in ("loss", "accuracy", "perplexity")}
    for fate, _ in FATE_KEYS:
        for k in ("loss", "accuracy"):
            if f"{fate}_{k}" in metrics:
                entry[f"{name}_{fate}_{k}"] = metrics[f"{fate}_{k}"]
    return entry


def train_rows(tokenizer, texts, config: TrainConfig) -> list[dict]:
    """The sequences :func:`pretrain` draws its batches from: every text cut into chunks of
    ``config.max_length`` (``encode_chunks``), packed into rows when ``config.pack``."""
    chunks = tokenizer.encode_chunks(texts, max_length=config.max_length)
    return pack_examples(chunks, max_length=config.max_length) if config.pack else chunks


def eval_batches(tokenizer, texts, config: TrainConfig, batch_size: int = 64) -> list[dict]:
    """Validation batches masked once (``config.eval_masking``, else ``config.masking``) with a fixed
    seed (``config.seed``): every evaluation of a run, and of runs with the same seed, scores the
    same masked positions. Each batch carries the ``fate``
    of its positions, so :func:`evaluate` scores the ``[MASK]``, random and kept ones apart. (With
    the causal objective: next-token labels at every position.)"""
    examples = tokenizer.encode_chunks(texts, max_length=config.max_length)[: config.eval_sequences]
    if not examples:
        raise ValueError("the validation texts give no sequence to evaluate on")
    if config.objective == "causal":
        batches = [pad_examples(examples[i : i + batch_size], pad_id=tokenizer.pad_id) for i in range(0, len(examples), batch_size)]
        for b in batches:
            b.pop("word_ids", None)
            b["labels"] = next_token_labels(b["input_ids"], b["attention_mask"])
        return batches
    masking = config.eval_masking or config.masking
    masked = mask_once(examples, tokenizer, masking, generator=torch.Generator().manual_seed(_mix(config.seed, 424242)))
    return [pad_examples(masked[i : i + batch_size], pad_id=tokenizer.pad_id) for i in range(0, len(masked), batch_size)]


# -- checkpoints --------------------------------------------------------------------------------


def _unwrap(model: torch.nn.Module) -> MaskedLM:
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


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


def load_run(run_dir: str | os.PathLike, device: str = "cpu"):
    """``(model, tokenizer, checkpoint)`` from a run directory written by :func:`pretrain`."""
    from .tokenizer import MLMTokenizer

    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT).is_file():
        raise ValueError(f"{str(run_dir)!r} holds no {CHECKPOINT}; train with `python -m mlm_lessons pretrain --out {run_dir}`")
    ckpt = load_checkpoint(run_dir / CHECKPOINT, map_location=device)
    model = MaskedLM(EncoderConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), MLMTokenizer.load(run_dir / TOKENIZER), ckpt


# -- the training loop --------------------------------------------------------------------------


@dataclass
class PretrainResult:
    """The trained model, the log (training entries and evaluations), where the run was written.

    With early stopping (``patience``), ``model`` holds the weights of ``best_step`` and
    ``stopped_at`` is the step at which training stopped (``None`` if it ran to ``max_steps``).
    ``cached`` says the run was loaded from the run cache rather than trained now.
    """

    model: MaskedLM
    history: list[dict]
    out_dir: Path | None
    best_step: int | None = None
    stopped_at: int | None = None
    cached: bool = False

    def evaluations(self) -> list[dict]:
        return [h for h in self.history if "valid_loss" in h]


# -- the run cache ------------------------------------------------------------------------------

#: The modules whose code decides what a run computes: editing one invalidates cached runs.
_RUN_CODE = ("tokenizer.py", "masking.py", "objective.py", "model.py", "training.py")


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


def run_cache_key(model: MaskedLM | EncoderConfig, tokenizer, train_texts, valid_texts, config: TrainConfig,
                  device: torch.device | str = "cpu", **options) -> str:
    """A key that changes with anything that changes a run's result: the model (its configuration,
    and its weights when it is a trained model), the tokenizer, the texts, the training settings,
    the device type, PyTorch's version and the package's training code."""
    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / f).read_bytes() for f in _RUN_CODE)).hexdigest()
    parts = {
        "model": model.to_dict() if isinstance(model, EncoderConfig) else {**model.config.to_dict(), "state": _digest_state(model)},
        "tokenizer": hashlib.sha256(tokenizer.to_json().encode()).hexdigest(),
        "train": _digest_texts(list(train_texts)), "valid": _digest_texts(list(valid_texts)),
        # the device that runs it, not how it was asked for ("auto" and "cpu" on a CPU are the same run)
        "config": {**config.to_dict(), "device": None}, "device": torch.device(device).type, "torch": torch.__version__, "code": code,
        "options": {k: ({n: _digest_texts(list(t)) for n, t in v.items()} if isinstance(v, dict) else v) for k, v in sorted(options.items())},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _cached_result(run_dir: Path, model: MaskedLM, max_steps: int) -> PretrainResult | None:
    """The finished run in ``run_dir``, or None (no run, or one that was interrupted)."""
    if not (run_dir / CHECKPOINT).is_file():
        return None
    ckpt = load_checkpoint(run_dir / CHECKPOINT)
    if ckpt["step"] != max_steps and ckpt.get("stopped_at") is None:
        return None
    model.load_state_dict(ckpt["model"])
    return PretrainResult(model, list(ckpt["history"]), run_dir, ckpt.get("best_step"), ckpt.get("stopped_at"), cached=True)


def _lr_lambda(config: TrainConfig):
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * max(0.0, 1 - progress)

    return factor


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's two parameter groups: weight decay for weight matrices and embeddings, none for
    biases and LayerNorm parameters (those with fewer than two dimensions)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _optimizer(model: MaskedLM, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    # the fused kernel updates every tensor in one pass (CPU kernels since PyTorch 2.4); without it,
    # PyTorch's default on a CPU is a Python loop over the tensors, about 5% of a cpu-small step
    return torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas,
                             eps=config.adam_eps, fused=device.type in ("cuda", "cpu"))


def pretrain(
    model: MaskedLM | EncoderConfig,
    tokenizer,
    train_texts,
    valid_texts,
    config: TrainConfig,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    also_evaluate: dict[str, list[str]] | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    eval_at_start: bool = False,
    cache: bool = False,
) -> PretrainResult:
    """Pretrain ``model`` (or a new one built from an ``EncoderConfig``) with masked language modeling.

    ``train_texts``/``valid_texts`` are lists of documents (cut into chunks of ``max_length``).
    With ``out_dir`` the run writes ``checkpoint.pt``, ``tokenizer.json``, ``metrics.json`` and
    ``config.json`` there; ``resume=True`` continues from its checkpoint; ``stop_after`` ends this
    session after that step with a checkpoint (the schedule still runs to ``max_steps``).

    ``also_evaluate={"general": texts}`` evaluates on more validation sets at every evaluation
    (logged as ``general_loss``, ``general_accuracy``); ``eval_at_start`` adds an evaluation at step
    0. ``patience=k`` stops early once the validation loss at the ``[MASK]`` positions (a causal
    model's: its next-token loss) has not improved by more than ``min_delta`` in ``k`` evaluations
    in a row, and returns (and saves) the best weights.
    ``cache=True`` keeps the finished run under the cache directory, keyed by everything that
    decides its result (:func:`run_cache_key`), and loads it instead of training when it exists.

    What training draws – the initial weights, the data order, the masks and the dropout of every
    step – comes from ``config.seed`` plus :func:`seed_offset` (``$MLM_LESSONS_SEED_OFFSET``); the
    evaluation mask comes from ``config.seed`` alone.
    """
    from tqdm.auto import tqdm

    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    also_evaluate = dict(also_evaluate or {})
    for name, texts in also_evaluate.items():
        if not isinstance(name, str) or not name.isidentifier() or name in ("valid", "train"):
            raise ValueError(f"also_evaluate names must be identifiers other than 'valid' and 'train', got {name!r}")
        if isinstance(texts, str):
            raise ValueError(f"also_evaluate[{name!r}] must be a list of texts, got a single str; wrap it: [text]")
    if patience is not None and (not isinstance(patience, int) or isinstance(patience, bool) or patience < 1):
        raise ValueError(f"patience must be a positive int (evaluations without improvement) or None, got {patience!r}")
    if not min_delta >= 0:
        raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
    if patience is not None and (resume or stop_after is not None):
        raise ValueError("early stopping (patience) cannot be combined with resume or stop_after; run it in one go")
    if cache and (out_dir is not None or resume or stop_after is not None):
        raise ValueError("cache=True chooses its own run directory; do not pass out_dir, resume or stop_after with it")
    offset = seed_offset()
    seed = config.seed + offset  # what training draws; the evaluation mask keeps config.seed
    rank, world, local_rank = _dist_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo")
    if config.batch_size % (config.grad_accum * world):
        raise ValueError(
            f"batch_size={config.batch_size} must be divisible by grad_accum × processes = "
            f"{config.grad_accum} × {world}"
        )
    device = pick_device(config.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    precision = _precision(config, device)
    if not isinstance(model, (MaskedLM, EncoderConfig)):
        raise ValueError(f"model must be a MaskedLM or an EncoderConfig, got {type(model).__name__}")
    train_texts, valid_texts = list(train_texts), list(valid_texts)
    if cache:
        key = run_cache_key(model, tokenizer, train_texts, valid_texts, config, device, also_evaluate=also_evaluate,
                            patience=patience, min_delta=min_delta, eval_at_start=eval_at_start, world=world,
                            seed_offset=offset)
        out_dir = cache_dir() / "runs" / key
        found = _cached_result(out_dir, MaskedLM(model.config if isinstance(model, MaskedLM) else model), config.max_steps)
        if found is not None:
            if isinstance(model, MaskedLM):  # the caller's model ends up trained, as without the cache
                model.load_state_dict(found.model.state_dict())
                found.model = model
            found.model.to(device)
            return found
    if isinstance(model, EncoderConfig):
        set_training_seed(seed)
        model = MaskedLM(model)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"the model's vocab_size={model.config.vocab_size} differs from the tokenizer's {tokenizer.vocab_size}")
    if model.config.causal != (config.objective == "causal"):
        raise ValueError(f"objective={config.objective!r} needs a model with causal={config.objective == 'causal'}, "
                         f"this one has causal={model.config.causal}: a masked LM must see both sides, a causal LM only the left")
    if config.max_length > model.config.max_len:
        raise ValueError(f"max_length={config.max_length} exceeds the model's max_len={model.config.max_len}")
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and (out_dir is None or not (out_dir / CHECKPOINT).is_file()):
        raise ValueError(f"resume=True needs a checkpoint in out_dir, found none in {str(out_dir)!r}")

    train = train_rows(tokenizer, train_texts, config)
    if len(train) < config.batch_size:
        raise ValueError(f"{len(train)} training sequences are fewer than one batch of {config.batch_size}")
    eval_sets = {}
    if rank == 0:
        eval_sets = {"valid": eval_batches(tokenizer, valid_texts, config)}
        eval_sets.update({name: eval_batches(tokenizer, list(texts), config) for name, texts in also_evaluate.items()})

    model = model.to(device)
    optimizer = _optimizer(model, config, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
    scaler = torch.amp.GradScaler("cuda" if device.type == "cuda" else "cpu", enabled=precision == "fp16")
    start, history = 0, []
    if resume:
        ckpt = load_checkpoint(out_dir / CHECKPOINT, map_location=device)
        if ckpt["model_config"] != model.config.to_dict():
            raise ValueError("the checkpoint's model configuration differs from this model's; resume with the same preset")
        if ckpt.get("stopped_at") is not None:
            raise ValueError(f"the run in {str(out_dir)!r} stopped early at step {ckpt['stopped_at']}; there is nothing to resume")
        if ckpt.get("seed_offset", 0) != offset:
            raise ValueError(f"the run in {str(out_dir)!r} was trained with {SEED_OFFSET_ENV}={ckpt.get('seed_offset', 0)}, "
                             f"this session has {offset}; resume with the same value, or the rest of the run draws other data")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        start, history = ckpt["step"], list(ckpt["history"])
    trained = model
    if config.compile:
        trained = torch.compile(trained)
    if world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(trained, device_ids=[device.index] if device.type == "cuda" else None)

    best = {"loss": math.inf, "step": None, "state": None, "bad": 0}

    def run_evaluation(step: int) -> bool:
        """Evaluate on every set; True when early stopping says stop."""
        entry = {"step": step}
        for name, batches in eval_sets.items():
            entry.update(history_metrics(name, evaluate(_unwrap(model), batches, device, precision)))
        history.append(entry)
        if patience is None:
            return False
        watched = entry.get("valid_mask_loss", entry["valid_loss"])  # the [MASK] loss; causal LMs: their only loss
        if watched < best["loss"] - min_delta:
            best.update(loss=watched, step=step, bad=0,
                        state={k: v.detach().clone() for k, v in _unwrap(model).state_dict().items()})
            return False
        best["bad"] += 1
        return best["bad"] >= patience

    def should_stop(stop: bool) -> bool:
        if world > 1 and patience is not None:  # rank 0 decides, every rank follows
            flag = torch.tensor(float(stop), device=device)
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    def checkpoint(step: int, stopped_at: int | None = None) -> None:
        if rank != 0 or out_dir is None:
            return
        rng = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        save_checkpoint(
            out_dir / CHECKPOINT, format=1, step=step, model=_unwrap(model).state_dict(),
            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), scaler=scaler.state_dict(),
            rng=rng, model_config=model.config.to_dict(), train_config=config.to_dict(), history=history,
            best_step=best["step"], stopped_at=stopped_at, seed_offset=offset,
        )
        (out_dir / METRICS).write_text(json.dumps(history, indent=1))
        (out_dir / CONFIG).write_text(json.dumps({"model": model.config.to_dict(), "train": config.to_dict(), "seed_offset": offset,
                                                  "precision": precision, "device": str(device), "processes": world}, indent=1))
        tokenizer.save(out_dir / TOKENIZER)

    micro = config.batch_size // (config.grad_accum * world)
    static_config = config.replace(seed=seed)  # static masks are training draws too
    flops = flops_per_token(model.config, config.max_length, 1.0 if config.objective == "causal" else config.masking.mask_ratio)
    peak = peak_flops(device, precision)
    end = config.max_steps if stop_after is None else min(config.max_steps, stop_after)
    bar = tqdm(range(start, end), initial=start, total=config.max_steps, desc="pretraining",
               disable=not progress or rank != 0, dynamic_ncols=True)
    trained.train()
    window = {"loss": 0.0, "steps": 0, "tokens": 0, "positions": 0, "time": 0.0}
    stopped_at = None
    if start == 0 and (eval_at_start or patience is not None):
        should_stop(run_evaluation(0) if rank == 0 else False)
    for step in bar:
        t0 = time.perf_counter()
        set_training_seed(_mix(seed, rank, step))  # dropout of this step, on this rank
        indices = _step_indices(len(train), config.batch_size, seed, step)[rank::world]
        batches = []
        for m in range(config.grad_accum):
            part_indices = indices[m * micro : (m + 1) * micro]
            examples = [train[i] for i in part_indices]
            if config.static_masks:  # the same masks for sequence i in every epoch e with the same e % k
                copy = (step // max(1, len(train) // config.batch_size)) % config.static_masks
                examples = [static_mask(ex, i, copy, static_config, tokenizer) for ex, i in zip(examples, part_indices)]
            b = pad_examples(examples, pad_id=tokenizer.pad_id, pad_to_multiple_of=8 if device.type == "cuda" else None)
            word_ids = b.pop("word_ids", None)
            if config.objective == "causal":
                b["labels"] = next_token_labels(b["input_ids"], b["attention_mask"])
            elif not config.static_masks:
                gen = torch.Generator().manual_seed(_mix(seed, rank, step, m, 1))
                b["input_ids"], b["labels"] = mask_tokens(
                    b["input_ids"], config.masking, mask_token_id=tokenizer.mask_id, vocab_size=tokenizer.vocab_size,
                    special_ids=tokenizer.special_ids, generator=gen, word_ids=word_ids,
                )
            batches.append({k: v.to(device, non_blocking=True) for k, v in b.items()})
        n_labels = torch.tensor(float(sum(int((b["labels"] != -100).sum()) for b in batches)), device=device)
        if world > 1:
            dist.all_reduce(n_labels)
        loss_sum = torch.zeros((), device=device)
        for m, b in enumerate(batches):
            sync = m == len(batches) - 1 or world == 1
            with (contextlib.nullcontext() if sync else trained.no_sync()), _autocast(device, precision):
                out = trained(b["input_ids"], b["attention_mask"], b["labels"])
                # a token mean over the whole step: sum over this micro-batch / all labels of the step
                # (× world: DistributedDataParallel averages the gradients of the processes)
                part = out.loss * (b["labels"] != -100).sum() / n_labels.clamp(min=1)
            scaler.scale(part * world).backward()
            loss_sum += part.detach()
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        if world > 1:
            dist.all_reduce(loss_sum)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        window["loss"] += loss_sum.item()
        window["steps"] += 1
        window["tokens"] += sum(int(b["attention_mask"].sum()) for b in batches) * world
        window["positions"] += sum(b["attention_mask"].numel() for b in batches) * world
        window["time"] += time.perf_counter() - t0
        done = step + 1
        if done % config.log_every == 0 or done == config.max_steps or done == end:
            entry = {"step": done, "train_loss": window["loss"] / window["steps"], "lr": scheduler.get_last_lr()[0],
                     "grad_norm": float(grad_norm), "tokens_per_s": window["tokens"] / window["time"]}
            if peak:
                entry["mfu"] = flops * window["positions"] / window["time"] / (peak * world)
            history.append(entry)
            bar.set_postfix(loss=f"{entry['train_loss']:.3f}", tok_s=f"{entry['tokens_per_s']:.0f}")
            window = {k: 0 if k != "time" else 0.0 for k in window}
        if done % config.eval_every == 0 or done == config.max_steps:
            if should_stop(run_evaluation(done) if rank == 0 else False):
                stopped_at = done
                break
        if config.checkpoint_every and done % config.checkpoint_every == 0 and done != end:
            checkpoint(done)
    bar.close()
    if best["state"] is not None:  # early stopping: keep the best weights, not the last
        _unwrap(model).load_state_dict(best["state"])
    checkpoint(stopped_at or end, stopped_at)
    if world > 1:
        dist.barrier()
    return PretrainResult(_unwrap(model), history, out_dir, best["step"], stopped_at)
