"""Domain-adaptive pretraining (DAPT): measure the shift, continue MLM on domain text, extend the
vocabulary.

The recipe of Gururangan et al. (2020), "Don't Stop Pretraining", at the book's scale:

1. :func:`domain_shift` – how far the domain is from the text the model was pretrained on:
   overlap of the most frequent content words, words never seen, and how the general tokenizer
   fragments domain words;
2. :func:`dapt` – continue masked-LM training of a general checkpoint on the domain's train split,
   watching the masked-token loss on the domain's validation text *and* on general validation text
   (what the model forgets), with early stopping on the domain loss;
3. :func:`domain_words` and :func:`extend_vocabulary` – optionally give frequent domain words a
   token of their own, each new embedding starting as the mean of the pieces it replaces;
4. :func:`overfit_runs` – DAPT pushed too far (a small slice of the domain at the pretraining
   rate), to the end and with early stopping: what stopping early keeps.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, replace
from typing import Sequence

import torch

from .corpus.stats import vocabulary_overlap, word_frequencies
from .model import MaskedLM, check_vocabulary, is_language_model
from .tokenizer import SPECIAL_TOKENS, MLMTokenizer, check_texts, wordpiece_tokenizer
from .training import PretrainResult, TrainConfig, pretrain

__all__ = [
    "DomainShift", "domain_shift", "dapt", "domain_words", "extend_vocabulary", "load_pretrained", "dapt_config",
    "adapted_models", "AdaptedModels", "OverfitSettings", "OVERFIT", "OverfitRuns", "overfit_runs",
]


# -- 1. the shift, before any training -------------------------------------------------------------


@dataclass(frozen=True)
class DomainShift:
    """How different ``domain`` text is from the ``general`` text a model and tokenizer know.

    ``overlap``: share of the ``k`` most frequent content words the two have in common (the paper's
    measure). ``unseen_words``: share of the domain's running words (tokens, counted with
    repetition) that never occur in the general text. ``pieces_per_word``, ``share_split`` and
    ``unk_rate``: the general tokenizer on the domain text (and, for comparison, on general text).
    """

    general: str
    domain: str
    k: int
    overlap: float
    unseen_words: float
    pieces_per_word: float
    share_split: float
    unk_rate: float
    general_pieces_per_word: float
    general_share_split: float

    def as_row(self) -> dict:
        return {
            "general": self.general, "domain": self.domain, f"top-{self.k:,} overlap": self.overlap,
            "domain words unseen in general text": self.unseen_words,
            "pieces/word (general text)": self.general_pieces_per_word,
            "pieces/word (domain text)": self.pieces_per_word,
            "split words (general text)": self.general_share_split,
            "split words (domain text)": self.share_split, "[UNK] rate (domain)": self.unk_rate,
        }


def domain_shift(tokenizer: MLMTokenizer, general_texts: Sequence[str], domain_texts: Sequence[str], *,
                 k: int = 5000, general: str = "general", domain: str = "domain") -> DomainShift:
    """Measure the shift from ``general_texts`` (what ``tokenizer`` was trained on) to ``domain_texts``."""
    general_texts = check_texts(general_texts, "general_texts")
    domain_texts = check_texts(domain_texts, "domain_texts")
    g_counts, d_counts = word_frequencies(general_texts), word_frequencies(domain_texts)
    unseen = sum(n for w, n in d_counts.items() if w not in g_counts) / sum(d_counts.values())
    on_domain, on_general = tokenizer.fragmentation(domain_texts), tokenizer.fragmentation(general_texts)
    return DomainShift(general, domain, k, vocabulary_overlap(g_counts, d_counts, k), unseen,
                       on_domain.pieces_per_word, on_domain.share_split, on_domain.unk_rate,
                       on_general.pieces_per_word, on_general.share_split)


# -- 2. continued pretraining ------------------------------------------------------------------------


def dapt_config(pretrain_config: TrainConfig, max_steps: int = 1000, *, lr: float | None = None,
                eval_every: int = 100, **overrides) -> TrainConfig:
    """Settings for continued pretraining, from those of the original run: the same batch, length
    and masking; ``max_steps`` new steps with a 5% warm-up; half the original peak learning rate
    unless ``lr`` says otherwise (the weights are already good: large steps would undo them)."""
    return pretrain_config.replace(max_steps=max_steps, warmup_steps=max(1, max_steps // 20), lr=pretrain_config.lr / 2 if lr is None else lr,
                                   eval_every=eval_every, checkpoint_every=0, **overrides)


def dapt(
    model: MaskedLM,
    tokenizer: MLMTokenizer,
    domain_train: Sequence[str],
    domain_valid: Sequence[str],
    general_valid: Sequence[str],
    config: TrainConfig,
    *,
    patience: int | None = 3,
    min_delta: float = 0.0,
    extra_valid: dict[str, Sequence[str]] | None = None,
    out_dir=None,
    cache: bool = False,
    progress: bool = True,
    resume: bool = False,
    stop_after: int | None = None,
) -> PretrainResult:
    """Continue masked-LM training of ``model`` on ``domain_train``: domain-adaptive pretraining.

    The model given is not changed (training runs on a copy). Every ``config.eval_every`` steps,
    and at step 0, the masked-token loss is measured on ``domain_valid`` (logged as ``valid_*``)
    and on ``general_valid`` (``general_*``); with ``patience`` the run stops once the domain loss
    has not improved for that many evaluations and returns the best weights.
    ``extra_valid={"name": texts}`` tracks more validation sets (logged as ``name_loss``, ...).
    A fresh AdamW and schedule (``config``: usually a lower peak rate than pretraining) start here.
    ``model`` is a trained ``MaskedLM`` or a published ``transformers`` model with its tokenizer
    (:func:`mlm_lessons.published.load_published`). ``stop_after`` and ``resume`` (with ``out_dir``
    and ``patience=None``) split the run into sessions, exactly as :func:`~mlm_lessons.training.pretrain` does.
    """
    if not is_language_model(model):
        raise ValueError(f"dapt continues a trained MaskedLM (or a published model: mlm_lessons.published.load_published), "
                         f"got {type(model).__name__}; pretrain one first")
    check_vocabulary(model.config, tokenizer)
    return pretrain(
        copy.deepcopy(model), tokenizer, domain_train, domain_valid, config, out_dir=out_dir,
        also_evaluate={"general": list(general_valid), **(extra_valid or {})}, patience=patience, min_delta=min_delta,
        eval_at_start=True, cache=cache, progress=progress, resume=resume, stop_after=stop_after,
    )


# -- 3. vocabulary extension -------------------------------------------------------------------------


def domain_words(tokenizer: MLMTokenizer, domain_texts: Sequence[str], k: int = 500, *, min_count: int = 20) -> list[str]:
    """The ``k`` domain words that would gain most from a token of their own.

    Candidates are words (as the tokenizer's pre-tokenizer sees them, letters only) that occur at
    least ``min_count`` times in ``domain_texts`` and that ``tokenizer`` cuts into two or more
    pieces; they are ranked by the pieces a new token would save, ``count × (pieces - 1)``.
    """
    domain_texts = check_texts(domain_texts, "domain_texts")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}")
    counts: Counter[str] = Counter()
    for t in domain_texts:
        counts.update(w for w in tokenizer.words(t) if w.isalpha())
    candidates = sorted(w for w, n in counts.items() if n >= min_count)
    vocab = tokenizer.get_vocab()
    saving = {}
    for w, ids in zip(candidates, tokenizer.piece_ids(candidates)):
        if len(ids) > 1 and w not in vocab:
            saving[w] = counts[w] * (len(ids) - 1)
    return sorted(saving, key=lambda w: (-saving[w], w))[:k]


def _lowercases(tokenizer: MLMTokenizer) -> bool:
    normalizer = json.loads(tokenizer.to_json()).get("normalizer") or {}
    return bool(normalizer.get("lowercase", False))


def extend_vocabulary(model: MaskedLM, tokenizer: MLMTokenizer, words: Sequence[str]) -> tuple[MaskedLM, MLMTokenizer]:
    """A copy of ``model`` and a tokenizer with ``words`` added as whole-word tokens.

    New tokens take the ids after the old ones, so every old id, embedding and output bias stays
    exactly as it was. Each new embedding (which is also the new token's output weight: they are
    tied) starts as the mean of the embeddings of the pieces the old tokenizer cut the word into,
    and its output bias as the mean of their biases – the model starts out treating the new token
    roughly as it treated its pieces.
    """
    check_vocabulary(model.config, tokenizer)
    words = list(words)
    if not words:
        raise ValueError("words is empty; pass the domain words to add, e.g. domain_words(tokenizer, texts)")
    lowercase = _lowercases(tokenizer)
    vocab = tokenizer.get_vocab()
    problems = [w for w in words if not isinstance(w, str) or not w or any(ch.isspace() for ch in w)
                or w in SPECIAL_TOKENS or w.startswith("##") or tokenizer.words(w) != [w]
                or (lowercase and w != w.lower())]
    if problems:
        raise ValueError(
            f"cannot add {problems[0]!r}: new tokens must be single words as the tokenizer sees them "
            f"(no spaces or punctuation, not a special token or a '##' piece{', lowercase' if lowercase else ''})"
        )
    repeated = sorted({w for w in words if words.count(w) > 1})
    if repeated:
        raise ValueError(f"words must be unique; repeated: {repeated[:5]}")
    known = [w for w in words if w in vocab]
    if known:
        raise ValueError(f"{known[0]!r} is already in the vocabulary (id {vocab[known[0]]}); pass only new words")

    old_size = tokenizer.vocab_size
    pieces = tokenizer.piece_ids(words)
    extended_vocab = dict(vocab)
    for i, w in enumerate(words):
        extended_vocab[w] = old_size + i
    new_tokenizer = wordpiece_tokenizer(extended_vocab, lowercase=lowercase)

    config = replace(model.config, vocab_size=old_size + len(words), vocab_fingerprint=new_tokenizer.fingerprint)
    new_model = MaskedLM(config)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    old_emb, old_bias = state["encoder.tok_emb.weight"], state["head_bias"]
    new_rows = torch.stack([old_emb[p].mean(0) for p in pieces])
    new_bias = torch.stack([old_bias[p].mean() for p in pieces])
    state["encoder.tok_emb.weight"] = torch.cat([old_emb, new_rows])
    state["head_bias"] = torch.cat([old_bias, new_bias])
    new_model.load_state_dict(state)
    new_model.to(old_emb.device).train(model.training)
    return new_model, new_tokenizer


def load_pretrained(run_dir, tokenizer: MLMTokenizer | None = None, device: str = "cpu") -> tuple[MaskedLM, MLMTokenizer]:
    """The model and tokenizer of a run directory (``pretrain``, ``dapt``); the model's configuration
    records its vocabulary's fingerprint. A ``tokenizer`` passed in must be the run's own vocabulary."""
    from .rundir import load_run

    model, own, _ = load_run(run_dir, device=device)
    if tokenizer is not None:
        check_vocabulary(model.config, tokenizer)
    return model, own if tokenizer is None else tokenizer


# -- the book's set of models -------------------------------------------------------------------------


@dataclass
class AdaptedModels:
    """The models chapters 7 and 8 compare, and the tokenizers they read with."""

    tokenizer: MLMTokenizer
    general: PretrainResult
    dapt: PretrainResult
    control: PretrainResult
    extended_tokenizer: MLMTokenizer | None = None
    extended: PretrainResult | None = None
    config: TrainConfig | None = None  # the general model's pretraining settings


def adapted_models(*, general_corpus: str = "python-docs", domain_corpus: str = "pytorch-docs",
                   control_corpus: str = "numpy-docs", preset_name: str = "cpu-small", dapt_steps: int = 1000,
                   patience: int | None = 3, extend: int = 0, seed: int = 0, device: str = "auto",
                   cache: bool = True, progress: bool = False) -> AdaptedModels:
    """Pretrain a general model, then adapt it to the domain (DAPT), to a control corpus (¬DAPT)
    and, with ``extend=K``, to the domain with K domain words added to the vocabulary.

    Chapter 7 builds these step by step; with ``cache=True`` (the default) every run is kept in
    the run cache, so chapter 8 – or a second call – loads them instead of training again.
    """
    from .corpus import load_corpus
    from .tokenizer import train_tokenizer
    from .training import preset

    general_c, domain_c, control_c = (load_corpus(n) for n in (general_corpus, domain_corpus, control_corpus))
    tok = train_tokenizer(general_c.texts("train"), vocab_size=8000)
    model_config, train_config = preset(preset_name, tok.vocab_size, seed=seed, device=device)
    general = pretrain(model_config, tok, general_c.texts("train"), general_c.texts("valid"), train_config,
                       cache=cache, progress=progress)
    config = dapt_config(train_config, dapt_steps)
    adapted = dapt(general.model, tok, domain_c.texts("train"), domain_c.texts("valid"), general_c.texts("valid"),
                   config, patience=patience, cache=cache, progress=progress)
    control = dapt(general.model, tok, control_c.texts("train"), control_c.texts("valid"), general_c.texts("valid"),
                   config, patience=patience, extra_valid={"domain": domain_c.texts("valid")}, cache=cache, progress=progress)
    models = AdaptedModels(tok, general, adapted, control, config=train_config)
    if extend:
        words = domain_words(tok, domain_c.texts("train"), extend)
        ext_model, ext_tok = extend_vocabulary(general.model, tok, words)
        models.extended_tokenizer = ext_tok
        models.extended = dapt(ext_model, ext_tok, domain_c.texts("train"), domain_c.texts("valid"), general_c.texts("valid"),
                               config, patience=patience, cache=cache, progress=progress)
    return models


# -- 4. DAPT pushed too far --------------------------------------------------------------------------


@dataclass(frozen=True)
class OverfitSettings:
    """DAPT made to over-specialise: the first ``share`` of the domain's training documents (a small
    domain corpus, seen for many passes) for ``steps`` steps at ``lr_factor`` times the rate of
    :func:`dapt_config` (2: the pretraining peak rate), evaluated every ``eval_every`` steps;
    early stopping with ``patience`` evaluations on the domain validation loss."""

    share: float = 0.1
    steps: int = 1500
    lr_factor: float = 2.0
    eval_every: int = 100
    patience: int = 3

    def __post_init__(self):
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be a share of the domain's training documents in (0, 1], got {self.share!r}")
        if not isinstance(self.steps, int) or self.steps < 2 * self.eval_every:
            raise ValueError(f"steps must be an int of at least two evaluations ({2 * self.eval_every}), got {self.steps!r}")
        if not self.lr_factor > 0:
            raise ValueError(f"lr_factor must be > 0, got {self.lr_factor!r}")
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"patience must be a positive int, got {self.patience!r}")


#: Chapter 7's setting (``benchmarks/dapt_overfit.py`` uses the same).
OVERFIT = OverfitSettings()


@dataclass
class OverfitRuns:
    """The two runs of :func:`overfit_runs`: ``last`` ran every step (its weights are the last ones);
    ``kept`` is the same run with early stopping (the weights of ``kept.best_step``)."""

    documents: int
    config: TrainConfig
    last: PretrainResult
    kept: PretrainResult


def overfit_runs(model: MaskedLM, tokenizer: MLMTokenizer, pretrain_config: TrainConfig, settings: OverfitSettings = OVERFIT, *,
                 general_corpus: str = "python-docs", domain_corpus: str = "pytorch-docs", cache: bool = True,
                 progress: bool = False) -> OverfitRuns:
    """DAPT of the general ``model`` (pretrained with ``pretrain_config``) as ``settings`` say, once
    to the end and once with early stopping.

    Both runs share their settings and seed, so they draw the same batches: the early-stopped run is
    the full one cut short (its evaluations are the first ones of the full run).
    """
    from .corpus import load_corpus

    if not isinstance(settings, OverfitSettings):
        raise ValueError(f"settings must be an OverfitSettings, got {type(settings).__name__}")
    if not isinstance(pretrain_config, TrainConfig):
        raise ValueError(f"pretrain_config must be the general model's TrainConfig, got {type(pretrain_config).__name__}")
    general_c, domain_c = load_corpus(general_corpus), load_corpus(domain_corpus)
    train = domain_c.texts("train")
    train = train[: max(1, round(settings.share * len(train)))]
    base = dapt_config(pretrain_config, settings.steps, eval_every=settings.eval_every)
    config = base.replace(lr=base.lr * settings.lr_factor)
    common = (model, tokenizer, train, domain_c.texts("valid"), general_c.texts("valid"), config)
    last = dapt(*common, patience=None, cache=cache, progress=progress)
    kept = dapt(*common, patience=settings.patience, cache=cache, progress=progress)
    return OverfitRuns(len(train), config, last, kept)
