"""Masking ablations in miniature (chapter 6): three published results, re-run at the book's scale.

- *corruption*: what to put at the selected positions – BERT's 80% ``[MASK]`` / 10% same / 10%
  random against five other splits (Devlin et al. 2019, Table 8);
- *ratio*: mask 15%, 30%, 40% or 60% of the positions (Wettig et al. 2023);
- *static*: masks drawn once per sequence (static) or afresh every step (dynamic; Liu et al. 2019,
  RoBERTa, Table 1), on a training subset small enough to be seen for many epochs;
- *predictability* (:data:`PREDICTABILITY`): single pieces against whole words and SpanBERT's spans
  (Joshi et al. 2020) at the same budget of masked pieces – a word's continuation pieces are easy to
  guess from its visible first piece, so masking single pieces sets easier tasks.

Every variant is pretrained with the same budget and judged three ways, none of which depends on
how the variant itself masks: the masked-token loss on the same fixed evaluation mask (15%,
80/10/10, one seed for all runs), fine-tuning on a few labels of a downstream task, and a probe
(a linear head trained on the frozen encoder). A variant's own validation loss is kept as well, but
is not comparable across mask ratios: it is measured on its own masks.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass

from .masking import Fate, MaskingConfig, mask_once
from .training import TrainConfig, eval_batches, evaluate, preset, pretrain

__all__ = ["Variant", "STUDIES", "PREDICTABILITY", "PredictabilitySettings", "run_predictability", "word_eval_config",
           "masked_share", "choose_protocol", "AblationSettings", "run_variant", "reference_scores", "summarize", "fixed_eval_config",
           "evaluate_by_fate"]


@dataclass(frozen=True)
class Variant:
    """One way of masking. ``name`` follows each paper's notation: MASK/SAME/RND shares for the
    corruption study (Devlin et al.'s column order), the ratio for the ratio study."""

    study: str
    name: str
    mask_ratio: float = 0.15
    p_mask: float = 0.8
    p_random: float = 0.1
    p_keep: float = 0.1
    static_masks: int = 0
    subset: bool = False  # train on the subset of the static study
    whole_word: bool = False
    span_p: float | None = None  # spans of whole words at a budget of pieces (MaskingConfig.span_p)

    def masking(self) -> MaskingConfig:
        return MaskingConfig(mask_ratio=self.mask_ratio, p_mask=self.p_mask, p_random=self.p_random, p_keep=self.p_keep,
                             whole_word=self.whole_word, span_p=self.span_p)


def _corruption(mask: int, same: int, rnd: int) -> Variant:
    return Variant("corruption", f"{mask}/{same}/{rnd}", p_mask=mask / 100, p_random=rnd / 100, p_keep=same / 100)


#: The variants of each study, in the papers' order. The 15%, 80/10/10, dynamic run on the full
#: training set is shared by the corruption and the ratio study (same settings, one run).
STUDIES: dict[str, list[Variant]] = {
    "corruption": [_corruption(*s) for s in ((80, 10, 10), (100, 0, 0), (80, 0, 20), (80, 20, 0), (0, 20, 80), (0, 0, 100))],
    "ratio": [Variant("ratio", f"{r}%", mask_ratio=r / 100) for r in (15, 30, 40, 60)],
    "static": [Variant("static", "dynamic", subset=True), Variant("static", "static", static_masks=3, subset=True)],
}


#: The predictability study: 15% of the pieces, 80/10/10, dynamic masking, chosen three ways. Single
#: pieces (BERT's original masking: a word's other pieces often stay visible), whole words (BERT's
#: whole-word models: all pieces of a word together) and spans of whole words with lengths drawn
#: from a geometric distribution, p = 0.2, at most 10 words (SpanBERT). The budget is the same
#: number of pieces in every row.
PREDICTABILITY: list[Variant] = [
    Variant("predictability", "single pieces"),
    Variant("predictability", "whole words", whole_word=True, span_p=1.0),
    Variant("predictability", "spans", whole_word=True, span_p=0.2),
]


@dataclass(frozen=True)
class AblationSettings:
    """The budget shared by every variant: the ``cpu-small`` model trained ``steps`` steps on the
    general corpus; the static study on ``subset`` of its training documents (so that the same
    steps make many epochs); downstream, ``per_class`` labelled examples for fine-tuning and the
    probe. Fine-tuning is scored on ``code-spans`` by default, the task on which chapter 8 finds
    pretraining ahead of random weights (on the topic task with 50 labels it is not), at the rate
    chapter 8's protocol chose there (2e-3)."""

    steps: int = 1000
    subset: float = 0.2
    per_class: int = 50
    finetune_lr: float = 2e-3
    probe_lr: float = 3e-2
    finetune_task: str = "code-spans"
    probe_task: str = "torch-subpackage"

    def __post_init__(self):
        if not isinstance(self.steps, int) or self.steps < 20:
            raise ValueError(f"steps must be an int >= 20, got {self.steps!r}")
        if not 0 < self.subset <= 1:
            raise ValueError(f"subset must be a share of the training documents in (0, 1], got {self.subset!r}")
        if not isinstance(self.per_class, int) or self.per_class < 1:
            raise ValueError(f"per_class must be a positive int, got {self.per_class!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fixed_eval_config(max_length: int = 64) -> TrainConfig:
    """The evaluation mask every variant is scored on: 15%, 80/10/10, seed 0 – the same positions and
    corruptions for every run, whatever the variant trained with."""
    return TrainConfig(max_length=max_length, eval_sequences=512, seed=0, masking=MaskingConfig())


def word_eval_config(max_length: int = 64) -> TrainConfig:
    """The fixed evaluation mask at the word level: whole words, 15% of the pieces, 80/10/10, seed 0.
    No piece of a masked word is visible, so no run can score by completing a word from its first
    piece."""
    return fixed_eval_config(max_length).replace(masking=MaskingConfig(whole_word=True, span_p=1.0))


def masked_share(tokenizer, texts, masking: MaskingConfig, *, max_length: int = 64, sequences: int = 512, seed: int = 0) -> float:
    """The share of the real pieces that ``masking`` selects, on the first ``sequences`` chunks of
    ``texts``: what a variant's budget is, measured rather than assumed."""
    from .seeding import stream_generator

    examples = tokenizer.encode_chunks(texts, max_length=max_length)[:sequences]
    masked = mask_once(examples, tokenizer, masking, generator=stream_generator(seed, "eval-mask"))
    special = set(tokenizer.special_ids)
    real = sum(sum(1 for t in ex["input_ids"] if t not in special) for ex in examples)
    return sum(sum(1 for f in m["fate"] if f != Fate.UNTOUCHED) for m in masked) / real


def evaluate_by_fate(model, tokenizer, texts, config: TrainConfig | None = None, batch_size: int = 64) -> dict:
    """Masked-token loss and accuracy on validation text masked once as ``eval_batches`` masks it
    (same seed, same positions), overall and split by what the position holds: ``[MASK]``, a random
    token, or its own token kept. The split tells apart predicting from context (``mask``) from
    repairing a wrong token (``random``) and copying a visible one (``kept``)."""
    config = config or fixed_eval_config()
    device = next(model.parameters()).device
    return evaluate(model, eval_batches(tokenizer, texts, config, batch_size=batch_size), device)


def _train_texts(corpus, variant: Variant, settings: AblationSettings) -> list[str]:
    texts = corpus.texts("train")
    if not variant.subset:
        return texts
    return texts[: max(1, round(settings.subset * len(texts)))]


def run_variant(variant: Variant, seed: int, *, tokenizer, corpus, tasks: dict, settings: AblationSettings = AblationSettings(),
                cache: bool = True, progress: bool = False) -> dict:
    """Pretrain ``variant`` with ``seed`` and score it; returns one flat row of results.

    ``tasks`` maps ``settings.finetune_task`` and ``settings.probe_task`` to their ``TaskData``.
    """
    if not isinstance(variant, Variant):
        raise ValueError(f"variant must be a Variant (see STUDIES), got {type(variant).__name__}")
    missing = {settings.finetune_task, settings.probe_task} - set(tasks)
    if missing:
        raise ValueError(f"tasks lacks {sorted(missing)}; pass {{name: load_task(name)}} for each")
    model_config, train_config = preset("cpu-small", tokenizer.vocab_size, max_steps=settings.steps,
                                        eval_every=settings.steps, seed=seed)
    # its own validation loss on its own masking (the fixed evaluation below is the comparable one)
    train_config = train_config.replace(masking=variant.masking(), eval_masking=None, static_masks=variant.static_masks)
    result = pretrain(model_config, tokenizer, _train_texts(corpus, variant, settings), corpus.texts("valid"),
                      train_config, cache=cache, progress=progress)
    last_train = [h["train_loss"] for h in result.history if "train_loss" in h][-1]
    fixed = evaluate_by_fate(result.model, tokenizer, corpus.texts("valid"), fixed_eval_config(train_config.max_length))
    row = {"study": variant.study, "variant": variant.name, "seed": seed,
           "own_valid_loss": result.history[-1]["valid_loss"], "train_loss": last_train,
           **{f"fixed_{k}": v for k, v in fixed.items() if k.endswith(("loss", "accuracy"))}}
    row.update(_downstream(result.model, seed, tokenizer=tokenizer, tasks=tasks, settings=settings))
    return row


def _downstream(init, seed: int, *, tokenizer, tasks: dict, settings: AblationSettings) -> dict:
    from .finetuning import FinetuneConfig, build_model, finetune, main_metric

    ft_task = tasks[settings.finetune_task].subsample(settings.per_class, seed=seed)
    ft = finetune(build_model(ft_task, init, seed=seed), tokenizer, ft_task,
                  FinetuneConfig(lr=settings.finetune_lr, seed=seed, device="cpu"))
    probe_task = tasks[settings.probe_task].subsample(settings.per_class, seed=seed)
    # the probe: mean-pooled frozen features (the [CLS] state of an MLM is never trained to summarise)
    probe = finetune(build_model(probe_task, init, pooling="mean", seed=seed), tokenizer, probe_task,
                     FinetuneConfig(lr=settings.probe_lr, seed=seed, device="cpu", freeze_encoder=True))
    metric = main_metric(ft_task)
    return {f"finetune_{metric}": ft.test[metric], "probe_macro_f1": probe.test["macro_f1"]}


def reference_scores(seed: int, *, tokenizer, tasks: dict, settings: AblationSettings = AblationSettings()) -> dict:
    """The downstream scores of an encoder that was never pretrained (random weights): what the
    fine-tuning and the probe give without any masking at all, the floor every variant should beat."""
    model_config, _ = preset("cpu-small", tokenizer.vocab_size)
    row = {"study": "reference", "variant": "no pretraining", "seed": seed}
    row.update(_downstream(model_config, seed, tokenizer=tokenizer, tasks=tasks, settings=settings))
    return row


SUMMARY_METRICS = ("fixed_loss", "fixed_accuracy", "fixed_mask_loss", "fixed_mask_accuracy", "fixed_random_loss",
                   "fixed_random_accuracy", "fixed_kept_loss", "fixed_kept_accuracy", "finetune_macro_f1", "finetune_span_f1", "probe_macro_f1",
                   "own_valid_loss", "train_loss")


def summarize(rows: list[dict], metrics: tuple[str, ...] = SUMMARY_METRICS) -> list[dict]:
    """Mean, sample standard deviation (n − 1) and standard error over seeds, per study and variant,
    in the order the rows first appear. A metric a row lacks is skipped for that row."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        for key in ("study", "variant", "seed"):
            if key not in r:
                raise ValueError(f"every row needs 'study', 'variant' and 'seed'; this one lacks {key!r}: {r}")
        groups.setdefault((r["study"], r["variant"]), []).append(r)
    out = []
    for (study, variant), members in groups.items():
        entry = {"study": study, "variant": variant, "seeds": len(members)}
        for m in metrics:
            values = [r[m] for r in members if m in r]
            if not values:
                continue
            sd = statistics.stdev(values) if len(values) > 1 else math.nan
            entry[m] = statistics.fmean(values)
            entry[f"{m}_std"] = sd
            entry[f"{m}_sem"] = sd / math.sqrt(len(values))
        out.append(entry)
    return out


# -- the predictability study: the downstream tasks under chapter 8's protocol ----------------------


@dataclass(frozen=True)
class PredictabilitySettings:
    """The budget of the predictability study: every variant pretrains the ``cpu-small`` model for
    ``steps`` steps on the general corpus (the other studies' budget), then is judged on the fixed
    masks (pieces and words) and downstream as chapter 8 judges its encoders: ``per_class`` labels
    per class of each of ``tasks`` (chapter 8's fine-tuning settings for 50 labels: at most 80 steps,
    an evaluation every 20, patience 3; mean pooling for classification), every rate of ``lrs`` on
    every seed, the rate chosen on the validation split; retrieval by the mean-pooled encoder,
    untrained for the task."""

    steps: int = 1000
    per_class: int = 50
    lrs: tuple[float, ...] = (1e-3, 2e-3, 4e-3, 8e-3)
    tasks: tuple[str, ...] = ("torch-subpackage", "code-spans")
    max_steps: int = 80
    eval_every: int = 20
    patience: int = 3

    def __post_init__(self):
        if not isinstance(self.steps, int) or self.steps < 20:
            raise ValueError(f"steps must be an int >= 20, got {self.steps!r}")
        if not isinstance(self.per_class, int) or self.per_class < 1:
            raise ValueError(f"per_class must be a positive int, got {self.per_class!r}")
        if len(self.lrs) < 2 or any(not lr > 0 for lr in self.lrs):
            raise ValueError(f"lrs must hold at least two positive learning rates, got {self.lrs!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _pretrained(variant: Variant, seed: int, *, tokenizer, corpus, steps: int, cache: bool, progress: bool):
    model_config, train_config = preset("cpu-small", tokenizer.vocab_size, max_steps=steps, eval_every=steps, seed=seed)
    train_config = train_config.replace(masking=variant.masking(), eval_masking=None, static_masks=variant.static_masks)
    result = pretrain(model_config, tokenizer, corpus.texts("train"), corpus.texts("valid"), train_config,
                      cache=cache, progress=progress)
    return result, train_config


def run_predictability(variant: Variant, seed: int, *, tokenizer, corpus, tasks: dict, retrieval=None,
                       settings: PredictabilitySettings = PredictabilitySettings(), lrs=None, cache: bool = True,
                       progress: bool = False) -> dict:
    """Pretrain ``variant`` with ``seed`` (from the run cache when it is there) and score it: the
    share of pieces its masking selects, the fixed masks of pieces and of words, fine-tuning of each
    task at each rate of ``lrs`` (default ``settings.lrs``) and, with ``retrieval`` (a
    :class:`~mlm_lessons.retrieval.RetrievalTask`), zero-shot retrieval on its valid and test pairs.

    Returns one row: ``fixed_*`` and ``word_*`` metrics (loss and accuracy, overall and by fate),
    ``finetune`` as ``{task: {str(lr): {"valid", "test"}}}`` (the task's main metric), ``retrieval``
    as ``{split: rank metrics}``.
    """
    from .finetuning import FinetuneConfig, build_model, finetune, main_metric

    if not isinstance(variant, Variant):
        raise ValueError(f"variant must be a Variant (see PREDICTABILITY), got {type(variant).__name__}")
    missing = set(settings.tasks) - set(tasks)
    if missing:
        raise ValueError(f"tasks lacks {sorted(missing)}; pass {{name: load_task(name)}} for each")
    result, train_config = _pretrained(variant, seed, tokenizer=tokenizer, corpus=corpus, steps=settings.steps,
                                       cache=cache, progress=progress)
    model, valid = result.model, corpus.texts("valid")
    row = {"study": variant.study, "variant": variant.name, "seed": seed,
           "masked_share": masked_share(tokenizer, valid, variant.masking(), max_length=train_config.max_length),
           "own_valid_loss": result.history[-1]["valid_loss"],
           "train_loss": [h["train_loss"] for h in result.history if "train_loss" in h][-1]}
    for prefix, config in (("fixed", fixed_eval_config(train_config.max_length)), ("word", word_eval_config(train_config.max_length))):
        scores = evaluate_by_fate(model, tokenizer, valid, config)
        row.update({f"{prefix}_{k}": v for k, v in scores.items() if k.endswith(("loss", "accuracy"))})
    row["finetune"] = {}
    for name in settings.tasks:
        task = tasks[name].subsample(settings.per_class, seed=seed)
        metric = main_metric(task)
        runs = {}
        for lr in lrs or settings.lrs:
            config = FinetuneConfig(lr=lr, seed=seed, device="cpu", max_steps=settings.max_steps,
                                    eval_every=settings.eval_every, patience=settings.patience)
            ft = finetune(build_model(task, model, pooling="mean", seed=seed), tokenizer, task, config)
            runs[str(lr)] = {"valid": ft.valid[metric], "test": ft.test[metric]}
        row["finetune"][name] = runs
    if retrieval is not None:
        from .retrieval import retrieval_metrics

        row["retrieval"] = {split: retrieval_metrics(model, tokenizer, retrieval.split(split), pooling="mean")
                            for split in ("valid", "test")}
    return row


def choose_protocol(rows: list[dict], task: str) -> dict:
    """Chapter 8's choice for each variant of ``rows`` on ``task``: the rate with the best mean
    validation score over the seeds (:func:`~mlm_lessons.comparison.choose_lr`), and the test scores
    at that rate, seed by seed. Returns ``{variant: {"lr", "at_edge", "seeds", "test"}}``."""
    from .comparison import choose_lr

    by_variant: dict[str, list[dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    out = {}
    for variant, members in by_variant.items():
        members = sorted(members, key=lambda r: r["seed"])
        rates = set.intersection(*(set(r["finetune"][task]) for r in members))
        lr, edge = choose_lr({float(rate): [r["finetune"][task][rate]["valid"] for r in members] for rate in rates})
        rate = next(k for k in rates if float(k) == lr)
        out[variant] = {"lr": lr, "at_edge": edge, "seeds": [r["seed"] for r in members],
                        "test": [r["finetune"][task][rate]["test"] for r in members]}
    return out
