"""The masked-loss objective and the numbers that judge it.

For a sequence ``x`` with masked positions ``M`` and the corrupted input ``x̃``::

    L(θ) = -(1/|M|) Σ_{i∈M} log P_θ(x_i | x̃)

``masked_lm_loss`` computes it from logits with ``log_softmax`` and ``gather``; positions whose
label is ``-100`` do not count. ``perplexity`` is ``exp(L)``; the two baselines a trained model must
beat are the uniform guess (``log V``) and the unigram guess (the entropy of the token frequencies).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from .masking import IGNORE_INDEX, Fate, MaskingConfig

__all__ = [
    "masked_lm_loss", "masked_accuracy", "perplexity", "uniform_baseline", "unigram_baseline",
    "token_counts", "context_free_baselines",
]


def _align(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten to ``[N, V]`` logits and ``[N]`` labels, accepting the two layouts.

    - logits ``[B, T, V]`` with labels ``[B, T]``: one row per position;
    - logits ``[N, V]`` with labels ``[N]``, or with labels ``[B, T]`` holding exactly ``N``
      labelled positions (a model that computes its head only where there is something to predict).
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise ValueError("logits and labels must be tensors")
    if labels.dtype != torch.long:
        raise ValueError(f"labels must be a LongTensor, got dtype {labels.dtype}")
    if logits.dim() == 3:
        if labels.shape != logits.shape[:2]:
            raise ValueError(f"logits {tuple(logits.shape)} need labels of shape {tuple(logits.shape[:2])}, got {tuple(labels.shape)}")
        return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    if logits.dim() == 2:
        if labels.dim() == 1 and labels.shape[0] == logits.shape[0]:
            return logits, labels
        labelled = labels[labels != IGNORE_INDEX]
        if labelled.numel() == logits.shape[0]:
            return logits, labelled
        raise ValueError(
            f"logits {tuple(logits.shape)} have one row per labelled position, but labels "
            f"{tuple(labels.shape)} hold {labelled.numel()} labelled positions"
        )
    raise ValueError(f"logits must be [batch, length, vocab] or [positions, vocab], got shape {tuple(logits.shape)}")


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "token") -> torch.Tensor:
    """Mean negative log-likelihood of the labelled positions (label != -100).

    ``reduction="token"`` averages over all labelled positions of the batch (what
    ``F.cross_entropy(..., ignore_index=-100)`` does); ``"sequence"`` first averages within each
    sequence, then over the sequences that have a label (needs ``[B, T, V]`` logits); ``"sum"``
    adds them up. A batch without any labelled position gives ``0.0`` – with a gradient (of zeros)
    – instead of the ``nan`` of ``0 / 0``.
    """
    if reduction not in ("token", "sequence", "sum"):
        raise ValueError(f"reduction must be 'token', 'sequence' or 'sum', got {reduction!r}")
    if reduction == "sequence" and logits.dim() != 3:
        raise ValueError("reduction='sequence' needs logits of shape [batch, length, vocab]")
    flat_logits, flat_labels = _align(logits, labels)
    vocab = flat_logits.shape[-1]
    labelled = flat_labels != IGNORE_INDEX
    bad = flat_labels[labelled & ((flat_labels < 0) | (flat_labels >= vocab))]
    if bad.numel():
        raise ValueError(f"label {int(bad[0])} is outside the vocabulary [0, {vocab}) and is not {IGNORE_INDEX}")
    # half precision is upcast (a log-softmax over thousands of entries needs float32); float64 stays
    work = flat_logits if flat_logits.dtype in (torch.float32, torch.float64) else flat_logits.float()
    log_probs = F.log_softmax(work, dim=-1)
    safe = torch.where(labelled, flat_labels, torch.zeros_like(flat_labels))
    nll = -log_probs.gather(-1, safe[:, None]).squeeze(-1) * labelled
    if reduction == "sum":
        return nll.sum()
    if reduction == "sequence":
        per_seq = nll.reshape(labels.shape).sum(1)
        count = labelled.reshape(labels.shape).sum(1)
        has = count > 0
        if not has.any():
            return _attached_zero(flat_logits)
        return (per_seq[has] / count[has]).mean()
    count = labelled.sum()
    if count == 0:
        return _attached_zero(flat_logits)
    return nll.sum() / count


def _attached_zero(logits: torch.Tensor) -> torch.Tensor:
    """A zero loss that is still part of the graph: backward gives zero gradients, not an error."""
    return logits.sum() * 0.0 + 0.0  # "+ 0.0" turns -0.0 into 0.0


@torch.no_grad()
def masked_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of labelled positions where the most likely token is the true one (nan if none)."""
    flat_logits, flat_labels = _align(logits, labels)
    labelled = flat_labels != IGNORE_INDEX
    if not labelled.any():
        return float("nan")
    return (flat_logits[labelled].argmax(-1) == flat_labels[labelled]).float().mean().item()


def perplexity(loss) -> float:
    """``exp(loss)``: the number of equally likely choices the model is as uncertain as."""
    value = float(loss)
    if math.isnan(value) or value < 0:
        raise ValueError(f"a mean negative log-likelihood is >= 0, got {value!r}")
    return math.exp(value)


def uniform_baseline(vocab_size: int) -> float:
    """Loss of a model that gives every token the same probability: ``log V`` nats."""
    if not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    return math.log(vocab_size)


def token_counts(tokenizer, texts: Iterable[str], *, max_length: int = 128) -> torch.Tensor:
    """How often each id occurs at the positions MLM may predict (special tokens excluded)."""
    counts = torch.zeros(tokenizer.vocab_size, dtype=torch.long)
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty")
    for start in range(0, len(texts), 256):
        ids = tokenizer.encode_batch(texts[start : start + 256], max_length=max_length)["input_ids"].flatten()
        counts += torch.bincount(ids, minlength=tokenizer.vocab_size)
    counts[sorted(tokenizer.special_ids)] = 0
    return counts


def unigram_baseline(train_counts: torch.Tensor, eval_counts: torch.Tensor | None = None) -> float:
    """Loss of a model that ignores the context and predicts the unigram distribution, in nats.

    Without ``eval_counts``: the entropy of the training frequencies, ``-Σ p log p``. With them:
    the cross-entropy of the evaluation tokens under the training frequencies, add-one (Laplace)
    smoothed over the whole vocabulary, so that a token unseen in training costs a finite amount.
    """
    train = torch.as_tensor(train_counts, dtype=torch.float64)
    if train.dim() != 1 or (train < 0).any() or train.sum() <= 0:
        raise ValueError("train_counts must be a 1-D tensor of non-negative counts with a positive total")
    if eval_counts is None:
        p = train[train > 0] / train.sum()
        return float(-(p * p.log()).sum())
    ev = torch.as_tensor(eval_counts, dtype=torch.float64)
    if ev.shape != train.shape or (ev < 0).any() or ev.sum() <= 0:
        raise ValueError(f"eval_counts must be non-negative counts of the same shape {tuple(train.shape)}")
    p = (train + 1) / (train.sum() + train.numel())  # Laplace: every id keeps some probability
    q = ev / ev.sum()
    return float(-(q[ev > 0] * p[ev > 0].log()).sum())


def context_free_baselines(batches, train_counts: torch.Tensor, config: MaskingConfig, special_ids) -> dict:
    """The best a model that ignores the context can do, at the labelled positions of ``batches``
    (batches that carry the ``fate`` of their positions, as ``training.eval_batches`` makes them).

    Such a model sees one thing: the token at the position itself. Under ``[MASK]`` that says
    nothing, and the best guess is the unigram distribution ``u`` (training frequencies, add-one
    smoothed as in :func:`unigram_baseline`). Where a word ``w`` is visible, it is the original
    (kept, with probability ``p_keep``) or a random draw from the ``N`` non-special tokens (with
    ``p_random``); by Bayes' rule the best guess copies ``w`` with probability
    ``α_w = p_keep·u(w) / (p_keep·u(w) + p_random/N)`` and otherwise answers ``u``::

        q(v | w) = α_w·[v = w] + (1 − α_w)·u(v)

    Returns loss (nats) and accuracy of that model per fate (``mask_loss``, ``random_loss``,
    ``kept_loss``, ...), over all labelled positions (``loss``, ``accuracy``: the baseline of the
    mixed metric, far below the unigram because copying a visible token is free), and the plain
    unigram over all labelled positions (``unigram_loss``) for comparison.
    """
    if not isinstance(config, MaskingConfig):
        raise ValueError(f"config must be the MaskingConfig the batches were masked with, got {type(config).__name__}")
    train = torch.as_tensor(train_counts, dtype=torch.float64)
    if train.dim() != 1 or (train < 0).any() or train.sum() <= 0:
        raise ValueError("train_counts must be a 1-D tensor of non-negative counts with a positive total")
    batches = list(batches)
    if not batches or not all("fate" in b for b in batches):
        raise ValueError("every batch needs the 'fate' of its positions (batches of training.eval_batches have it)")
    u = (train + 1) / (train.sum() + train.numel())
    pool = train.numel() - len(set(special_ids))
    shown, labels, fates = [], [], []
    for b in batches:
        keep = b["labels"] != IGNORE_INDEX
        shown.append(b["input_ids"][keep])
        labels.append(b["labels"][keep])
        fates.append(b["fate"][keep])
    shown, labels, fates = torch.cat(shown), torch.cat(labels), torch.cat(fates)
    if labels.numel() == 0:
        raise ValueError("the batches hold no labelled position")
    if int(labels.max()) >= train.numel():
        raise ValueError(f"label id {int(labels.max())} is outside train_counts (size {train.numel()}); count with the same tokenizer")
    visible = shown.clamp(max=train.numel() - 1)
    alpha = config.p_keep * u[visible] / (config.p_keep * u[visible] + config.p_random / pool)
    alpha = torch.where(fates == Fate.MASKED, torch.zeros_like(alpha), alpha)  # under [MASK]: no token to copy
    p_label = alpha * (labels == shown) + (1 - alpha) * u[labels]
    loss = -p_label.log()
    top = int(u.argmax())
    # the argmax of q: the visible word when its copy weight beats the most frequent token, else that token
    copy_wins = alpha + (1 - alpha) * u[visible] > (1 - alpha) * u[top]
    guess = torch.where((fates != Fate.MASKED) & copy_wins, shown, torch.full_like(shown, top))
    right = (guess == labels).double()
    out = {"loss": float(loss.mean()), "accuracy": float(right.mean()), "positions": int(labels.numel()),
           "unigram_loss": float(-u[labels].log().mean())}
    for name, code in (("mask", Fate.MASKED), ("random", Fate.RANDOM), ("kept", Fate.KEPT)):
        where = fates == code
        n = int(where.sum())
        out[f"{name}_loss"] = float(loss[where].mean()) if n else float("nan")
        out[f"{name}_accuracy"] = float(right[where].mean()) if n else float("nan")
        out[f"{name}_positions"] = n
    return out
