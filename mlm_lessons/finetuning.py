"""Fine-tuning a pretrained encoder on a labelled task: a sequence-classification or a token-labeling head.

The heads are in :mod:`mlm_lessons.heads`; what differs between the two kinds of task – which head,
how examples are encoded, how logits become predictions, which metrics – is the task's kind
(:mod:`mlm_lessons.tasks`). Here: :func:`build_model` (the head a task needs, on a pretrained
encoder or a new one), :func:`predict` and :func:`evaluate_task`, and :func:`finetune`, which trains
through the engine's one loop (:func:`~mlm_lessons.engine.fit`) with AdamW, warm-up and linear decay,
evaluates on the validation split during training, stops early when the task's main metric
(macro-F1, or span F1 for tagging) stops improving, and keeps the best weights.
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn

from .batches import LabelledBatches
from .engine import StepCore, TrainResult, fit, pick_device, resolve_precision
from .heads import ClassifierOutput, SequenceClassifier, TokenClassifier
from .masking import pad_examples
from .model import EncoderConfig, MaskedLM, check_vocabulary, evaluating
from .rundir import load_finetuned
from .settings import FinetuneConfig, FitPlan
from .seeding import seed_offset, stream_seed
from .tasks import TaskData, classification_metrics, encode_classification, encode_tagging, f1_score, spans_of, tagging_metrics

__all__ = [
    "SequenceClassifier", "TokenClassifier", "ClassifierOutput", "FinetuneConfig", "FinetuneResult",
    "finetune", "build_model", "evaluate_task", "predict", "encode_classification", "encode_tagging",
    "classification_metrics", "tagging_metrics", "f1_score", "task_metrics", "main_metric", "load_finetuned", "spans_of",
]

#: What :func:`finetune` returns: the engine's one result type (``model``, ``history``, ``best_step``,
#: ``valid``: the kept weights' validation metrics, ``test``, ``seconds``).
FinetuneResult = TrainResult


def build_model(task: TaskData, init: MaskedLM | EncoderConfig, *, pooling: str = "cls", dropout: float = 0.1, seed: int = 0):
    """The head ``task`` needs, on ``init``'s encoder (a pretrained ``MaskedLM``) or on a new one
    (an ``EncoderConfig``: from scratch). ``seed`` (plus :func:`~mlm_lessons.training.seed_offset`)
    fixes the new weights; ``pooling`` is a sequence classifier's."""
    torch.manual_seed(seed + seed_offset())
    return task.kind.head(init, task.num_labels, pooling=pooling, dropout=dropout)


# -- prediction and evaluation ----------------------------------------------------------------------


@torch.no_grad()
def predict(model, tokenizer, task: TaskData, split: str = "test", *, max_length: int = 64, batch_size: int = 128) -> list:
    """Predicted labels for every example of ``split``: a class id per text, or a label per word."""
    examples = task.split(split)
    return _predict_encoded(model, tokenizer, task, examples, task.kind.encode(tokenizer, examples, max_length), batch_size)


@torch.no_grad()
def _predict_encoded(model, tokenizer, task: TaskData, examples, encoded, batch_size: int = 128) -> list:
    device = next(model.parameters()).device
    out = task.kind.empty(examples)
    with evaluating(model):
        for i in range(0, len(encoded), batch_size):
            items = encoded[i : i + batch_size]
            b = pad_examples(items, pad_id=tokenizer.pad_id)
            predicted = model(b["input_ids"].to(device), b["attention_mask"].to(device)).logits.argmax(-1).cpu()
            task.kind.decode(out, items, b, predicted, i)
    return out


def task_metrics(task: TaskData, examples, predictions) -> dict:
    """``examples``' metrics of ``task``'s kind: :func:`classification_metrics` or :func:`tagging_metrics`."""
    return task.kind.metrics(examples, predictions, task.num_labels)


def main_metric(task: TaskData) -> str:
    """The metric early stopping and model choice follow: macro-F1 (classification), span F1 (tagging)."""
    return task.kind.main_metric


def evaluate_task(model, tokenizer, task: TaskData, split: str = "test", *, max_length: int = 64) -> dict:
    """The task's metrics on ``split``: accuracy and macro-F1, or word and span scores for tagging."""
    return task_metrics(task, task.split(split), predict(model, tokenizer, task, split, max_length=max_length))


# -- training ---------------------------------------------------------------------------------------


def _check_run(model, tokenizer, task: TaskData, config: FinetuneConfig) -> None:
    if not isinstance(config, FinetuneConfig):
        raise ValueError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    # a published model's head (mlm_lessons.published) says which kind of task it is for
    if not isinstance(model, task.kind.head_class) and getattr(model, "task_kind", None) != task.kind.name:
        raise ValueError(f"task {task.name!r} ({task.kind}) needs a {task.kind.head_class.__name__}, got {type(model).__name__}")
    if config.freeze_encoder and not hasattr(model, "FEATURES"):
        raise ValueError(f"freeze_encoder=True trains the classifier of the book's heads alone; a {type(model).__name__} "
                         f"names no features to freeze: fine-tune it whole (freeze_encoder=False)")
    if model.num_labels != task.num_labels:
        raise ValueError(f"the model predicts {model.num_labels} labels, task {task.name!r} has {task.num_labels}: {task.label_names}")
    check_vocabulary(model.config, tokenizer)
    present = {y for ex in task.train for y in task.kind.labels(ex)}
    if len(present) < 2:
        raise ValueError(f"the training examples of {task.name!r} hold a single label ({sorted(present)}); fine-tuning needs at least two")
    if not task.valid:
        raise ValueError(f"task {task.name!r} has no validation examples, which early stopping needs")


def finetune(model, tokenizer, task: TaskData, config: FinetuneConfig = FinetuneConfig(), *, evaluate_test: bool = True,
             progress: bool = False) -> TrainResult:
    """Fine-tune ``model`` (a :class:`SequenceClassifier` or :class:`TokenClassifier`, e.g. from
    :func:`build_model`) on ``task``'s train split; returns it with the best validation weights
    (the starting weights if training never beats them: ``best_step`` 0, ``valid`` empty).

    ``config.freeze_encoder`` trains the classifier alone on fixed features (a probe)."""
    _check_run(model, tokenizer, task, config)
    t0 = time.perf_counter()
    device = pick_device(config.device)
    model.to(device).train()
    train = LabelledBatches(task.kind.encode(tokenizer, task.train, config.max_length), batch_size=config.batch_size,
                            seed=config.seed + seed_offset(), pad_id=tokenizer.pad_id)  # this run's data order
    valid_encoded = task.kind.encode(tokenizer, task.valid, config.max_length)
    total = min(config.max_steps, train.steps_per_epoch * config.max_epochs)
    frozen = [getattr(model, k) for k in model.FEATURES] if config.freeze_encoder else []
    for part in frozen:  # a probe: the features stay as pretraining left them (and in eval mode)
        part.requires_grad_(False)
    trainable = nn.ModuleDict({k: m for k, m in model.named_children() if not (config.freeze_encoder and k in model.FEATURES)})
    core = StepCore(model, lr=config.lr, total_steps=total, warmup_steps=int(config.warmup_ratio * total),
                    weight_decay=config.weight_decay, clip_norm=config.clip_norm, device=device,
                    precision=resolve_precision(config.precision, device), trainable=trainable)
    plan = FitPlan(max_steps=total, eval_every=config.eval_every or min(train.steps_per_epoch, 100),
                   metric=(f"valid_{task.kind.main_metric}",), higher_is_better=True, patience=config.patience, keep_start=True)

    def before_step(step: int) -> None:
        torch.manual_seed(stream_seed(train.seed, "finetune-dropout", step))  # this step's dropout
        for part in frozen:
            part.eval()

    def evaluate(step: int, train_loss: float) -> dict:
        scores = task_metrics(task, task.valid, _predict_encoded(model, tokenizer, task, task.valid, valid_encoded))
        return {"step": step, "epoch": step / train.steps_per_epoch, "train_loss": train_loss,
                **{f"valid_{k}": v for k, v in scores.items()}}

    result = fit(core, lambda step: [train(step)], plan, evaluate, before_step=before_step, progress=progress, desc=f"fine-tuning {task.name}")
    for part in frozen:  # frozen for this run only: fine-tuning the model again trains it all
        part.requires_grad_(True)
    model.eval()
    result.test = evaluate_task(model, tokenizer, task, "test", max_length=config.max_length) if evaluate_test else None
    result.seconds = time.perf_counter() - t0
    return result
