"""Settings: the plain configurations, the presets and every list of allowed values, in one place.

Nothing here imports PyTorch, so the command line builds its parser from these – its defaults and
choices are the ones below, never typed again – and a configuration can be made, checked and saved
without a GPU library loaded. Each configuration declares its rules beside its fields
(:mod:`mlm_lessons._checks`) and checks what involves two fields at once in ``__post_init__``.

- :class:`FitPlan` – when the training loop (:func:`mlm_lessons.engine.fit`) evaluates and stops;
- :class:`MaskingConfig` – how masking selects and corrupts positions (chapter 2);
- :class:`TrainConfig`, :data:`PRESETS` – how to pretrain (chapter 5) and continue pretraining (DAPT,
  chapter 7; :data:`DAPT_DEFAULTS`);
- :class:`FinetuneConfig`, :class:`ContrastiveConfig` – how to fine-tune a head or a dual encoder
  (chapter 8);
- :data:`PUBLISHED_DEFAULTS` – how a published ``transformers`` model is adapted and fine-tuned
  (:mod:`mlm_lessons.published`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

from ._checks import choice, device, flag, integer, number, require_number, validate

__all__ = [
    "PRECISIONS", "OBJECTIVES", "SELECTIONS", "CLASSIFIER_POOLINGS", "POOLINGS", "TASK_NAMES", "PRESETS", "PRESET_NAMES",
    "DEFAULT_PRESET", "VOCAB_SIZE", "MIN_FREQUENCY", "DAPT_DEFAULTS", "DaptDefaults", "MaskingConfig", "TrainConfig",
    "FinetuneConfig", "ContrastiveConfig", "FitPlan", "check_accumulation", "PUBLISHED_DEFAULTS", "PublishedDefaults",
]

#: Numeric precisions of a run: "auto" is bf16 on a GPU that has it, fp16 on one that has not, fp32 elsewhere.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: What pretraining predicts: masked positions ("mlm") or the next piece ("causal", chapter 9's twin).
OBJECTIVES = ("mlm", "causal")
#: How masking selects positions: a fixed count per sequence (BERT) or each one independently (Hugging Face's collator).
SELECTIONS = ("exact", "bernoulli")
#: How a classification head reads a text: the ``[CLS]`` state or the mean of the real tokens' states.
CLASSIFIER_POOLINGS = ("cls", "mean")
#: How retrieval turns a text's token states into one vector.
POOLINGS = ("mean", "cls", "last")
#: The fine-tuning tasks labelled from provenance (:mod:`mlm_lessons.tasks`).
TASK_NAMES = ("torch-subpackage", "code-spans")
#: The tokenizer a new run trains: its vocabulary size and the fewest occurrences that make a piece.
VOCAB_SIZE = 8000
MIN_FREQUENCY = 2

@dataclass(frozen=True)
class MaskingConfig:
    """How to mask: the share of positions selected and what becomes of them.

    ``selection="exact"`` selects ``max(1, round(mask_ratio * n))`` of a sequence's ``n`` eligible
    positions (words, with ``whole_word=True``), as BERT's data preparation does;
    ``"bernoulli"`` selects each independently with probability ``mask_ratio``, as Hugging Face's
    ``DataCollatorForLanguageModeling`` does.

    ``span_p`` (with ``whole_word=True``) selects *spans* of whole words, as SpanBERT does (Joshi et
    al., 2020): each span's length in words is drawn from a geometric distribution with parameter
    ``span_p`` truncated to 1 … ``max_span`` words (:func:`span_lengths`); spans are added until
    ``num_to_select(n, mask_ratio)`` of the row's ``n`` *pieces* are selected, never more. The budget
    is counted in pieces, so a run with spans masks as many pieces as one that masks single pieces.
    ``span_p=1.0`` gives spans of one word: whole-word masking at that same piece budget (the rule
    of Hugging Face's ``DataCollatorForWholeWordMask``), where ``whole_word`` alone selects a share of
    the *words*. SpanBERT uses ``span_p=0.2``, ``max_span=10``.
    """

    mask_ratio: float = number(0.15, above=0, at_most=1)
    p_mask: float = number(0.8, at_least=0, at_most=1)
    p_random: float = number(0.1, at_least=0, at_most=1)
    p_keep: float = number(0.1, at_least=0, at_most=1)
    selection: str = choice("exact", SELECTIONS)
    whole_word: bool = flag(False)
    span_p: float | None = None
    max_span: int = integer(10, why=" (a span's most words)")

    def __post_init__(self):
        validate(self)
        total = self.p_mask + self.p_random + self.p_keep
        if abs(total - 1) > 1e-6:
            raise ValueError(
                f"p_mask + p_random + p_keep must equal 1, got {self.p_mask!r} + {self.p_random!r} + "
                f"{self.p_keep!r} = {total!r}"
            )
        if self.span_p is not None:
            require_number(self.span_p, "span_p", above=0, at_most=1,
                           why=" (the geometric distribution's parameter; SpanBERT's is 0.2) or None")
            if not self.whole_word:
                raise ValueError("span_p selects spans of whole words: set whole_word=True with it")
            if self.selection != "exact":
                raise ValueError(f"span_p fills a budget of pieces: it needs selection='exact', got {self.selection!r}")

    @property
    def spans(self) -> bool:
        """Whether selection picks spans of words against a budget of pieces (``span_p`` is set)."""
        return self.span_p is not None


def check_decay_and_clip(config) -> None:
    """AdamW's ``weight_decay`` must be >= 0 and the gradient clipping norm ``clip_norm`` > 0."""
    if not (isinstance(config.weight_decay, (int, float)) and config.weight_decay >= 0) or not (
            isinstance(config.clip_norm, (int, float)) and config.clip_norm > 0):
        raise ValueError(f"weight_decay must be >= 0 and clip_norm > 0, got {config.weight_decay!r} and {config.clip_norm!r}")


def check_room(max_length: int) -> None:
    """A sequence of ``max_length`` pieces must hold [CLS], one piece and [SEP]."""
    if max_length < 3:
        raise ValueError(f"max_length must be >= 3 (room for [CLS], a piece and [SEP]), got {max_length}")


def check_accumulation(batch_size: int, grad_accum: int, processes: int = 1) -> None:
    """A step's ``batch_size`` sequences must split evenly into ``grad_accum`` micro-batches on each of ``processes``."""
    if batch_size % (grad_accum * processes):
        raise ValueError(f"batch_size={batch_size} must be divisible by grad_accum={grad_accum} (each micro-batch holds "
                         f"batch_size / grad_accum sequences; under torchrun: divisible by grad_accum × processes = "
                         f"{grad_accum} × {processes})")


@dataclass(frozen=True)
class FitPlan:
    """When :func:`fit` evaluates, what it follows and when it stops.

    Evaluation runs every ``eval_every`` steps and at ``max_steps`` (and at step 0 with
    ``eval_at_start``). Early stopping follows the first of the ``metric`` keys an evaluation's
    history entry holds (``("valid_mask_loss", "valid_loss")``: the ``[MASK]`` loss, or a causal
    model's only loss), lower or ``higher_is_better``; ``patience`` evaluations in a row without an
    improvement of more than ``min_delta`` end the run (``None``: never), and the best weights are
    restored. ``keep_start`` counts the starting weights as the best so far: a fine-tuning run that
    never improves returns the weights it started from. ``stop_after`` ends this session after that
    step (the schedule still runs to ``max_steps``); ``checkpoint_every`` saves along the way.
    """

    max_steps: int = integer(1)
    eval_every: int = integer(1)
    metric: tuple[str, ...] = ("valid_loss",)
    higher_is_better: bool = False
    patience: int | None = integer(None, optional=True)
    min_delta: float = number(0.0, at_least=0)
    eval_at_start: bool = False
    keep_start: bool = False
    stop_after: int | None = integer(None, optional=True)
    checkpoint_every: int = integer(0, minimum=0)

    def __post_init__(self):
        validate(self)

    @property
    def end(self) -> int:
        """The last step this session runs."""
        return self.max_steps if self.stop_after is None else min(self.max_steps, self.stop_after)

    def score(self, entry: dict) -> float:
        """The value early stopping follows in an evaluation's history ``entry``."""
        for key in self.metric:
            if key in entry:
                return entry[key]
        raise ValueError(f"the evaluation logged none of {', '.join(self.metric)}; it has {', '.join(entry)}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``batch_size`` counts sequences per optimizer step, over all micro-batches
    (``grad_accum``) and all processes."""

    max_steps: int = integer(1000)
    batch_size: int = integer(32)
    grad_accum: int = integer(1)
    max_length: int = integer(128)
    lr: float = number(5e-4, above=0)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = number(1e-6, above=0)
    warmup_steps: int = integer(100, minimum=0)
    min_lr_ratio: float = number(0.0, at_least=0, at_most=1)
    clip_norm: float = 1.0
    eval_every: int = integer(100)
    eval_sequences: int = integer(512)
    log_every: int = integer(10)
    checkpoint_every: int = integer(0, minimum=0)  # 0: only at the end
    seed: int = integer(0, minimum=0)
    device: str = device("auto")
    precision: str = choice("auto", PRECISIONS)
    compile: bool = flag(False)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    # how the validation text is masked (once, with ``seed``); None: as ``masking``. The presets train
    # with 40% and evaluate with BERT's 15%, so that their curves compare with the book's baselines.
    eval_masking: MaskingConfig | None = None
    # 0: dynamic masking (new masks every step, as RoBERTa); k >= 1: static masking, each training
    # sequence masked k ways once and for all, copy ``epoch % k`` used in each epoch (BERT's "dupe factor")
    static_masks: int = integer(0, minimum=0)
    # pack consecutive training chunks into rows of max_length (``masking.pack_examples``), so that a
    # step computes on text rather than padding; the validation text is never packed
    pack: bool = flag(False)
    # "mlm": masked language modeling; "causal": next-token prediction, for a model with causal=True
    objective: str = choice("mlm", OBJECTIVES, notes={"mlm": "masked LM", "causal": "next token"})
    # early stopping: ``patience`` evaluations in a row without an improvement of more than
    # ``min_delta`` in the validation [MASK] loss end the run with the best weights (None: never);
    # ``eval_at_start`` also evaluates the weights training starts from (always, with ``patience``)
    patience: int | None = integer(None, optional=True, why=" (evaluations without improvement) or None")
    min_delta: float = number(0.0, at_least=0)
    eval_at_start: bool = flag(False)

    def __post_init__(self):
        if isinstance(self.masking, dict):
            object.__setattr__(self, "masking", MaskingConfig(**self.masking))
        if isinstance(self.eval_masking, dict):
            object.__setattr__(self, "eval_masking", MaskingConfig(**self.eval_masking))
        if self.eval_masking is not None and not isinstance(self.eval_masking, MaskingConfig):
            raise ValueError(f"eval_masking must be a MaskingConfig (or None: mask validation text as training), "
                             f"got {self.eval_masking!r}")
        object.__setattr__(self, "betas", tuple(self.betas))
        validate(self)
        check_decay_and_clip(self)
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        check_room(self.max_length)
        if self.objective == "causal" and self.static_masks:
            raise ValueError(f"static_masks={self.static_masks} has no meaning for the causal objective, which masks nothing; use 0")
        check_accumulation(self.batch_size, self.grad_accum)
        if self.warmup_steps >= self.max_steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} must be smaller than max_steps={self.max_steps}")

    def to_dict(self) -> dict:
        return asdict(self)

    def plan(self, stop_after: int | None = None) -> "FitPlan":
        """The evaluation and stopping plan of a pretraining run (``stop_after``: end this session early)."""
        return FitPlan(max_steps=self.max_steps, eval_every=self.eval_every, metric=("valid_mask_loss", "valid_loss"),
                       patience=self.patience, min_delta=self.min_delta,
                       eval_at_start=self.eval_at_start or self.patience is not None, stop_after=stop_after,
                       checkpoint_every=self.checkpoint_every)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` (the configuration itself is frozen)."""
        return dataclasses.replace(self, **changes)


#: What every preset shares: 40% of the positions masked in training (Wettig et al. 2023; chapter 6),
#: BERT's 15% for the validation text, so that every curve is scored like chapter 3's baselines, and
#: training chunks packed into full rows (short docstrings would leave a padded batch half empty).
_PRESET_RECIPE = dict(masking=dict(mask_ratio=0.4), eval_masking=dict(mask_ratio=0.15), pack=True)

#: ModernBERT's layout (Warner et al. 2024), which every preset's model has and ``mlm_lessons.hf`` exports
#: exactly: pre-LN blocks, rotary positions, a LayerNorm on the embeddings (none before block 0's
#: attention), a GeGLU feed-forward and no biases. A GeGLU's first projection makes a value and its
#: gate, so each preset's ``d_ff`` is two thirds of a GELU network's of the same FLOPs per token,
#: rounded up to a multiple of 8 (``EncoderConfig.in_modernbert_layout``).
_PRESET_LAYOUT = dict(norm="pre", positions="rope", embedding_norm=True, ffn="geglu", bias=False)

#: Named set-ups: (model sizes, training settings). ``cpu-small`` is chapter 5's run on a laptop CPU,
#: the recipe ``benchmarks/cpu_recipe.py`` chose at equal wall-clock time (``benchmarks/RESULTS.md``);
#: the GPU presets share its layout, position scheme and masking.
PRESETS: dict[str, tuple[dict, dict]] = {
    "cpu-small": (
        # no dropout: a few epochs of a tiny model are far from overfitting, and dropout slows it down
        dict(max_len=64, d_model=128, n_layers=2, n_heads=4, d_ff=344, dropout=0.0, **_PRESET_LAYOUT),
        dict(max_steps=5200, batch_size=12, max_length=64, lr=1.4e-3, warmup_steps=520, eval_every=200, eval_sequences=256, log_every=50,
             **_PRESET_RECIPE),
    ),
    "colab-t4": (
        dict(max_len=128, d_model=256, n_layers=4, n_heads=4, d_ff=688, dropout=0.1, **_PRESET_LAYOUT),
        dict(max_steps=4000, batch_size=128, max_length=128, lr=7e-4, warmup_steps=300, eval_every=250, log_every=50, **_PRESET_RECIPE),
    ),
    "a100": (
        dict(max_len=128, d_model=512, n_layers=8, n_heads=8, d_ff=1368, dropout=0.1, **_PRESET_LAYOUT),
        dict(max_steps=6000, batch_size=256, max_length=128, lr=5e-4, warmup_steps=500, eval_every=500, log_every=50, compile=True,
             **_PRESET_RECIPE),
    ),
    "h100": (
        dict(max_len=128, d_model=768, n_layers=12, n_heads=12, d_ff=2048, dropout=0.1, **_PRESET_LAYOUT),
        dict(max_steps=6000, batch_size=256, max_length=128, lr=4e-4, warmup_steps=500, eval_every=500, log_every=50, compile=True,
             **_PRESET_RECIPE),
    ),
}

#: The preset names, in the order of their size; ``cpu-small`` is the default.
PRESET_NAMES = tuple(PRESETS)
DEFAULT_PRESET = "cpu-small"


@dataclass(frozen=True)
class DaptDefaults:
    """What domain-adaptive pretraining does unless told otherwise (:func:`mlm_lessons.adaptation.dapt_config`,
    :func:`~mlm_lessons.adaptation.dapt` and the command line's ``dapt``): ``max_steps`` new steps, an
    evaluation every ``eval_every``, early stopping after ``patience`` evaluations without
    improvement, and the general corpus whose loss shows what the model forgets."""

    max_steps: int = integer(1000)
    eval_every: int = integer(100)
    patience: int = integer(3)
    general_corpus: str = "python-docs"

    def __post_init__(self):
        validate(self)


DAPT_DEFAULTS = DaptDefaults()


@dataclass(frozen=True)
class PublishedDefaults:
    """How a published ``transformers`` masked LM is trained unless told otherwise
    (:mod:`mlm_lessons.published`, the command line's ``dapt --hf`` and ``finetune --hf``).

    A published model comes with no training settings of its own, so these stand in for them:
    ``batch_size`` sequences of ``max_length`` pieces (packed, as the presets do), BERT's 15% masked
    (whole words where the tokenizer gives word ids) and, since its weights are already good, the
    peak learning rates of Hugging Face's ``Trainer`` and ``run_mlm.py`` (``dapt_lr``,
    ``finetune_lr``; our small models train at ten times that), with a ``warmup_share`` of the steps.
    """

    batch_size: int = integer(16)
    max_length: int = integer(128, minimum=3)
    mask_ratio: float = number(0.15, above=0, at_most=1)
    dapt_lr: float = number(5e-5, above=0)
    finetune_lr: float = number(5e-5, above=0)
    warmup_share: float = number(0.06, at_least=0, below=1)
    eval_sequences: int = integer(256)

    def __post_init__(self):
        validate(self)


PUBLISHED_DEFAULTS = PublishedDefaults()


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune. ``max_steps`` caps the run (an epoch of a large training set is long);
    evaluation on the validation split runs every ``eval_every`` steps (``None``: once an epoch,
    at most every 100 steps); ``patience`` evaluations without improvement end the run.
    ``freeze_encoder=True`` trains the linear classifier alone on fixed features (the encoder and the
    head's transform as pretraining left them): a *probe* of what pretraining put into the
    representations (BERT's "feature-based" evaluation)."""

    lr: float = number(5e-4, above=0)
    batch_size: int = integer(32)
    max_epochs: int = integer(20)
    max_steps: int = integer(600)
    eval_every: int | None = integer(None, optional=True)
    patience: int = integer(4)
    warmup_ratio: float = number(0.1, at_least=0, below=1)
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    max_length: int = integer(64)
    seed: int = integer(0, minimum=0)
    device: str = device("auto")
    precision: str = choice("auto", PRECISIONS)  # as TrainConfig: bf16 or fp16 on a GPU, fp32 elsewhere
    freeze_encoder: bool = flag(False)

    def __post_init__(self):
        validate(self)
        check_decay_and_clip(self)
        check_room(self.max_length)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ContrastiveConfig:
    """How to fine-tune a :class:`DualEncoder`: ``batch_size`` pairs a step (each query's
    negatives are the other ``batch_size − 1`` documents), evaluation of validation MRR every
    ``eval_every`` steps, ``patience`` evaluations without improvement end the run."""

    lr: float = number(3e-4, above=0)
    batch_size: int = integer(32)
    max_steps: int = integer(300)
    eval_every: int = integer(50)
    patience: int = integer(3)
    temperature: float = number(0.05, above=0)
    pooling: str = choice("mean", POOLINGS, why=" (how token states become one vector)")
    warmup_ratio: float = number(0.1, at_least=0, below=1)
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    max_length: int | None = integer(None, minimum=3, optional=True, why=" (or None: the model's max_len)")
    seed: int = integer(0, minimum=0)
    device: str = device("auto")
    precision: str = choice("auto", PRECISIONS)

    def __post_init__(self):
        validate(self)
        check_decay_and_clip(self)
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (in-batch negatives need a second pair), got {self.batch_size}")

    def to_dict(self) -> dict:
        return asdict(self)
