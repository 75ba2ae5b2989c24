"""Fine-tuning a pretrained encoder: a sequence-classification head and a token-labeling head.

Both heads are ModernBERT's: the :class:`~mlm_lessons.model.Encoder`, then the prediction head's
transform (dense, GELU, LayerNorm), dropout and a linear layer to the labels. From a pretrained
``MaskedLM`` they take its encoder *and* its head's transform (only the vocabulary projection is
left behind), as ``transformers`` does when ``ModernBertForSequenceClassification`` loads a masked-LM
checkpoint; for the "from scratch" baseline all of it is freshly initialised. So every fine-tuned
model exports exactly to ``ModernBertForSequenceClassification`` or ``ModernBertForTokenClassification``
(:mod:`mlm_lessons.hf`):

- :class:`SequenceClassifier` – one label per text, from the ``[CLS]`` state (BERT's choice) or the
  mean of the real tokens' states (``pooling="mean"``);
- :class:`TokenClassifier` – one label per word, predicted at the word's first piece; the other
  pieces, the specials and the padding carry the label -100 and are ignored by the loss.

:func:`finetune` trains either on a :class:`~mlm_lessons.tasks.TaskData` with AdamW, warm-up and
linear decay, evaluates on the validation split during training, stops early when the task metric
(macro-F1, or span F1 for tagging) stops improving, and keeps the best weights.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import check_step_settings, require_ints
from .batches import LabelledBatches
from .engine import EarlyStopping, StepCore, pick_device, resolve_precision
from .masking import IGNORE_INDEX, pad_examples
from .model import Encoder, EncoderConfig, MaskedLM, check_vocabulary, evaluating, layer_norm
from .rundir import FINETUNED, TOKENIZER, load_checkpoint
from .seeding import seed_offset, stream_seed
from .tasks import TaskData, spans_of
from .tokenizer import MLMTokenizer

__all__ = [
    "SequenceClassifier", "TokenClassifier", "ClassifierOutput", "FinetuneConfig", "FinetuneResult",
    "finetune", "build_model", "evaluate_task", "predict", "encode_classification", "encode_tagging",
    "classification_metrics", "tagging_metrics", "f1_score", "task_metrics", "main_metric", "load_finetuned",
]


# -- the heads --------------------------------------------------------------------------------------


@dataclass
class ClassifierOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor  # [B, C] (sequence) or [B, T, C] (token)


def _check_num_labels(num_labels) -> None:
    if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 2:
        raise ValueError(f"num_labels must be an int >= 2 (a label set with one class leaves nothing to learn), got {num_labels!r}")


class _Head(nn.Module):
    #: what a probe (``FinetuneConfig(freeze_encoder=True)``) keeps fixed: everything but the classifier
    FEATURES = ("encoder", "head_dense", "head_ln")

    def __init__(self, config: EncoderConfig, num_labels: int, dropout: float):
        super().__init__()
        _check_num_labels(num_labels)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.config, self.num_labels = config, num_labels
        self.encoder = Encoder(config)
        self.head_dense = nn.Linear(config.d_model, config.d_model, bias=config.bias)  # ModernBERT's head.dense
        self.head_ln = layer_norm(config)  # head.norm
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.d_model, num_labels)
        self.apply(MaskedLM._init_weights)

    def transform(self, hidden: torch.Tensor) -> torch.Tensor:
        """The prediction head's transform, as in the MLM head: LayerNorm(GELU(dense(hidden)))."""
        return self.head_ln(F.gelu(self.head_dense(hidden)))

    @classmethod
    def from_pretrained(cls, mlm: MaskedLM, num_labels: int, **kwargs):
        """The head on a copy of ``mlm``'s encoder and its head's transform (the vocabulary projection
        is left behind; the classifier is new)."""
        if not isinstance(mlm, MaskedLM):
            raise ValueError(f"from_pretrained takes a MaskedLM, got {type(mlm).__name__}")
        model = cls(mlm.config, num_labels, **kwargs)
        model.encoder.load_state_dict(mlm.encoder.state_dict())  # the configuration carries the vocabulary's fingerprint
        model.head_dense.load_state_dict(mlm.head_dense.state_dict())
        model.head_ln.load_state_dict(mlm.head_ln.state_dict())
        return model.to(next(mlm.parameters()).device)


class SequenceClassifier(_Head):
    """Encoder -> pooled vector -> the head's transform -> dropout -> linear layer to ``num_labels`` logits."""

    def __init__(self, config: EncoderConfig, num_labels: int, pooling: str = "cls", dropout: float = 0.1):
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' (the [CLS] state) or 'mean' (mean over real tokens), got {pooling!r}")
        super().__init__(config, num_labels, dropout)
        self.pooling = pooling

    def forward(self, input_ids, attention_mask=None, labels=None) -> ClassifierOutput:
        hidden = self.encoder(input_ids, attention_mask)  # [B, T, d]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            keep = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)
        logits = self.classifier(self.dropout(self.transform(pooled)))
        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:1]:
                raise ValueError(f"labels must be [batch] = {tuple(logits.shape[:1])}, got {tuple(labels.shape)}")
            loss = F.cross_entropy(logits.float(), labels)
        return ClassifierOutput(loss, logits)


class TokenClassifier(_Head):
    """Encoder -> the head's transform -> dropout -> linear layer at every position: logits [B, T, ``num_labels``]."""

    def __init__(self, config: EncoderConfig, num_labels: int, dropout: float = 0.1):
        super().__init__(config, num_labels, dropout)

    def forward(self, input_ids, attention_mask=None, labels=None) -> ClassifierOutput:
        logits = self.classifier(self.dropout(self.transform(self.encoder(input_ids, attention_mask))))
        loss = None
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels {tuple(labels.shape)} must match input_ids {tuple(input_ids.shape)}")
            if (labels != IGNORE_INDEX).any():
                loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
            else:  # nothing labelled: a zero that still has a gradient
                loss = logits.sum() * 0.0
        return ClassifierOutput(loss, logits)


def build_model(task: TaskData, init: MaskedLM | EncoderConfig, *, pooling: str = "cls", dropout: float = 0.1, seed: int = 0):
    """The head ``task`` needs, on ``init``'s encoder (a pretrained ``MaskedLM``) or on a new one
    (an ``EncoderConfig``: from scratch). ``seed`` (plus :func:`~mlm_lessons.training.seed_offset`)
    fixes the new weights."""
    torch.manual_seed(seed + seed_offset())
    if task.kind == "classification":
        kind, kwargs = SequenceClassifier, {"pooling": pooling, "dropout": dropout}
    elif task.kind == "tagging":
        kind, kwargs = TokenClassifier, {"dropout": dropout}
    else:
        raise ValueError(f"unknown task kind {task.kind!r}; expected 'classification' or 'tagging'")
    if isinstance(init, MaskedLM):
        return kind.from_pretrained(init, task.num_labels, **kwargs)
    if isinstance(init, EncoderConfig):
        return kind(init, task.num_labels, **kwargs)
    raise ValueError(f"init must be a pretrained MaskedLM or an EncoderConfig (from scratch), got {type(init).__name__}")


# -- encoding ---------------------------------------------------------------------------------------


def encode_classification(tokenizer, examples, max_length: int) -> list[dict]:
    """``{"input_ids", "label"}`` per example; texts longer than ``max_length`` pieces are truncated."""
    enc = tokenizer.encode_batch([ex.text for ex in examples], max_length=max_length, padding=False, return_tensors=None)
    return [{"input_ids": ids, "label": ex.label} for ids, ex in zip(enc["input_ids"], examples)]


def encode_tagging(tokenizer, examples, max_length: int) -> list[dict]:
    """Each example cut into chunks of at most ``max_length`` pieces at word boundaries (so no
    word is lost), with its word's label at the first piece of every word and -100 elsewhere.

    ``example`` and ``words`` (the word index of each labelled piece) say where a chunk's words sit
    in its example, so that word predictions can be put back together (:func:`predict`). A word the
    normaliser erases entirely has no piece and is predicted ``0``.
    """
    if not isinstance(max_length, int) or max_length < 3:
        raise ValueError(f"max_length must be an int >= 3, got {max_length!r}")
    budget = max_length - 2
    chunks = []
    encs = tokenizer.tokenizer.encode_batch([list(ex.words) for ex in examples], is_pretokenized=True, add_special_tokens=False)
    for e, (ex, enc) in enumerate(zip(examples, encs)):
        pieces: list[list[int]] = [[] for _ in ex.words]
        for piece, w in zip(enc.ids, enc.word_ids):
            pieces[w].append(piece)
        current, labels, words = [], [], []
        for w, word in enumerate(pieces):
            if not word:  # normalisation left nothing of it (a lone control character): no prediction
                continue
            word = word[:budget]  # a word longer than a whole chunk keeps its first pieces
            if current and len(current) + len(word) > budget:
                chunks.append(_tagged_chunk(tokenizer, current, labels, e, words))
                current, labels, words = [], [], []
            current += word
            labels += [ex.labels[w]] + [IGNORE_INDEX] * (len(word) - 1)
            words.append(w)
        chunks.append(_tagged_chunk(tokenizer, current, labels, e, words))
    return chunks


def _tagged_chunk(tokenizer, ids, labels, example, words) -> dict:
    return {"input_ids": [tokenizer.cls_id, *ids, tokenizer.sep_id], "labels": [IGNORE_INDEX, *labels, IGNORE_INDEX],
            "example": example, "words": words}


def _encode(tokenizer, task: TaskData, examples, max_length: int) -> list[dict]:
    if task.kind == "classification":
        return encode_classification(tokenizer, examples, max_length)
    return encode_tagging(tokenizer, examples, max_length)


# -- metrics ----------------------------------------------------------------------------------------


def f1_score(tp: int, fp: int, fn: int) -> float:
    """F1 from counts: 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall (0 when all are 0)."""
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def classification_metrics(y_true, y_pred, num_labels: int) -> dict:
    """Accuracy and macro-F1 (the unweighted mean of the per-class F1 over all ``num_labels``
    classes: a rare class counts as much as a frequent one)."""
    y_true, y_pred = [int(y) for y in y_true], [int(y) for y in y_pred]
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError(f"need as many predictions as labels, and at least one; got {len(y_pred)} and {len(y_true)}")
    f1s = []
    for c in range(num_labels):
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred))
        fn = sum(t == c and p != c for t, p in zip(y_true, y_pred))
        f1s.append(f1_score(tp, fp, fn))
    return {"accuracy": sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true), "macro_f1": sum(f1s) / num_labels}


def tagging_metrics(gold: list, pred: list) -> dict:
    """Word-level precision/recall/F1 of the ``code`` label (1), word accuracy, and span-level
    precision/recall/F1: a predicted span (a maximal run of code words) counts only if a gold span
    has exactly the same first and last word."""
    if len(gold) != len(pred) or not gold:
        raise ValueError(f"need one prediction per example, and at least one; got {len(pred)} and {len(gold)}")
    tp = fp = fn = correct = words = 0
    s_tp = s_pred = s_gold = 0
    for g, p in zip(gold, pred):
        g, p = list(g), list(p)
        if len(g) != len(p):
            raise ValueError(f"an example has {len(g)} gold labels but {len(p)} predictions")
        tp += sum(a == 1 and b == 1 for a, b in zip(g, p))
        fp += sum(a != 1 and b == 1 for a, b in zip(g, p))
        fn += sum(a == 1 and b != 1 for a, b in zip(g, p))
        correct += sum(a == b for a, b in zip(g, p))
        words += len(g)
        gs, ps = spans_of(g), spans_of(p)
        s_tp, s_pred, s_gold = s_tp + len(gs & ps), s_pred + len(ps), s_gold + len(gs)
    return {
        "word_accuracy": correct / max(words, 1),
        "token_precision": tp / (tp + fp) if tp + fp else 0.0, "token_recall": tp / (tp + fn) if tp + fn else 0.0,
        "token_f1": f1_score(tp, fp, fn),
        "span_precision": s_tp / s_pred if s_pred else 0.0, "span_recall": s_tp / s_gold if s_gold else 0.0,
        "span_f1": f1_score(s_tp, s_pred - s_tp, s_gold - s_tp),
    }


# -- prediction and evaluation ----------------------------------------------------------------------


@torch.no_grad()
def predict(model, tokenizer, task: TaskData, split: str = "test", *, max_length: int = 64, batch_size: int = 128) -> list:
    """Predicted labels for every example of ``split``: a class id per text, or a label per word."""
    return _predict_encoded(model, tokenizer, task, task.split(split), _encode(tokenizer, task, task.split(split), max_length), batch_size)


@torch.no_grad()
def _predict_encoded(model, tokenizer, task, examples, encoded, batch_size=128) -> list:
    device = next(model.parameters()).device
    out = [None] * len(examples) if task.kind == "classification" else [[0] * len(ex.words) for ex in examples]
    with evaluating(model):
        for i in range(0, len(encoded), batch_size):
            items = encoded[i : i + batch_size]
            b = pad_examples(items, pad_id=tokenizer.pad_id)
            logits = model(b["input_ids"].to(device), b["attention_mask"].to(device)).logits.argmax(-1).cpu()
            for j, it in enumerate(items):
                if task.kind == "classification":
                    out[i + j] = int(logits[j])
                else:
                    labelled = (b["labels"][j] != IGNORE_INDEX).nonzero().flatten().tolist()
                    for w, pos in zip(it["words"], labelled):
                        out[it["example"]][w] = int(logits[j, pos])
    return out


def task_metrics(task: TaskData, examples, predictions) -> dict:
    """``examples``' metrics of ``task``'s kind: :func:`classification_metrics` or :func:`tagging_metrics`."""
    if task.kind == "classification":
        return classification_metrics([ex.label for ex in examples], predictions, task.num_labels)
    return tagging_metrics([ex.labels for ex in examples], predictions)


def evaluate_task(model, tokenizer, task: TaskData, split: str = "test", *, max_length: int = 64) -> dict:
    """The task's metrics on ``split``: accuracy and macro-F1, or word and span scores for tagging."""
    return task_metrics(task, task.split(split), predict(model, tokenizer, task, split, max_length=max_length))


# -- training ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune. ``max_steps`` caps the run (an epoch of a large training set is long);
    evaluation on the validation split runs every ``eval_every`` steps (``None``: once an epoch,
    at most every 100 steps); ``patience`` evaluations without improvement end the run.
    ``freeze_encoder=True`` trains the linear classifier alone on fixed features (the encoder and the
    head's transform as pretraining left them): a *probe* of what pretraining put into the
    representations (BERT's "feature-based" evaluation)."""

    lr: float = 5e-4
    batch_size: int = 32
    max_epochs: int = 20
    max_steps: int = 600
    eval_every: int | None = None
    patience: int = 4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    max_length: int = 64
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # as TrainConfig: bf16 or fp16 on a GPU, fp32 elsewhere
    freeze_encoder: bool = False

    def __post_init__(self):
        require_ints(self, ("batch_size", "max_epochs", "max_steps", "patience", "max_length"), minimum=1)
        if not isinstance(self.freeze_encoder, bool):
            raise ValueError(f"freeze_encoder must be True or False, got {self.freeze_encoder!r}")
        require_ints(self, ("seed",), minimum=0)
        if self.eval_every is not None:
            require_ints(self, ("eval_every",), minimum=1)
        if self.max_length < 3:
            raise ValueError(f"max_length must be >= 3 (room for [CLS], a piece and [SEP]), got {self.max_length}")
        check_step_settings(self)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FinetuneResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_step: int = 0
    valid: dict = field(default_factory=dict)  # metrics of the kept (best) weights
    test: dict | None = None
    seconds: float = 0.0


def main_metric(task: TaskData) -> str:
    """The metric early stopping and model choice follow: macro-F1 (classification), span F1 (tagging)."""
    return "macro_f1" if task.kind == "classification" else "span_f1"


def finetune(model, tokenizer, task: TaskData, config: FinetuneConfig = FinetuneConfig(), *, evaluate_test: bool = True,
             progress: bool = False) -> FinetuneResult:
    """Fine-tune ``model`` (a :class:`SequenceClassifier` or :class:`TokenClassifier`, e.g. from
    :func:`build_model`) on ``task``'s train split; returns it with the best validation weights."""
    from tqdm.auto import tqdm

    if not isinstance(config, FinetuneConfig):
        raise ValueError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    expected = SequenceClassifier if task.kind == "classification" else TokenClassifier
    if not isinstance(model, expected):
        raise ValueError(f"task {task.name!r} ({task.kind}) needs a {expected.__name__}, got {type(model).__name__}")
    if model.num_labels != task.num_labels:
        raise ValueError(f"the model predicts {model.num_labels} labels, task {task.name!r} has {task.num_labels}: {task.label_names}")
    check_vocabulary(model.config, tokenizer)
    present = {ex.label for ex in task.train} if task.kind == "classification" else {y for ex in task.train for y in ex.labels}
    if len(present) < 2:
        raise ValueError(f"the training examples of {task.name!r} hold a single label ({sorted(present)}); fine-tuning needs at least two")
    if not task.valid:
        raise ValueError(f"task {task.name!r} has no validation examples, which early stopping needs")
    t0 = time.perf_counter()
    device = pick_device(config.device)
    model.to(device).train()
    train = LabelledBatches(_encode(tokenizer, task, task.train, config.max_length), batch_size=config.batch_size,
                            seed=config.seed + seed_offset(), pad_id=tokenizer.pad_id)  # this run's data order
    valid_encoded = _encode(tokenizer, task, task.valid, config.max_length)
    total = min(config.max_steps, train.steps_per_epoch * config.max_epochs)
    eval_every = config.eval_every or min(train.steps_per_epoch, 100)
    frozen = [getattr(model, k) for k in model.FEATURES] if config.freeze_encoder else []
    for part in frozen:  # a probe: the features stay as pretraining left them (and in eval mode)
        part.requires_grad_(False)
    trainable = nn.ModuleDict({k: m for k, m in model.named_children() if not (config.freeze_encoder and k in model.FEATURES)})
    core = StepCore(model, lr=config.lr, total_steps=total, warmup_steps=int(config.warmup_ratio * total),
                    weight_decay=config.weight_decay, clip_norm=config.clip_norm, device=device,
                    precision=resolve_precision(config.precision, device), trainable=trainable)
    metric = main_metric(task)
    stopper = EarlyStopping(config.patience, higher_is_better=True, start_from=model)
    history, window, best_scores = [], [], {}
    for step in tqdm(range(total), disable=not progress, desc=f"fine-tuning {task.name}"):
        torch.manual_seed(stream_seed(train.seed, "finetune-dropout", step))  # this step's dropout
        for part in frozen:
            part.eval()
        loss, _ = core.step([train(step)])
        window.append(loss.item())
        done = step + 1
        if done % eval_every == 0 or done == total:
            scores = task_metrics(task, task.valid, _predict_encoded(model, tokenizer, task, task.valid, valid_encoded))
            history.append({"step": done, "epoch": done / train.steps_per_epoch, "train_loss": sum(window) / len(window),
                            **{f"valid_{k}": v for k, v in scores.items()}})
            window = []
            stop = stopper.update(scores[metric], done, model)
            if stopper.best_step == done:
                best_scores = scores
            if stop:
                break
    stopper.restore(model)
    for part in frozen:  # frozen for this run only: fine-tuning the model again trains it all
        part.requires_grad_(True)
    model.eval()
    test = evaluate_task(model, tokenizer, task, "test", max_length=config.max_length) if evaluate_test else None
    return FinetuneResult(model, history, stopper.best_step, best_scores, test, time.perf_counter() - t0)


def load_finetuned(run_dir: str | os.PathLike, device: str = "cpu"):
    """``(model, tokenizer, checkpoint)`` from a run directory written by the CLI's ``finetune``: the
    ``SequenceClassifier`` (with its pooling) or ``TokenClassifier`` it trained, in eval mode, its
    vocabulary checked against the saved tokenizer; the checkpoint holds ``task``, ``label_names``,
    ``valid``, ``test`` and ``best_step``."""
    path = Path(run_dir) / FINETUNED
    if not path.is_file():
        raise ValueError(f"{str(Path(run_dir))!r} holds no {FINETUNED}; fine-tune with `python -m mlm_lessons finetune --out {run_dir}`")
    ckpt = load_checkpoint(path, map_location=device)
    kinds = {"SequenceClassifier": SequenceClassifier, "TokenClassifier": TokenClassifier}
    if ckpt.get("kind") not in kinds:
        raise ValueError(f"{str(path)!r} holds a {ckpt.get('kind')!r}; expected one of {', '.join(kinds)}")
    config = EncoderConfig(**ckpt["model_config"])
    kwargs = {"pooling": ckpt["pooling"]} if ckpt["kind"] == "SequenceClassifier" else {}
    model = kinds[ckpt["kind"]](config, len(ckpt["label_names"]), **kwargs)
    model.load_state_dict(ckpt["model"])
    tokenizer = MLMTokenizer.load(Path(run_dir) / TOKENIZER)
    check_vocabulary(config, tokenizer)
    return model.to(device).eval(), tokenizer, ckpt
