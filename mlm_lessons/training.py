"""Pretraining with MLM: one ``pretrain`` for the notebook, the command line and ``torchrun``.

``pretrain`` is orchestration over the engine: the rows of the training text
(:func:`train_rows`) and a batch source (:class:`~mlm_lessons.batches.PretrainBatches`: dynamic
or static masking, or next-token labels), the step core (:class:`~mlm_lessons.engine.StepCore`:
micro-batches, mixed precision, clipping, AdamW, warm-up and linear decay), the validation text
masked once with a fixed seed (:func:`eval_batches`, scored by :func:`evaluate` at the ``[MASK]``,
random and kept positions apart), the loop (:func:`~mlm_lessons.engine.fit`, following the plan
of the configuration: :meth:`~mlm_lessons.settings.TrainConfig.plan`), and the run directory
(:class:`~mlm_lessons.rundir.RunDir`: checkpoint, metrics, config, run cache). The configuration
and the presets are in :mod:`mlm_lessons.settings`.

Reproducibility: the data order, the masks and the dropout of step ``s`` are derived from
``(seed, rank, s)`` alone (:mod:`mlm_lessons.seeding`), so a run resumed from a checkpoint continues
exactly as an uninterrupted one would (bit for bit on a CPU). Under ``torchrun`` each rank takes its
share of every batch, the gradients are averaged by DistributedDataParallel, and rank 0 evaluates,
logs and saves.
"""

from __future__ import annotations

import math
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .batches import PretrainBatches
from .engine import StepCore, TrainResult, autocast, fit, peak_flops, pick_device, resolve_precision
from .masking import Fate, mask_once, next_token_labels, pack_examples, pad_examples
from .model import EncoderConfig, MaskedLM, evaluating, flops_per_token, is_language_model, language_model
from .rundir import CHECKPOINT, RUN_KEYS, RunDir, load_checkpoint, load_run, run_cache_key, save_checkpoint
from .settings import PRESETS, TrainConfig, check_accumulation
from .seeding import SEED_OFFSET_ENV, seed_offset, set_training_seed, stream_generator, stream_seed

__all__ = [
    "TrainConfig", "PRESETS", "preset", "pretrain", "PretrainResult", "Evaluator", "evaluate", "eval_batches", "train_rows",
    "FATE_KEYS", "history_metrics",
    # where they live now: engine, rundir, seeding (kept importable from here for the chapters and scripts)
    "pick_device", "peak_flops", "save_checkpoint", "load_checkpoint", "load_run", "run_cache_key", "CHECKPOINT",
    "set_training_seed", "seed_offset", "SEED_OFFSET_ENV",
]


def preset(name: str, vocab_size: int, **train_overrides) -> tuple[EncoderConfig, TrainConfig]:
    """The model and training configuration of a preset, with training settings overridden.

    Every preset's model is in ModernBERT's layout, so whatever it trains exports to
    ``ModernBertForMaskedLM`` (``mlm_lessons.hf``). Overriding ``max_steps`` alone also scales the
    warm-up to the same 10% of the run the presets use (a short trial run keeps the shape of its
    schedule); pass ``warmup_steps`` to set it.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if "layout" in train_overrides:
        raise ValueError(f"layout={train_overrides['layout']!r}: every preset is in ModernBERT's layout, which exports as it is; "
                         f"for another layout build an EncoderConfig (chapter 4) and pass it to pretrain")
    model_kw, train_kw = PRESETS[name]
    train_kw = {**train_kw, **train_overrides}
    if "max_steps" in train_overrides and "warmup_steps" not in train_overrides:
        train_kw["warmup_steps"] = max(1, train_kw["max_steps"] // 10) if train_kw["max_steps"] > 1 else 0
    return EncoderConfig(vocab_size=vocab_size, **model_kw), TrainConfig(**train_kw)



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
    sums = {name: [0.0, 0, 0] for name in ("all", *(n for n, _ in FATE_KEYS))}  # loss sum, right, count
    split = all("fate" in b for b in batches)
    with evaluating(model):
        for b in batches:
            ids, mask, labels = (b[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
            with autocast(device, precision):
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
    masked = mask_once(examples, tokenizer, masking, generator=stream_generator(config.seed, "eval-mask"))
    return [pad_examples(masked[i : i + batch_size], pad_id=tokenizer.pad_id) for i in range(0, len(masked), batch_size)]


#: What :func:`pretrain` returns: the engine's one result type (``model``, ``history``, ``out_dir``,
#: ``best_step`` and ``stopped_at`` with early stopping, ``cached`` when loaded from the run cache).
PretrainResult = TrainResult

#: ``pretrain``'s keyword arguments that default to the configuration's own early-stopping plan.
_FROM_CONFIG = object()


# -- pretraining ----------------------------------------------------------------------------------


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
    patience=_FROM_CONFIG,
    min_delta=_FROM_CONFIG,
    eval_at_start=_FROM_CONFIG,
    cache: bool = False,
) -> TrainResult:
    """Pretrain ``model`` (or a new one built from an ``EncoderConfig``) with masked language modeling
    (or, for a causal model and ``objective="causal"``, next-token prediction), or a published one (``load_published``).

    ``train_texts``/``valid_texts`` are lists of documents (cut into chunks of ``max_length``).
    With ``out_dir`` the run writes ``checkpoint.pt``, ``tokenizer.json``, ``metrics.json`` and
    ``config.json`` there; ``resume=True`` continues from its checkpoint; ``stop_after`` ends this
    session after that step with a checkpoint (the schedule still runs to ``max_steps``).

    ``also_evaluate={"general": texts}`` evaluates on more validation sets (logged as ``general_loss``, ...).
    The evaluation and stopping plan is the configuration's (:meth:`TrainConfig.plan`): with
    ``patience=k`` the run stops once the validation ``[MASK]`` loss (a causal model's: its only
    loss) has not improved by more than ``min_delta`` in ``k`` evaluations in a row, and returns (and
    saves) the best weights; ``eval_at_start`` adds an evaluation at step 0. Given here, these three
    replace the configuration's. ``cache=True`` keeps the finished run in the run cache, keyed by
    everything that decides its result (:func:`run_cache_key`), and loads it when it exists.

    What training draws – the initial weights, the data order, the masks and the dropout of every
    step – comes from ``config.seed`` plus :func:`seed_offset` (``$MLM_LESSONS_SEED_OFFSET``); the
    evaluation mask comes from ``config.seed`` alone. The model's configuration records the
    tokenizer's vocabulary (``vocab_fingerprint``).
    """
    config = _with_plan(config, patience=patience, min_delta=min_delta, eval_at_start=eval_at_start)
    also_evaluate = _check_options(config, also_evaluate, resume, stop_after, cache, out_dir)
    offset = seed_offset()
    seed = config.seed + offset  # what training draws; the evaluation mask keeps config.seed
    rank, world, device = _distributed(config)
    precision = resolve_precision(config.precision, device)
    model = _for_vocabulary(model, tokenizer, config)
    train_texts, valid_texts = list(train_texts), list(valid_texts)
    run = RunDir(out_dir) if out_dir is not None else None
    if cache:
        run = RunDir.cached(run_cache_key(model, tokenizer, train_texts, valid_texts, config, device, also_evaluate=also_evaluate,
                                          world=world, seed_offset=offset))
        found = _cached_result(run, model, config.max_steps, device)
        if found is not None:
            return found
    if resume and not run.has_checkpoint():
        raise ValueError(f"resume=True needs a checkpoint in out_dir, found none in {str(out_dir)!r}; start without resume")
    if isinstance(model, EncoderConfig):
        set_training_seed(seed)
        model = language_model(model)

    batches = PretrainBatches(train_rows(tokenizer, train_texts, config), tokenizer, batch_size=config.batch_size,
                              grad_accum=config.grad_accum, seed=seed, objective=config.objective, masking=config.masking,
                              static_masks=config.static_masks, rank=rank, world=world,
                              pad_to_multiple_of=8 if device.type == "cuda" else None)
    evaluator = Evaluator(tokenizer, {"valid": valid_texts, **also_evaluate} if rank == 0 else {}, config, device, precision)
    core = StepCore(model.to(device), lr=config.lr, total_steps=config.max_steps, warmup_steps=config.warmup_steps,
                    min_lr_ratio=config.min_lr_ratio, weight_decay=config.weight_decay, betas=config.betas, eps=config.adam_eps,
                    clip_norm=config.clip_norm, device=device, precision=precision, compile=config.compile, world=world)
    start, history = _resume(run, model, core, offset, device) if resume else (0, [])
    plan = config.plan(stop_after)
    save = _Checkpointer(run if rank == 0 else None, tokenizer, model, core, config, history, offset, precision, device, world)
    result = fit(core, batches, plan, lambda step, _: evaluator(model, step) if rank == 0 else None,
                 before_step=lambda step: set_training_seed(stream_seed(seed, "dropout", rank, step)),  # this step's dropout, on this rank
                 log=_ThroughputLog(model.config, config, device, precision, world, core, plan.end),
                 save=save, agree=(lambda stop: _rank_zero_decides(stop, device)) if world > 1 and config.patience is not None else None,
                 start=start, history=history, progress=progress and rank == 0, desc="pretraining")
    save(result.stopped_at or plan.end, result.best_step, result.stopped_at)  # early stopping: the best weights, not the last
    if world > 1:
        dist.barrier()
    result.out_dir = run.path if run is not None else None
    return result


class _Checkpointer:
    """Writes a pretraining run's checkpoint (rank 0; nothing without a run directory)."""

    def __init__(self, run: RunDir | None, tokenizer, model, core: StepCore, config: TrainConfig, history: list[dict],
                 offset: int, precision: str, device: torch.device, world: int):
        self.run, self.tokenizer, self.model, self.core, self.config, self.history = run, tokenizer, model, core, config, history
        self.offset, self.device = offset, device
        self.run_config = {"seed_offset": offset, "precision": precision, "device": str(device), "processes": world}

    def __call__(self, step: int, best_step: int | None, stopped_at: int | None = None) -> None:
        if self.run is None:
            return
        device, model, config = self.device, self.model, self.config
        rng = {"torch": torch.get_rng_state(), **({"cuda": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {})}
        self.run.save(tokenizer=self.tokenizer, history=self.history, format=1, step=step, model=model.state_dict(),
                      **self.core.state_dict(), rng=rng, model_config=model.config.to_dict(), train_config=config.to_dict(),
                      best_step=best_step, stopped_at=stopped_at, seed_offset=self.offset,
                      config={"model": model.config.to_dict(), "train": config.to_dict(), **self.run_config})


class Evaluator:
    """The validation sets of a run, each masked once (:func:`eval_batches`); called with the model
    and the step, it scores every set and returns the history entry (:func:`history_metrics`)."""

    def __init__(self, tokenizer, sets: dict[str, list[str]], config: TrainConfig, device: torch.device, precision: str = "fp32"):
        self.batches = {name: eval_batches(tokenizer, list(texts), config) for name, texts in sets.items()}
        self.device, self.precision = device, precision

    def __call__(self, model, step: int) -> dict:
        entry = {"step": step}
        for name, batches in self.batches.items():
            entry.update(history_metrics(name, evaluate(model, batches, self.device, self.precision)))
        return entry


def _rank_zero_decides(stop: bool, device: torch.device) -> bool:
    flag = torch.tensor(float(stop), device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def _with_plan(config: TrainConfig, **plan) -> TrainConfig:
    """``config`` with the early-stopping settings given to :func:`pretrain` in place of its own."""
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    given = {k: v for k, v in plan.items() if v is not _FROM_CONFIG}
    return config.replace(**given) if given else config


def _check_options(config: TrainConfig, also_evaluate, resume, stop_after, cache, out_dir) -> dict:
    also_evaluate = dict(also_evaluate or {})
    for name, texts in also_evaluate.items():
        if not isinstance(name, str) or not name.isidentifier() or name in ("valid", "train"):
            raise ValueError(f"also_evaluate names must be identifiers other than 'valid' and 'train', got {name!r}")
        if isinstance(texts, str):
            raise ValueError(f"also_evaluate[{name!r}] must be a list of texts, got a single str; wrap it: [text]")
    if config.patience is not None and (resume or stop_after is not None):
        raise ValueError("early stopping (patience) cannot be combined with resume or stop_after; run it in one go")
    if cache and (out_dir is not None or resume or stop_after is not None):
        raise ValueError("cache=True chooses its own run directory; do not pass out_dir, resume or stop_after with it")
    if resume and out_dir is None:
        raise ValueError("resume=True needs a checkpoint in out_dir, and no out_dir was given: pass the run directory to continue")
    return also_evaluate


def _distributed(config: TrainConfig) -> tuple[int, int, torch.device]:
    """(rank, world size, device); rank 0 of 1 when not launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = (int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))) if world > 1 else (0, 0)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo")
    check_accumulation(config.batch_size, config.grad_accum, world)
    device = pick_device(config.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return rank, world, device


def _for_vocabulary(model, tokenizer, config: TrainConfig):
    """``model`` (a MaskedLM, CausalLM, EncoderConfig, or a model that trains like a MaskedLM:
    :func:`~mlm_lessons.model.is_language_model`) checked against the run and stamped with the vocabulary."""
    if not (isinstance(model, EncoderConfig) or is_language_model(model)):
        raise ValueError(f"model must be a MaskedLM, an EncoderConfig or a published model "
                         f"(mlm_lessons.published.load_published), got {type(model).__name__}")
    model_config = model if isinstance(model, EncoderConfig) else model.config
    if model_config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"the model's vocab_size={model_config.vocab_size} differs from the tokenizer's {tokenizer.vocab_size}")
    if model_config.causal != (config.objective == "causal"):
        raise ValueError(f"objective={config.objective!r} needs a model with causal={config.objective == 'causal'}, "
                         f"this one has causal={model_config.causal}: a masked LM must see both sides, a causal LM only the left")
    if config.max_length > model_config.max_len:
        raise ValueError(f"max_length={config.max_length} exceeds the model's max_len={model_config.max_len}")
    if isinstance(model, EncoderConfig):
        return model.for_vocabulary(tokenizer)
    model.adopt_vocabulary(tokenizer)
    return model


def _cached_result(run: RunDir, model, max_steps: int, device: torch.device) -> TrainResult | None:
    """The finished run in ``run`` loaded into ``model`` (a new one for an EncoderConfig), or None."""
    ckpt = run.finished(max_steps)
    if ckpt is None:
        return None
    if isinstance(model, EncoderConfig):
        model = language_model(model)
    model.load_state_dict(ckpt["model"])  # the caller's model ends up trained, as without the cache
    return TrainResult(model.to(device), list(ckpt["history"]), ckpt.get("best_step"), ckpt.get("stopped_at"), out_dir=run.path,
                       cached=True)


def _resume(run: RunDir, model, core: StepCore, offset: int, device: torch.device) -> tuple[int, list[dict]]:
    """Load the checkpoint's weights, optimizer, schedule and random state; (step, history)."""
    ckpt = run.load(map_location=device, keys=(*RUN_KEYS, "rng"))
    if ckpt["model_config"] != model.config.to_dict():
        raise ValueError("the checkpoint's model configuration differs from this model's; resume with the same preset and model configuration")
    if ckpt.get("stopped_at") is not None:
        raise ValueError(f"the run in {str(run.path)!r} stopped early at step {ckpt['stopped_at']}; there is nothing to resume")
    if ckpt.get("seed_offset", 0) != offset:
        raise ValueError(f"the run in {str(run.path)!r} was trained with {SEED_OFFSET_ENV}={ckpt.get('seed_offset', 0)}, "
                         f"this session has {offset}; resume with the same value, or the rest of the run draws other data")
    model.load_state_dict(ckpt["model"])
    core.load_state_dict(ckpt)
    torch.set_rng_state(ckpt["rng"]["torch"].cpu())
    return ckpt["step"], list(ckpt["history"])


class _ThroughputLog:
    """The training entries of the history, every ``log_every`` steps and at the end: mean loss over
    the window since the last entry, the learning rate, the gradient norm, tokens per second and (on
    a known GPU) model FLOPs utilisation."""

    def __init__(self, model_config: EncoderConfig, config: TrainConfig, device, precision: str, world: int, core: StepCore,
                 end: int):
        labelled = 1.0 if config.objective == "causal" else config.masking.mask_ratio
        self.flops = flops_per_token(model_config, config.max_length, labelled)
        self.peak, self.device, self.world, self.core = peak_flops(device, precision), device, world, core
        self.every, self.last = config.log_every, (config.max_steps, end)
        self._reset()

    def _reset(self):
        self.loss, self.steps, self.tokens, self.positions, self.time = 0.0, 0, 0, 0, 0.0

    def __call__(self, step: int, loss: float, grad_norm: torch.Tensor, batches: list[dict], t0: float) -> dict | None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.loss += loss
        self.steps += 1
        self.tokens += sum(int(b["attention_mask"].sum()) for b in batches) * self.world
        self.positions += sum(b["attention_mask"].numel() for b in batches) * self.world
        self.time += time.perf_counter() - t0
        if step % self.every and step not in self.last:
            return None
        entry = {"step": step, "train_loss": self.loss / self.steps, "lr": self.core.lr, "grad_norm": float(grad_norm),
                 "tokens_per_s": self.tokens / self.time}
        if self.peak:
            entry["mfu"] = self.flops * self.positions / self.time / (self.peak * self.world)
        self._reset()
        return entry
