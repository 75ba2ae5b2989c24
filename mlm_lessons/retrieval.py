"""Retrieval with an encoder's paragraph vectors, against BM25, and a contrastive fine-tune.

The task's labels come from the documentation itself: a docstring's **summary line** (its first
paragraph) is the query, the **rest of the docstring** is the document to find among the other
docstrings' bodies (:func:`summary_task`). The splits are the corpus's own (a test pair comes from
a test document, never read in pretraining), with leaked and ambiguous pairs removed.

- :func:`embed` – a text's vector: the mean of the encoder's final states over its real tokens
  (``pooling="mean"``), the ``[CLS]`` state, or the last real token's state (what a left-to-right
  model has read everything by), L2-normalised;
- :func:`rank_metrics` – recall@k and mean reciprocal rank of a query-by-document score matrix
  whose diagonal holds the right answers;
- :func:`bm25_scores` – BM25 (Okapi, from the ``rank-bm25`` package) over lower-cased words;
- :class:`DualEncoder` and :func:`contrastive_finetune` – train the encoder so that a query's
  vector is closer to its document's than to the other documents of the batch (in-batch
  negatives, InfoNCE), on the shared engine (:class:`~mlm_lessons.engine.StepCore`,
  :class:`~mlm_lessons.engine.EarlyStopping`), keeping the weights with the best validation MRR.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .batches import LabelledBatches
from .corpus import Corpus, load_corpus
from .corpus.documents import SPLITS
from .engine import StepCore, TrainResult, fit, pick_device, resolve_precision
from .masking import pad_examples
from .model import MaskedLM, check_vocabulary, evaluating
from .settings import POOLINGS, ContrastiveConfig, FitPlan
from .seeding import seed_offset, stream_seed
from .tasks import TaskKind, paragraphs, words_with_offsets

__all__ = [
    "RetrievalPair", "RetrievalTask", "summary_task", "embed", "similarity", "rank_metrics", "bm25_scores",
    "retrieval_metrics", "DualEncoder", "ContrastiveConfig", "ContrastiveResult", "contrastive_finetune", "POOLINGS",
    "RetrievalPairs", "RETRIEVAL_PAIRS",
]


@dataclass(frozen=True)
class RetrievalPair:
    query: str  # the summary line
    target: str  # the rest of the docstring
    source: str  # module.name of the docstring


@dataclass
class RetrievalTask:
    name: str
    train: list[RetrievalPair] = field(default_factory=list)
    valid: list[RetrievalPair] = field(default_factory=list)
    test: list[RetrievalPair] = field(default_factory=list)

    @property
    def kind(self) -> "RetrievalPairs":
        """Retrieval pairs: :data:`RETRIEVAL_PAIRS`."""
        return RETRIEVAL_PAIRS

    def split(self, name: str) -> list[RetrievalPair]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose train, valid or test")
        return getattr(self, name)

    def stats(self) -> list[dict]:
        rows = []
        for s in SPLITS:
            pairs = self.split(s)
            rows.append({"split": s, "pairs": len(pairs),
                         "query words": sum(len(p.query.split()) for p in pairs) / max(len(pairs), 1),
                         "document words": sum(len(p.target.split()) for p in pairs) / max(len(pairs), 1)})
        return rows


def summary_task(corpus: Corpus | None = None, *, min_query_words: int = 4, min_target_words: int = 8) -> RetrievalTask:
    """Pairs (summary line, rest of the docstring) of every document of ``corpus`` (default
    ``pytorch-docs``) with a summary of at least ``min_query_words`` words and a body of at least
    ``min_target_words``. A pair is dropped when its summary or its body occurs twice in its split
    (two right answers, or one query with two), and, in valid and test, when either occurs in a
    train document (text pretraining or contrastive training may have read)."""
    for name, v in (("min_query_words", min_query_words), ("min_target_words", min_target_words)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    corpus = corpus if corpus is not None else load_corpus("pytorch-docs")
    train_text = "\x00".join(d.text for d in corpus.train)
    splits = {}
    for split in SPLITS:
        pairs = []
        for doc in corpus.split(split):
            paras = [p for p, _ in paragraphs(doc, min_words=1)]
            if len(paras) < 2:
                continue
            query, target = paras[0], "\n\n".join(paras[1:])
            if len(query.split()) < min_query_words or len(target.split()) < min_target_words:
                continue
            if split != "train" and (query in train_text or target in train_text):
                continue
            pairs.append(RetrievalPair(query, target, f"{doc.module}.{doc.name}"))
        queries = [p.query for p in pairs]
        targets = [p.target for p in pairs]
        splits[split] = [p for p in pairs if queries.count(p.query) == 1 and targets.count(p.target) == 1]
    return RetrievalTask(f"{corpus.name}-summaries", splits["train"], splits["valid"], splits["test"])


# -- vectors and scores --------------------------------------------------------------------------


def _pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = attention_mask.sum(1) - 1  # the last real token ([SEP])
        return hidden[torch.arange(len(hidden), device=hidden.device), last]
    keep = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)


def _check_length(max_length: int | None, config) -> int:
    if max_length is None:
        return config.max_len
    if not isinstance(max_length, int) or isinstance(max_length, bool) or not 3 <= max_length <= config.max_len:
        raise ValueError(f"max_length must be an int from 3 to the model's max_len={config.max_len}, got {max_length!r}; "
                         "leave it None for the model's own")
    return max_length


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


@torch.no_grad()
def embed(model, tokenizer, texts, *, pooling: str = "mean", max_length: int | None = None, batch_size: int = 64) -> torch.Tensor:
    """L2-normalised vectors [len(texts), d_model] of ``model``'s encoder (a ``MaskedLM``, a
    ``CausalLM``, a fine-tuning head or a :class:`DualEncoder`), texts truncated to ``max_length``
    pieces (default: the longest the model takes, its ``max_len``). A :class:`DualEncoder` pools
    as it was trained to; ``pooling`` applies to the others."""
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to embed")
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise ValueError(f"embed needs a model with an .encoder (MaskedLM, a head, DualEncoder), got {type(model).__name__}")
    pooling = model.pooling if isinstance(model, DualEncoder) else pooling
    _check_pooling(pooling)
    check_vocabulary(encoder.config, tokenizer)
    max_length = _check_length(max_length, encoder.config)
    device = next(encoder.parameters()).device
    out = []
    with evaluating(encoder):
        for i in range(0, len(texts), batch_size):
            batch = tokenizer.encode_batch(texts[i : i + batch_size], max_length=max_length)
            ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
            out.append(F.normalize(_pool(encoder(ids, mask).float(), mask, pooling), dim=-1).cpu())
    return torch.cat(out)


def similarity(model, tokenizer, pairs, **kwargs) -> torch.Tensor:
    """Cosine similarities [queries, documents] of ``pairs``' queries and documents (right answers on the diagonal)."""
    return embed(model, tokenizer, [p.query for p in pairs], **kwargs) @ embed(model, tokenizer, [p.target for p in pairs], **kwargs).T


def rank_metrics(scores, ks=(1, 10)) -> dict:
    """``recall@k`` for each k and ``mrr`` of a score matrix [queries, documents] whose diagonal is
    each query's one right document. A document that ties with the right one counts as ranked
    above it (a constant scorer earns nothing)."""
    scores = torch.as_tensor(scores, dtype=torch.float64)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] == 0:
        raise ValueError(f"scores must be a square [queries, documents] matrix with the answers on its diagonal, got {tuple(scores.shape)}")
    if torch.isnan(scores).any():
        raise ValueError("scores hold NaN; a ranking needs numbers")
    gold = scores.diagonal().unsqueeze(1)
    others = ~torch.eye(len(scores), dtype=torch.bool)
    rank = 1 + ((scores >= gold) & others).sum(1)
    out = {f"recall@{k}": float((rank <= k).double().mean()) for k in ks}
    out["mrr"] = float((1.0 / rank.double()).mean())
    return out


def _bm25_words(text: str) -> list[str]:
    return [w.lower() for w, _ in words_with_offsets(text) if any(c.isalnum() for c in w)]


def bm25_scores(queries, documents, *, k1: float = 1.5, b: float = 0.75) -> torch.Tensor:
    """BM25 (Okapi) scores [queries, documents]; words are the pre-tokenizer's, lower-cased,
    punctuation dropped. Needs the ``rank-bm25`` package (``pip install rank-bm25``)."""
    try:
        from rank_bm25 import BM25Okapi
    except ImportError as error:  # pragma: no cover - the requirements install it
        raise ImportError("bm25_scores needs the rank-bm25 package: pip install rank-bm25") from error
    queries, documents = list(queries), list(documents)
    if not queries or not documents:
        raise ValueError(f"need at least one query and one document, got {len(queries)} and {len(documents)}")
    index = BM25Okapi([_bm25_words(d) for d in documents], k1=k1, b=b)
    return torch.from_numpy(np.stack([index.get_scores(_bm25_words(q)) for q in queries])).double()


def retrieval_metrics(model, tokenizer, pairs, *, ks=(1, 10), **kwargs) -> dict:
    """:func:`rank_metrics` of ``model``'s cosine similarities on ``pairs``."""
    return rank_metrics(similarity(model, tokenizer, pairs, **kwargs), ks)


# -- contrastive fine-tuning -----------------------------------------------------------------------


@dataclass
class ContrastiveOutput:
    loss: torch.Tensor
    logits: torch.Tensor  # [queries, documents] similarities ÷ temperature


class DualEncoder(nn.Module):
    """One encoder for queries and documents (shared weights), pooled and L2-normalised.

    ``forward(input_ids, attention_mask, labels)`` takes a batch of 2·B texts, the B queries first
    and then their B documents, with ``labels = arange(B)``: the loss is the cross-entropy of each
    query's similarities to all B documents (the other B − 1 are in-batch negatives) and of each
    document's to all queries, averaged (InfoNCE, as in CLIP and DPR).
    """

    def __init__(self, mlm: MaskedLM, *, pooling: str = "mean", temperature: float = 0.05):
        super().__init__()
        if not isinstance(mlm, MaskedLM):
            raise ValueError(f"DualEncoder takes a MaskedLM (or CausalLM), got {type(mlm).__name__}")
        _check_pooling(pooling)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.encoder = copy.deepcopy(mlm.encoder)  # the head is left behind; the pretrained model is untouched
        self.config, self.pooling, self.temperature = mlm.config, pooling, temperature

    def forward(self, input_ids, attention_mask=None, labels=None) -> ContrastiveOutput:
        if input_ids.shape[0] % 2:
            raise ValueError(f"a DualEncoder batch holds B queries then B documents, got {input_ids.shape[0]} texts")
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        vectors = F.normalize(_pool(self.encoder(input_ids, mask).float(), mask, self.pooling), dim=-1)
        queries, documents = vectors.chunk(2)
        logits = queries @ documents.T / self.temperature
        labels = labels if labels is not None else torch.arange(len(queries), device=logits.device)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        return ContrastiveOutput(loss, logits)


#: What :func:`contrastive_finetune` returns: the engine's one result type.
ContrastiveResult = TrainResult


class RetrievalPairs(TaskKind):
    """Retrieval pairs (a query and its document): the head is a :class:`DualEncoder` (trained with
    in-batch negatives), an example is encoded as its query's and document's pieces, and the metrics
    are :func:`rank_metrics` of the cosine similarities (MRR first)."""

    name, main_metric, head_class = "retrieval", "mrr", DualEncoder

    def head(self, init: MaskedLM, num_labels: int | None = None, *, pooling: str = "mean", temperature: float = 0.05,
             dropout: float | None = None) -> DualEncoder:
        return DualEncoder(init, pooling=pooling, temperature=temperature)

    def encode(self, tokenizer, pairs, max_length: int) -> list[dict]:
        queries = tokenizer.encode_batch([p.query for p in pairs], max_length=max_length, padding=False, return_tensors=None)
        targets = tokenizer.encode_batch([p.target for p in pairs], max_length=max_length, padding=False, return_tensors=None)
        return [{"query": q, "target": t} for q, t in zip(queries["input_ids"], targets["input_ids"])]

    @staticmethod
    def collate(items: list[dict], pad_id: int) -> dict:
        """A batch of B pairs as the :class:`DualEncoder` reads it: B queries, then their B documents."""
        batch = pad_examples([{"input_ids": it["query"]} for it in items] + [{"input_ids": it["target"]} for it in items],
                             pad_id=pad_id)
        batch["labels"] = torch.arange(len(items))
        return batch

    def metrics(self, model, tokenizer, pairs, *, max_length: int | None = None) -> dict:
        return retrieval_metrics(model, tokenizer, pairs, max_length=max_length)


RETRIEVAL_PAIRS = RetrievalPairs()


def contrastive_finetune(mlm: MaskedLM, tokenizer, task: RetrievalTask, config: ContrastiveConfig = ContrastiveConfig(), *,
                         evaluate_test: bool = True, progress: bool = False) -> TrainResult:
    """Fine-tune a :class:`DualEncoder` made from ``mlm`` on ``task``'s training pairs; returns it
    with the weights of the best validation MRR (the starting weights if training never beats them)."""
    if not isinstance(config, ContrastiveConfig):
        raise ValueError(f"config must be a ContrastiveConfig, got {type(config).__name__}")
    if len(task.train) < config.batch_size or not task.valid:
        raise ValueError(f"task {task.name!r} needs at least batch_size={config.batch_size} training pairs and a validation "
                         f"split; it has {len(task.train)} and {len(task.valid)}")
    check_vocabulary(mlm.config, tokenizer)
    max_length = _check_length(config.max_length, mlm.config)
    kind = task.kind
    t0 = time.perf_counter()
    torch.manual_seed(config.seed + seed_offset())
    model = kind.head(mlm, pooling=config.pooling, temperature=config.temperature)
    device = pick_device(config.device)
    model.to(device).train()
    # drop_last in spirit: a batch of one pair has no negative, so an epoch is cut to whole batches
    items = kind.encode(tokenizer, task.train, max_length)
    items = items[: len(items) - len(items) % config.batch_size]
    train = LabelledBatches(items, batch_size=config.batch_size, seed=config.seed + seed_offset(), pad_id=tokenizer.pad_id,
                            collate=lambda batch: kind.collate(batch, tokenizer.pad_id))
    core = StepCore(model, lr=config.lr, total_steps=config.max_steps, warmup_steps=int(config.warmup_ratio * config.max_steps),
                    weight_decay=config.weight_decay, clip_norm=config.clip_norm, device=device,
                    precision=resolve_precision(config.precision, device))
    plan = FitPlan(max_steps=config.max_steps, eval_every=config.eval_every, metric=(f"valid_{kind.main_metric}",),
                   higher_is_better=True, patience=config.patience, eval_at_start=True, keep_start=True)

    def evaluate(step: int, train_loss: float | None) -> dict:
        scores = kind.metrics(model, tokenizer, task.valid, max_length=max_length)
        return {"step": step, "train_loss": train_loss, **{f"valid_{k}": v for k, v in scores.items()}}

    result = fit(core, lambda step: [train(step)], plan, evaluate, progress=progress, desc=f"contrastive {task.name}",
                 before_step=lambda step: torch.manual_seed(stream_seed(train.seed, "finetune-dropout", step)))
    model.eval()
    result.test = kind.metrics(model, tokenizer, task.test, max_length=max_length) if evaluate_test else None
    result.seconds = time.perf_counter() - t0
    return result
