"""A published ``transformers`` masked LM as a starting point, trained through the package's own engine.

Any ``AutoModelForMaskedLM`` folder (or a Hub id already in the local Hugging Face cache) with its own
fast tokenizer – WordPiece (BERT, DistilBERT), byte-level BPE (RoBERTa) or ModernBERT's – becomes two
adapters that the rest of the package reads as if they were its own:

- :class:`PublishedTokenizer` – the tokenizer with the interface masking, batches, evaluation and the
  task kinds use (``pad_id``, ``cls_id``, ``sep_id``, ``mask_id``, ``special_ids``, ``vocab_size``,
  ``encode_chunks`` with word ids, ``pieces_by_word``, ``fingerprint``, ``save``);
- :class:`PublishedMLM` – the model, whose ``forward(input_ids, attention_mask, labels)`` returns the
  loss of our objective and the logits of the labelled positions only, as
  :class:`~mlm_lessons.model.MaskedLM` does, so that :func:`~mlm_lessons.adaptation.dapt` (and
  :func:`~mlm_lessons.training.pretrain`: ``StepCore``, early stopping, the run directory, the named
  seed streams, exact resume) and :func:`~mlm_lessons.training.evaluate` train and score it unchanged;
- :class:`PublishedClassifier` – ``AutoModelFor{Sequence,Token}Classification`` made from the (adapted)
  masked LM, fine-tuned by :func:`~mlm_lessons.finetuning.finetune`.

Decisions, in one place:

- ``vocab_size`` is the tokenizer's length (every id it can produce, added tokens included), not the
  model's embedding rows: a model may carry more rows than its tokenizer has ids (ModernBERT: 50,368
  rows for 50,280 ids, padded for speed). Masking draws random replacements from ``[0, vocab_size)``
  less the special ids, so it only ever puts in a real token; the spare rows are never an input and
  never a label (the loss still normalises over all the model's logits, as its own head does).
- ``special_ids`` are the tokenizer's special tokens (``all_special_ids``), every added token marked
  special, and the placeholders a vocabulary reserves for later (BERT's ``[unused0]`` … ``[unused993]``,
  which never occur in text): never selected for masking, never a random replacement. ``cls_id`` and ``sep_id``
  are the tokens its post-processor puts around one text (``[CLS] … [SEP]``, ``<s> … </s>``).
- Word ids come from the tokenizer's pre-tokenizer, so whole-word masking groups the pieces of a
  word for BPE (``Ġgrad`` ``ient``) as for WordPiece (``grad`` ``##ient``); a tokenizer without a
  pre-tokenizer gives no words (``word_level=False``) and trains with whole_word off. Words given one
  by one (token labeling: :meth:`PublishedTokenizer.pieces_by_word`, ``is_split_into_words``) are read
  with a space before each, as inside a text: byte-level BPE's ``add_prefix_space=True``.
- :func:`load_published` never falls back silently: a folder that is not there, a Hub id that is
  neither cached nor reachable, a model that is no masked LM – each is a one-line ValueError naming
  the fix. Offline (``HF_HUB_OFFLINE=1``) a Hub id is looked up in the cache only.
- :func:`save_published` writes what ``transformers`` loads with no code of ours (``save_pretrained``
  of the model and its tokenizer) and a ``README.md`` model card; the training run's own files
  (checkpoint for resuming, metrics, the commands that made it) go in the folder's ``run/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
from tokenizers import Tokenizer

from .heads import ClassifierOutput
from .masking import IGNORE_INDEX, MaskingConfig
from .model import MaskedLMOutput, check_vocabulary
from .objective import masked_lm_loss
from .rundir import one_line
from .seeding import seed_offset
from .settings import PUBLISHED_DEFAULTS, TrainConfig
from .tasks import KINDS, kind_of
from .tokenizer import MLMTokenizer

__all__ = ["RUN_SUBDIR", "PLACEHOLDER", "PublishedConfig", "PublishedTokenizer", "PublishedMLM", "PublishedClassifier", "load_published",
           "published_classifier", "published_dapt_config", "published_finetune_lr", "save_published", "published_card",
           "mask_loss_summary", "training_summary", "is_offline"]

#: The subfolder of a published model's folder that holds the training run (checkpoint, metrics, made_by.json).
RUN_SUBDIR = "run"


# -- the tokenizer ------------------------------------------------------------------------------------


def _framing(hf, source: str) -> tuple[int, int]:
    """The ids the tokenizer puts before and after one text (``[CLS]``/``[SEP]``, ``<s>``/``</s>``)."""
    plain = hf("a", add_special_tokens=False)["input_ids"]
    framed = hf("a")["input_ids"]
    n = len(plain)
    starts = [i for i in range(len(framed) - n + 1) if framed[i : i + n] == plain]
    if not starts or starts[0] != 1 or len(framed) != n + 2:
        raise ValueError(f"the tokenizer of {source!r} frames a text as {hf.convert_ids_to_tokens(framed)}; training here "
                         f"needs one token before a text and one after (BERT's [CLS] … [SEP], RoBERTa's <s> … </s>): "
                         f"use a masked LM's own tokenizer")
    return framed[0], framed[-1]


def _word_split_reader(backend: Tokenizer) -> Tokenizer:
    """A copy of ``backend`` that reads words given one by one as it reads them inside a text: byte-level
    BPE marks a word's start by the space before it (``Ġ``), so each word gets one (``add_prefix_space``,
    what ``is_split_into_words`` needs), as does SentencePiece's Metaspace (``prepend_scheme="always"``)."""
    spec = json.loads(backend.to_str())

    def space_before_words(node):
        if isinstance(node, dict):
            if node.get("type") == "ByteLevel" and "add_prefix_space" in node:
                node["add_prefix_space"] = True
            if node.get("type") == "Metaspace" and "prepend_scheme" in node:
                node["prepend_scheme"] = "always"
            for value in node.values():
                space_before_words(value)
        elif isinstance(node, list):
            for value in node:
                space_before_words(value)

    space_before_words(spec.get("pre_tokenizer"))
    return Tokenizer.from_str(json.dumps(spec))


#: A vocabulary's reserved placeholders (BERT's ``[unused0]``, ``<unused0>``): real entries no text produces.
PLACEHOLDER = re.compile(r"^[\[<]unused\d+[\]>]$", re.IGNORECASE)


class PublishedTokenizer(MLMTokenizer):
    """A ``transformers`` fast tokenizer with the interface of :class:`~mlm_lessons.tokenizer.MLMTokenizer`:
    the same methods (``encode_chunks``, ``encode_batch``, ``pieces_by_word``, ``fingerprint``, ``save``
    ...) on its own ``tokenizers`` backend, with its own special ids instead of our fixed 0-4.

    ``hf`` is the ``transformers`` tokenizer (``save_pretrained`` writes it as it came); ``source`` says
    where it came from. See the module's notes for ``vocab_size``, ``special_ids`` and word ids.
    """

    def __init__(self, hf, source: str = "a transformers tokenizer"):
        # MLMTokenizer.__init__ is not called: it checks our fixed ids 0-4, which a published tokenizer need not have
        if not getattr(hf, "is_fast", False):
            raise ValueError(f"the tokenizer of {source!r} is a slow (Python) one, which gives no word ids; save the model "
                             f"with its fast tokenizer (a tokenizer.json: AutoTokenizer.from_pretrained(..., use_fast=True))")
        self.hf, self.source = hf, source
        for name in ("mask_token_id", "pad_token_id"):
            if getattr(hf, name, None) is None:
                raise ValueError(f"the tokenizer of {source!r} has no {name[:-3]} ({name} is None); a masked LM's "
                                 f"tokenizer names one: give it one (tokenizer.add_special_tokens) and save it again")
        self.tokenizer = Tokenizer.from_str(hf.backend_tokenizer.to_str())
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._words = _word_split_reader(self.tokenizer)
        self.mask_id, self.pad_id, self.unk_id = hf.mask_token_id, hf.pad_token_id, hf.unk_token_id
        self.cls_id, self.sep_id = _framing(hf, source)
        added = {i for i, token in hf.added_tokens_decoder.items() if token.special}
        placeholders = {i for token, i in self.get_vocab().items() if PLACEHOLDER.match(token)}
        self.special_ids = frozenset({*hf.all_special_ids, *added, *placeholders})
        self._size = len(hf)
        beyond = [i for i in (*self.get_vocab().values(), *self.special_ids) if not 0 <= i < self._size]
        if beyond:
            raise ValueError(f"the tokenizer of {source!r} has {self._size:,} entries but uses id {beyond[0]}; "
                             f"save it again with transformers (its ids must run from 0 to its length)")
        #: whether the tokenizer cuts text into words before pieces (its word ids then group a word's pieces)
        self.word_level = self.tokenizer.pre_tokenizer is not None

    @property
    def vocab_size(self) -> int:
        """Every id the tokenizer can produce (its length, added tokens included)."""
        return self._size

    def _word_reader(self) -> Tokenizer:
        return self._words

    def save_pretrained(self, path) -> None:
        """Write the ``transformers`` tokenizer as it came (``tokenizer.json``, ``tokenizer_config.json``, ...)."""
        self.hf.save_pretrained(str(path))

    def __repr__(self) -> str:
        names = ", ".join(f"{self.id_to_token(i)}={i}" for i in sorted(self.special_ids))
        return f"PublishedTokenizer({self.source!r}, {type(self.hf).__name__}, vocab_size={self.vocab_size:,}, specials: {names})"


# -- the models -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedConfig:
    """What the engine reads of a published model: the sizes (for FLOPs per token), the longest input
    (``max_len``), the tokenizer's ``vocab_size`` and ``vocab_fingerprint``, and which class it is.
    ``embedding_rows`` may exceed ``vocab_size`` (rows no id of the tokenizer reaches)."""

    architecture: str
    model_type: str
    vocab_size: int
    embedding_rows: int
    max_len: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    ffn: str = "gelu"
    causal: bool = False
    vocab_fingerprint: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _first(config, *names, default=None):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def _max_len(hf, tokenizer: PublishedTokenizer) -> int:
    """The longest input: the position table less RoBERTa's offset (its positions start after the padding
    id), and no more than the tokenizer's ``model_max_length`` where that is set."""
    config, base = hf.config, hf.base_model
    positions = getattr(getattr(base, "embeddings", None), "position_embeddings", None)
    offset = positions.padding_idx + 1 if isinstance(positions, nn.Embedding) and positions.padding_idx is not None else 0
    longest = _first(config, "max_position_embeddings", "n_positions", default=512) - offset
    told = getattr(tokenizer.hf, "model_max_length", None)
    return min(longest, told) if isinstance(told, int) and 3 <= told < 1_000_000 else longest


def published_config(hf, tokenizer: PublishedTokenizer) -> PublishedConfig:
    """The :class:`PublishedConfig` of a ``transformers`` model read with ``tokenizer``."""
    c = hf.config
    d = _first(c, "hidden_size", "dim", "d_model")
    geglu = c.model_type == "modernbert"  # its Wi makes a value and its gate
    return PublishedConfig(
        architecture=type(hf).__name__, model_type=c.model_type, vocab_size=tokenizer.vocab_size,
        embedding_rows=hf.get_input_embeddings().weight.shape[0], max_len=_max_len(hf, tokenizer), d_model=d,
        n_layers=_first(c, "num_hidden_layers", "n_layers"), n_heads=_first(c, "num_attention_heads", "n_heads"),
        d_ff=_first(c, "intermediate_size", "hidden_dim", default=4 * d), ffn="geglu" if geglu else "gelu",
        vocab_fingerprint=tokenizer.fingerprint)


class _Published(nn.Module):
    """A ``transformers`` model (``hf``) with the configuration the engine reads and where it came from."""

    def __init__(self, hf, config: PublishedConfig, source: str):
        super().__init__()
        self.hf, self.config, self.source = hf, config, source

    def adopt_vocabulary(self, tokenizer) -> None:
        """Check that ``tokenizer`` is the one the model was loaded with (size and fingerprint)."""
        check_vocabulary(self.config, tokenizer)

    def logits(self, input_ids, attention_mask=None) -> torch.Tensor:
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits


class PublishedMLM(_Published):
    """A published masked LM as the engine trains one: ``forward(input_ids, attention_mask, labels)``
    returns the mean cross-entropy over the labelled positions (-100 elsewhere), computed as our
    objective does (:func:`~mlm_lessons.objective.masked_lm_loss`), and the logits of those positions
    only ([N, rows]); without labels, the logits of every position ([B, T, rows]). The model's own
    forward computes its head at every position (as ``AutoModelForMaskedLM`` does) before the labelled
    ones are picked out: the loss is the one its ``labels=`` argument gives, the logits what ``evaluate`` reads."""

    def forward(self, input_ids, attention_mask=None, labels=None) -> MaskedLMOutput:
        logits = self.logits(input_ids, attention_mask)
        if labels is None:
            return MaskedLMOutput(None, logits)
        if labels.shape != input_ids.shape:
            raise ValueError(f"labels {tuple(labels.shape)} must match input_ids {tuple(input_ids.shape)}")
        selected = labels != IGNORE_INDEX
        logits = logits[selected]
        return MaskedLMOutput(masked_lm_loss(logits, labels[selected]), logits)


class PublishedClassifier(_Published):
    """``AutoModelForSequenceClassification`` (``task_kind="classification"``: logits [B, C]) or
    ``AutoModelForTokenClassification`` (``"tagging"``: [B, T, C]), with the losses of the book's heads."""

    def __init__(self, hf, config: PublishedConfig, source: str, task_kind: str):
        super().__init__(hf, config, source)
        self.task_kind, self.num_labels = task_kind, hf.config.num_labels

    def forward(self, input_ids, attention_mask=None, labels=None) -> ClassifierOutput:
        logits = self.logits(input_ids, attention_mask)
        if labels is None:
            return ClassifierOutput(None, logits)
        return ClassifierOutput(kind_of(self.task_kind).loss(logits, labels), logits)


# -- loading, with the Hub guard ---------------------------------------------------------------------------


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids the Hub in this process's environment."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_like_path(source: str) -> bool:
    """A path rather than a Hub id (``name`` or ``owner/name``)."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep != "/" and os.sep in source or Path(source).exists()


@contextlib.contextmanager
def _quiet_transformers():
    """``transformers``' notes and progress bars while loading and saving (weights newly made for a head,
    shards written) kept to errors: the package reports what it did itself."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


_OFFLINE_FIX = ("download it once on a machine with a network (`hf download {source}`, or any from_pretrained call, "
                "fills the cache), or pass a local folder written by save_pretrained")


def _from_pretrained(loader, source: str, **kwargs):
    """``loader.from_pretrained(source)`` from a local folder, or from the Hub cache, or – online only – the Hub."""
    folder = Path(source).expanduser()
    with _quiet_transformers():
        if folder.is_dir():
            try:
                return loader.from_pretrained(str(folder), local_files_only=True, **kwargs)
            except (OSError, ValueError, KeyError) as exc:
                raise ValueError(f"{source!r} cannot be loaded by transformers.{loader.__name__} ({one_line(exc)}); "
                                 f"pass a folder written by save_pretrained") from exc
        if _looks_like_path(source):
            raise ValueError(f"{source!r} is not a folder; pass a folder written by save_pretrained (config.json, the "
                             f"weights and the tokenizer files) or a Hub id such as 'bert-base-uncased'")
        try:
            return loader.from_pretrained(source, local_files_only=True, **kwargs)
        except (OSError, ValueError) as exc:
            cached = exc
        if is_offline():
            raise ValueError(f"{source!r} is not a local folder and the Hugging Face cache holds no copy of it; this "
                             f"session is offline (HF_HUB_OFFLINE=1), so it cannot be downloaded: "
                             f"{_OFFLINE_FIX.format(source=source)}") from cached
        try:
            return loader.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{source!r} could not be loaded from the Hugging Face Hub ({one_line(exc)}); without a "
                             f"network, {_OFFLINE_FIX.format(source=source)}") from exc


def _float32() -> dict:
    """Load the weights in float32 (training runs in float32, autocast makes bf16/fp16 on a GPU)."""
    import transformers

    return {"dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype": torch.float32}


def _tokenizer_of(source: str) -> PublishedTokenizer:
    from transformers import AutoTokenizer

    return PublishedTokenizer(_from_pretrained(AutoTokenizer, source), source)


def _checked(hf, tokenizer: PublishedTokenizer, source: str) -> PublishedConfig:
    config = published_config(hf, tokenizer)
    if config.embedding_rows < tokenizer.vocab_size:
        raise ValueError(f"the tokenizer of {source!r} has {tokenizer.vocab_size:,} ids, the model {config.embedding_rows:,} "
                         f"embedding rows; call model.resize_token_embeddings(len(tokenizer)) and save both again")
    return config


def load_published(source) -> tuple[PublishedMLM, PublishedTokenizer]:
    """``(model, tokenizer)`` from ``source``: a folder written by ``save_pretrained`` or a Hub id
    (looked up in the local cache first; downloaded only when this session is online). Offline, an id
    not in the cache is a ValueError saying so and naming the alternatives – never a fallback."""
    from transformers import AutoModelForMaskedLM

    source = os.fspath(source)
    tokenizer = _tokenizer_of(source)  # the cheap half first: a bad source fails before the weights load
    try:
        hf = _from_pretrained(AutoModelForMaskedLM, source, **_float32())
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ValueError(f"{source!r} is no masked LM (AutoModelForMaskedLM has no class for it); start from one such "
                             f"as BERT, DistilBERT, RoBERTa or ModernBERT") from exc
        raise
    return PublishedMLM(hf, _checked(hf, tokenizer, source), source), tokenizer


def published_classifier(source, task, *, seed: int = 0, pooling: str = "cls") -> tuple[PublishedClassifier, PublishedTokenizer]:
    """``(model, tokenizer)``: ``AutoModelForSequenceClassification`` or ``AutoModelForTokenClassification``
    (as ``task``'s kind needs) made from the masked LM at ``source``, with ``task``'s label names
    (``id2label``); the new classifier's weights drawn with ``seed`` (plus :func:`~mlm_lessons.seeding.seed_offset`).
    ``pooling="mean"`` is for ModernBERT (``classifier_pooling``); the other models pool their own way."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    source = os.fspath(source)
    tokenizer = _tokenizer_of(source)
    kind = task.kind.name
    labels = dict(num_labels=task.num_labels, id2label=dict(enumerate(task.label_names)),
                  label2id={name: i for i, name in enumerate(task.label_names)})
    if pooling != "cls":
        from transformers import AutoConfig

        if not task.kind.pooled or _from_pretrained(AutoConfig, source).model_type != "modernbert":
            raise ValueError(f"pooling={pooling!r} is ModernBERT's classifier_pooling for sequence classification; the "
                             f"other published models pool their own way: leave pooling='cls'")
        labels["classifier_pooling"] = pooling
    torch.manual_seed(seed + seed_offset())  # the classifier's new weights
    auto = {"AutoModelForSequenceClassification": AutoModelForSequenceClassification,
            "AutoModelForTokenClassification": AutoModelForTokenClassification}[task.kind.auto_class]
    hf = _from_pretrained(auto, source, **labels, **_float32())
    return PublishedClassifier(hf, _checked(hf, tokenizer, source), source, kind), tokenizer


# -- settings ---------------------------------------------------------------------------------------------


def published_dapt_config(model: PublishedMLM, tokenizer: PublishedTokenizer, max_steps: int = 1000, *,
                          lr: float | None = None, eval_every: int = 100, **overrides) -> TrainConfig:
    """The settings of continued pretraining for a published model (:data:`~mlm_lessons.settings.PUBLISHED_DEFAULTS`):
    ``batch_size`` rows of up to ``max_length`` pieces (no more than the model reads), packed; BERT's
    15% masked, whole words where the tokenizer has them, 80/10/10; ``lr`` (default ``dapt_lr``) after
    a warm-up of ``warmup_share`` of the steps, decaying linearly; an evaluation every ``eval_every`` steps."""
    d = PUBLISHED_DEFAULTS
    masking = MaskingConfig(mask_ratio=d.mask_ratio, whole_word=tokenizer.word_level)
    settings = dict(max_steps=max_steps, batch_size=d.batch_size, max_length=min(d.max_length, model.config.max_len),
                    lr=d.dapt_lr if lr is None else lr, warmup_steps=max(1, round(d.warmup_share * max_steps)) if max_steps > 1 else 0,
                    eval_every=eval_every, eval_sequences=d.eval_sequences, masking=masking, pack=True)
    return TrainConfig(**{**settings, **overrides})


def published_finetune_lr() -> float:
    """The peak learning rate a published model is fine-tuned at unless told otherwise."""
    return PUBLISHED_DEFAULTS.finetune_lr


# -- writing the folder ---------------------------------------------------------------------------------


def mask_loss_summary(history: list[dict], best_step: int | None = None, names: dict[str, str] | None = None) -> dict:
    """The ``[MASK]`` losses of a DAPT run for its card: each tracked text's at the first evaluation
    (step 0: the published model) and at the kept weights (``best_step``, else the last evaluation).
    ``names`` say what each text is (``{"valid": "pytorch-docs", "general": "python-docs"}``)."""
    evals = [h for h in history if "valid_mask_loss" in h]
    if not evals:
        return {}
    first = evals[0]
    kept = next((h for h in evals if h["step"] == best_step), evals[-1]) if best_step is not None else evals[-1]
    names = {"valid": "domain", **(names or {})}
    out = {}
    for key in first:
        if key.endswith("_mask_loss"):
            text = names.get(key[: -len("_mask_loss")], key[: -len("_mask_loss")])
            out[f"{text} [MASK] loss before (step {first['step']})"] = float(first[key])
            out[f"{text} [MASK] loss after (step {kept['step']})"] = float(kept[key])
    return out


_TITLES = {"mlm": "masked-language model, domain-adapted", "classification": "text classifier", "tagging": "token classifier"}
#: What a model card says of each kind of model: pipeline tag, title and the Auto class that loads it.
_CARD = {"mlm": ("fill-mask", _TITLES["mlm"], "AutoModelForMaskedLM"),
         **{k.name: (k.pipeline, _TITLES[k.name], k.auto_class) for k in KINDS.values()}}


def training_summary(config) -> str:
    """One line of a run's settings for its card: a :class:`~mlm_lessons.settings.TrainConfig`'s rows, pieces,
    learning rate and masking, or a :class:`~mlm_lessons.settings.FinetuneConfig`'s batch and learning rate."""
    if isinstance(config, TrainConfig):
        m = config.masking
        return (f"{config.batch_size} rows of up to {config.max_length} pieces a step{' (packed)' if config.pack else ''}, peak "
                f"learning rate {config.lr:g}; {m.mask_ratio:.0%} of the pieces masked{' (whole words)' if m.whole_word else ''}, "
                f"{m.p_mask:.0%} [MASK] / {m.p_random:.0%} random / {m.p_keep:.0%} kept, over the tokenizer's own special ids")
    return f"batches of {config.batch_size}, up to {config.max_length} pieces, peak learning rate {config.lr:g}, at most {config.max_steps} steps"


def published_card(model: _Published, *, data: str | None = None, steps: int | None = None, metrics: dict | None = None,
                   commands: list[str] | None = None, task: str | None = None, settings: str | None = None) -> str:
    """The ``README.md`` of a published model trained here: the start checkpoint, the data (with its
    sha256), the steps and ``settings`` (:func:`training_summary`), the scores (for DAPT the ``[MASK]``
    loss before and after: :func:`mask_loss_summary`), the commands."""
    kind = getattr(model, "task_kind", "mlm")
    tag, title, auto = _CARD[kind]
    c, none = model.config, "not recorded"
    base = [f"base_model: {model.source}"] if not Path(model.source).exists() else []
    lines = ["---", "library_name: transformers", f"pipeline_tag: {tag}", *base, "tags: [mlm-lessons]", "---", "",
             f"# A {title} ({c.architecture})", "",
             f"Trained with `mlm_lessons` (the companion package of *Masked Language Modeling, step by step*) from a published "
             f"model; `transformers.{auto}` loads this folder with no code of ours.", "", "## Training", "",
             f"- start checkpoint: {model.source} ({c.architecture}, {c.n_layers} layers, d_model {c.d_model}, "
             f"vocabulary {c.vocab_size:,})",
             f"- data: {data or none}",
             f"- {'steps' if kind == 'mlm' else 'fine-tuning step of the weights kept'}: {none if steps is None else f'{steps:,}'}",
             f"- settings: {settings or none}"]
    if kind != "mlm":
        names = model.hf.config.id2label
        lines += [f"- task: {task or none}", "- labels: " + ", ".join(f"{i} `{names[i]}`" for i in sorted(names))]
    for k, v in (metrics or {}).items():
        if isinstance(v, dict):
            lines += [f"- {k} {name}: {x:.4f}" if isinstance(x, float) else f"- {k} {name}: {x}" for name, x in v.items()]
        else:
            lines.append(f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}")
    lines += ["", "## How it was made", "", "```", *(commands or [none]), "```", ""]
    return "\n".join(lines)


def save_published(model: _Published, tokenizer: PublishedTokenizer, path, **card) -> Path:
    """Write ``model`` (a :class:`PublishedMLM` or :class:`PublishedClassifier`) and ``tokenizer`` with
    ``save_pretrained`` – ``AutoModelForMaskedLM`` / ``AutoModelFor{Sequence,Token}Classification`` and
    ``AutoTokenizer`` load the folder with no code of ours – and its ``README.md`` (:func:`published_card`,
    which ``card`` is passed to). Returns the folder."""
    if not isinstance(model, _Published) or not isinstance(tokenizer, PublishedTokenizer):
        raise ValueError(f"save_published writes a published model and its tokenizer (load_published), got "
                         f"{type(model).__name__} and {type(tokenizer).__name__}; for the book's models use mlm_lessons.hf")
    check_vocabulary(model.config, tokenizer)
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{str(out)!r} is a file; give a folder to write the model into")
    out.mkdir(parents=True, exist_ok=True)
    with _quiet_transformers():
        model.hf.save_pretrained(str(out))
        tokenizer.save_pretrained(out)
    (out / "README.md").write_text(published_card(model, **card), encoding="utf-8")
    return out

