"""The heads fine-tuning puts on a pretrained encoder: sequence classification and token labeling.

Both are ModernBERT's: the :class:`~mlm_lessons.model.Encoder`, then the prediction head's
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

Which head a task needs is its kind's business (:mod:`mlm_lessons.tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import require_choice, require_int, require_number
from .masking import IGNORE_INDEX
from .model import Encoder, EncoderConfig, MaskedLM, layer_norm
from .settings import CLASSIFIER_POOLINGS

__all__ = ["ClassifierOutput", "SequenceClassifier", "TokenClassifier", "HEADS", "sequence_loss", "token_loss"]


@dataclass
class ClassifierOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor  # [B, C] (sequence) or [B, T, C] (token)


def sequence_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """A sequence classifier's loss: the mean cross-entropy of ``logits`` [B, C] against one label per text [B]."""
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must be [batch] = {tuple(logits.shape[:1])}, got {tuple(labels.shape)}")
    return F.cross_entropy(logits.float(), labels)


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """A token classifier's loss: the mean cross-entropy of ``logits`` [B, T, C] over the labelled
    positions of ``labels`` [B, T] (-100 elsewhere); a batch with none gives a zero that has a gradient."""
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"labels {tuple(labels.shape)} must match input_ids {tuple(logits.shape[:2])}")
    if (labels != IGNORE_INDEX).any():
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    return logits.sum() * 0.0


class _Head(nn.Module):
    #: what a probe (``FinetuneConfig(freeze_encoder=True)``) keeps fixed: everything but the classifier
    FEATURES = ("encoder", "head_dense", "head_ln")

    def __init__(self, config: EncoderConfig, num_labels: int, dropout: float):
        super().__init__()
        require_int(num_labels, "num_labels", 2, why=" (a label set with one class leaves nothing to learn)")
        require_number(dropout, "dropout", at_least=0, below=1)
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
        require_choice(pooling, "pooling", CLASSIFIER_POOLINGS, why=" (the [CLS] state, or the mean over real tokens)")
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
        return ClassifierOutput(None if labels is None else sequence_loss(logits, labels), logits)


class TokenClassifier(_Head):
    """Encoder -> the head's transform -> dropout -> linear layer at every position: logits [B, T, ``num_labels``]."""

    def __init__(self, config: EncoderConfig, num_labels: int, dropout: float = 0.1):
        super().__init__(config, num_labels, dropout)

    def forward(self, input_ids, attention_mask=None, labels=None) -> ClassifierOutput:
        logits = self.classifier(self.dropout(self.transform(self.encoder(input_ids, attention_mask))))
        return ClassifierOutput(None if labels is None else token_loss(logits, labels), logits)


#: The heads by class name, as a fine-tuning checkpoint records them (``kind``).
HEADS = {cls.__name__: cls for cls in (SequenceClassifier, TokenClassifier)}
