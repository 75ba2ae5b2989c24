"""Export to Hugging Face ``transformers``: two of our layouts *are* ``transformers`` models, and so
are the fine-tuned heads on the second.

- ``norm="post"``, ``positions="learned"`` (BERT, 2018) → ``BertForMaskedLM``;
- ``norm="pre"``, ``positions="rope"``, ``embedding_norm=True``, ``ffn="geglu"`` (ModernBERT, 2024) →
  ``ModernBertForMaskedLM``, every layer global, with or without biases;
- a :class:`~mlm_lessons.finetuning.SequenceClassifier` on a ModernBERT-layout encoder →
  ``ModernBertForSequenceClassification`` (its ``classifier_pooling`` the head's pooling, ``"cls"``
  or ``"mean"``), a :class:`~mlm_lessons.finetuning.TokenClassifier` →
  ``ModernBertForTokenClassification``; the label names become ``id2label``/``label2id``.

``to_transformers(model)`` copies every weight into the matching class (one function copies the
encoder, whatever sits on it), so the model computes the same logits (eval mode) and works with the
whole ecosystem: pipelines, ``Trainer``, the Hub. ``save_pretrained(model, tokenizer, path)`` writes
a folder that ``AutoTokenizer`` and ``AutoModelForMaskedLM`` (or ``AutoModelForSequenceClassification``,
``AutoModelForTokenClassification``) load with no code of ours, with a model card. ``transformers``
is needed only here, and imported only when called.

Other layouts are refused with the reason. The book's own pre-LN layout normalises inside block 0
(a LayerNorm before its attention, none on the embeddings): ModernBERT normalises the embeddings and
feeds them to block 0's attention as they are, and no ``transformers`` encoder with rotary positions
has the other arrangement, so such a model has no exact ``transformers`` twin. Heads on BERT's
layout are refused too: ``BertForSequenceClassification`` classifies a tanh "pooler" of ``[CLS]``
and ``BertForTokenClassification`` the encoder's states directly, where our heads put ModernBERT's
transform (dense, GELU, LayerNorm) in between.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from ._checks import require_int
from .finetuning import SequenceClassifier, TokenClassifier
from .model import MaskedLM, check_vocabulary
from .tokenizer import CLS, MASK, PAD, SEP, UNK

__all__ = ["to_transformers", "bert_config", "modernbert_config", "modernbert_rotary", "export_layout", "hf_tokenizer", "save_pretrained", "model_card",
           "run_summary"]

_HEADS = (SequenceClassifier, TokenClassifier)


def _hf_class(model, layout: str) -> str:
    """The name of the ``transformers`` class ``model`` exports to in ``layout``."""
    if isinstance(model, SequenceClassifier):
        return "ModernBertForSequenceClassification"
    if isinstance(model, TokenClassifier):
        return "ModernBertForTokenClassification"
    return {"bert": "BertForMaskedLM", "modernbert": "ModernBertForMaskedLM"}[layout]


def _check_modernbert_layout(c, target: str, fix: str) -> None:
    missing = [f"{name}={want!r}" for name, want, have in (("positions", "rope", c.positions), ("embedding_norm", True, c.embedding_norm),
                                                              ("ffn", "geglu", c.ffn)) if have != want]
    if missing:
        raise ValueError(
            f"a pre-LN model matches {target} only with positions='rope', embedding_norm=True and ffn='geglu'; "
            f"this one needs {', '.join(missing)}. Without embedding_norm the model normalises inside block 0 instead of "
            f"the embeddings, which no transformers encoder does. {fix}")


_TRAIN_MODERNBERT = ("every preset (`pretrain --preset ...`, `preset(...)`) and EncoderConfig.in_modernbert_layout() give "
                     "ModernBERT's layout")


def export_layout(model) -> str:
    """``"bert"`` or ``"modernbert"``: the ``transformers`` class ``model`` (a ``MaskedLM``, a
    ``SequenceClassifier`` or a ``TokenClassifier``) matches exactly; a ValueError that names what does
    not match, and what to do instead, otherwise. Heads export only on ModernBERT's layout."""
    if isinstance(model, _HEADS):
        c, kind, target = model.config, type(model).__name__, _hf_class(model, "modernbert")
        if c.causal:
            raise ValueError(f"this {kind}'s encoder is causal (causal=True): {target} attends both ways, so it would not "
                             f"compute the same logits; only heads on a bidirectional encoder can be exported")
        if c.norm == "post":
            raise ValueError(
                f"this {kind} is on BERT's layout (norm='post'), whose transformers heads are not ours: "
                f"BertForSequenceClassification classifies a tanh 'pooler' of the [CLS] state and BertForTokenClassification "
                f"the encoder's states directly, where our heads put ModernBERT's transform (dense, GELU, LayerNorm) in between. "
                f"Only heads on ModernBERT's layout export exactly (to {target}): fine-tune a model pretrained in that layout "
                f"({_TRAIN_MODERNBERT}).")
        _check_modernbert_layout(c, target, f"Fine-tune a model pretrained in ModernBERT's layout: {_TRAIN_MODERNBERT}.")
        return "modernbert"
    if not isinstance(model, MaskedLM):
        raise ValueError(f"expected an mlm_lessons MaskedLM, SequenceClassifier or TokenClassifier, got {type(model).__name__}")
    c = model.config
    if c.causal:
        raise ValueError("this model is causal (causal=True): BertForMaskedLM and ModernBertForMaskedLM attend both ways, "
                         "so they would not compute the same logits; only bidirectional models can be exported")
    if c.norm == "post":
        if c.positions != "learned":
            raise ValueError(f"only positions='learned' models match BertForMaskedLM (one trained vector per position); this "
                             f"one has positions={c.positions!r}. Train with EncoderConfig(..., positions='learned', norm='post') "
                             f"to export to BERT's layout.")
        if c.ffn != "gelu" or not c.bias:
            raise ValueError(f"BertForMaskedLM has a GELU feed-forward and biases everywhere; this model has ffn={c.ffn!r}, "
                             f"bias={c.bias}. Train with ffn='gelu', bias=True for BERT's layout.")
        return "bert"
    _check_modernbert_layout(c, "ModernBertForMaskedLM", f"Train in ModernBERT's layout ({_TRAIN_MODERNBERT}); for BERT's "
                                                         f"layout train with norm='post' instead.")
    return "modernbert"


def _label_names(model, label_names) -> list[str] | None:
    """A head's label names (``LABEL_0``, ... when none are given), checked; None for a ``MaskedLM``."""
    if not isinstance(model, _HEADS):
        if label_names is not None:
            raise ValueError("label_names name the classes of a SequenceClassifier or TokenClassifier; a MaskedLM predicts "
                             "its vocabulary")
        return None
    n = model.num_labels
    if label_names is None:
        return [f"LABEL_{i}" for i in range(n)]
    names = None if isinstance(label_names, str) else list(label_names)
    if names is None or len(names) != n or not all(isinstance(x, str) and x for x in names) or len(set(names)) != n:
        raise ValueError(f"label_names must be {n} different non-empty strings, one per label of the model (in the order of "
                         f"its logits), got {label_names!r}")
    return names


def bert_config(model: MaskedLM):
    """The ``BertConfig`` with our model's sizes."""
    from transformers import BertConfig

    c = model.config
    return BertConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.d_model,
        num_hidden_layers=c.n_layers,
        num_attention_heads=c.n_heads,
        intermediate_size=c.d_ff,
        hidden_act="gelu",
        hidden_dropout_prob=c.dropout,
        attention_probs_dropout_prob=c.dropout,
        max_position_embeddings=c.max_len,
        type_vocab_size=1,
        layer_norm_eps=c.layer_norm_eps,
        pad_token_id=0,
        tie_word_embeddings=True,
    )


def modernbert_config(model, *, label_names: list[str] | None = None):
    """The ``ModernBertConfig`` of our ModernBERT-layout model: its sizes, its rotary base for every
    layer, every layer global (no sliding window), our special-token ids. For a head also its labels
    (``id2label``/``label2id`` from ``label_names``; ``LABEL_0``, ... without), its dropout and, for a
    ``SequenceClassifier``, its pooling (``classifier_pooling``)."""
    from transformers import ModernBertConfig

    c = model.config
    names = _label_names(model, label_names)
    head = {}
    if names is not None:
        head = dict(id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)},
                    classifier_dropout=model.dropout.p)
        if isinstance(model, SequenceClassifier):
            head["classifier_pooling"] = model.pooling
    return ModernBertConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.d_model,
        intermediate_size=c.d_ff,
        num_hidden_layers=c.n_layers,
        num_attention_heads=c.n_heads,
        hidden_activation="gelu",
        max_position_embeddings=c.max_len,
        norm_eps=c.layer_norm_eps,
        norm_bias=c.bias,
        attention_bias=c.bias,
        mlp_bias=c.bias,
        classifier_bias=c.bias,  # the prediction head's dense layer (the classifier itself always has a bias)
        decoder_bias=True,
        classifier_activation="gelu",
        embedding_dropout=c.dropout,
        attention_dropout=c.dropout,
        mlp_dropout=c.dropout,
        global_attn_every_n_layers=1,  # every layer attends to the whole sequence, as ours do
        global_rope_theta=c.rope_theta,
        local_rope_theta=c.rope_theta,
        local_attention=2 * c.max_len,
        pad_token_id=0, unk_token_id=1, cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3,
        tie_word_embeddings=True,
        **head,
    )


def _copy(theirs, ours) -> None:
    """A linear layer's or a LayerNorm's weight, and its bias where ours has one (theirs has one then too)."""
    theirs.weight.copy_(ours.weight)
    if ours.bias is not None:
        theirs.bias.copy_(ours.bias)


@torch.no_grad()
def to_transformers(model, *, label_names: list[str] | None = None):
    """The ``transformers`` model computing the same logits as ``model`` (eval mode): a ``MaskedLM``
    becomes ``BertForMaskedLM`` or ``ModernBertForMaskedLM`` (:func:`export_layout`), a
    ``SequenceClassifier`` ``ModernBertForSequenceClassification`` and a ``TokenClassifier``
    ``ModernBertForTokenClassification``, their ``id2label`` from ``label_names`` (``LABEL_0``, ... without)."""
    if export_layout(model) == "modernbert":
        return _to_modernbert(model, label_names)
    _label_names(model, label_names)  # a MaskedLM: none
    from transformers import BertForMaskedLM

    hf = BertForMaskedLM(bert_config(model)).eval()
    enc, bert = model.encoder, hf.bert
    d = model.config.d_model
    bert.embeddings.word_embeddings.weight.copy_(enc.tok_emb.weight)
    bert.embeddings.position_embeddings.weight.copy_(enc.pos_emb.weight)
    bert.embeddings.token_type_embeddings.weight.zero_()  # we have no segments: type 0 adds nothing
    _copy(bert.embeddings.LayerNorm, enc.emb_ln)
    for ours, theirs in zip(enc.blocks, bert.encoder.layer):
        for i, part in enumerate((theirs.attention.self.query, theirs.attention.self.key, theirs.attention.self.value)):
            part.weight.copy_(ours.attn.qkv.weight[i * d : (i + 1) * d])
            part.bias.copy_(ours.attn.qkv.bias[i * d : (i + 1) * d])
        _copy(theirs.attention.output.dense, ours.attn.proj)
        _copy(theirs.attention.output.LayerNorm, ours.ln1)
        _copy(theirs.intermediate.dense, ours.ffn.up)
        _copy(theirs.output.dense, ours.ffn.down)
        _copy(theirs.output.LayerNorm, ours.ln2)
    head = hf.cls.predictions
    _copy(head.transform.dense, model.head_dense)
    _copy(head.transform.LayerNorm, model.head_ln)
    head.decoder.weight = bert.embeddings.word_embeddings.weight  # tied, as in our model
    head.decoder.bias = head.bias if hasattr(head, "bias") and head.bias is not None else head.decoder.bias
    head.decoder.bias.copy_(model.head_bias)
    return hf


def _copy_modernbert_encoder(mb, enc) -> None:
    """Our ModernBERT-layout ``Encoder`` into a ``ModernBertModel`` (the masked LM's and the heads' alike)."""
    mb.embeddings.tok_embeddings.weight.copy_(enc.tok_emb.weight)
    _copy(mb.embeddings.norm, enc.emb_ln)
    for i, (ours, theirs) in enumerate(zip(enc.blocks, mb.layers)):
        if i > 0:  # block 0 reads the normalised embeddings directly, in both models
            _copy(theirs.attn_norm, ours.ln1)
        _copy(theirs.attn.Wqkv, ours.attn.qkv)  # the same [q; k; v] rows, heads in order
        _copy(theirs.attn.Wo, ours.attn.proj)
        _copy(theirs.mlp_norm, ours.ln2)
        _copy(theirs.mlp.Wi, ours.ffn.up)  # [gelu half; gate half], as ours
        _copy(theirs.mlp.Wo, ours.ffn.down)
    _copy(mb.final_norm, enc.final_ln)


def _to_modernbert(model, label_names):
    import transformers

    hf = getattr(transformers, _hf_class(model, "modernbert"))(modernbert_config(model, label_names=label_names)).eval()
    _copy_modernbert_encoder(hf.model, model.encoder)
    _copy(hf.head.dense, model.head_dense)  # ModernBertPredictionHead: the MLM's and the classifiers' transform alike
    _copy(hf.head.norm, model.head_ln)
    if isinstance(model, _HEADS):
        _copy(hf.classifier, model.classifier)  # pooling (sequences) and dropout are in the configuration
    else:
        hf.decoder.weight = hf.model.embeddings.tok_embeddings.weight  # tied, as in our model
        hf.decoder.bias.copy_(model.head_bias)
    return hf


def hf_tokenizer(tokenizer, *, model_max_length: int):
    """Our tokenizer as a ``transformers.PreTrainedTokenizerFast`` with the five special tokens named
    (the same pieces, ids and ``[CLS] … [SEP]`` framing); ``model_max_length`` truncates as our
    ``max_length`` does."""
    from transformers import PreTrainedTokenizerFast

    require_int(model_max_length, "model_max_length", 3, why=" (room for [CLS], a piece and [SEP])")
    # no token_type_ids: our models have no segment embeddings, and ModernBERT's forward (transformers 4.x) refuses them
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer.tokenizer, unk_token=UNK, pad_token=PAD, cls_token=CLS,
                                   sep_token=SEP, mask_token=MASK, model_max_length=model_max_length,
                                   model_input_names=["input_ids", "attention_mask"])


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else f"{value}"


#: what the card says of each kind of model: pipeline tag, title, the ``## Use`` snippet
_CARD_KINDS = {
    MaskedLM: ("fill-mask", "masked-language model", ['fill = pipeline("fill-mask", model="<this folder>")',
                                                      'fill("The function returns a [MASK].")']),
    SequenceClassifier: ("text-classification", "text classifier",
                         ['classify = pipeline("text-classification", model="<this folder>")',
                          'classify("Applies a linear transformation to the incoming data.")  # the top label and its probability']),
    TokenClassifier: ("token-classification", "token classifier",
                      ['tag = pipeline("token-classification", model="<this folder>")',
                       'tag("Call torch.sum on the input tensor.")  # a label per piece; read each word\'s at its first piece']),
}


def model_card(model, *, layout: str, trained_on: str | None = None, steps: int | None = None, metrics: dict | None = None,
               commands: list[str] | None = None, label_names: list[str] | None = None, task: str | None = None) -> str:
    """The folder's ``README.md``: what the model is, what it was trained on and for how long, its
    scores, and the commands that made it. What was not given is said to be not recorded, never left out.

    A ``MaskedLM``'s ``metrics`` are its validation ``[MASK]`` loss and accuracy (:func:`run_summary`);
    a head's card also names its task and its labels, and its ``metrics`` may be given per split
    (``{"validation": {...}, "test": {...}}``)."""
    c = model.config
    cls = _hf_class(model, layout)
    is_head = isinstance(model, _HEADS)
    names = _label_names(model, label_names)
    tag, title, use = _CARD_KINDS[type(model) if is_head else MaskedLM]
    not_recorded = "not recorded"
    n_params = sum(p.numel() for p in model.parameters())
    lines = [
        "---", "library_name: transformers", f"pipeline_tag: {tag}",
        f"tags: [{'masked-language-modeling' if not is_head else tag}, mlm-lessons]", "---", "",
        f"# A small {title} ({cls})", "",
        f"{'Fine-tuned' if is_head else 'Trained'} with `mlm_lessons`, the companion package of the book *Masked Language "
        f"Modeling, step by step*, and exported exactly: `{cls}` computes the same logits as the model it was trained as.", "",
        "## Model", "",
        f"- layout: {layout} ({c.norm}-LN, {c.positions} positions, {c.ffn} feed-forward, biases {'on' if c.bias else 'off'}"
        f"{', a LayerNorm on the embeddings' if c.embedding_norm or c.norm == 'post' else ''})",
        f"- {c.n_layers} layers, d_model {c.d_model}, {c.n_heads} heads, d_ff {c.d_ff}, vocabulary {c.vocab_size:,}, "
        f"up to {c.max_len} pieces, {n_params:,} parameters",
    ]
    if is_head:
        if isinstance(model, SequenceClassifier):
            reads = {"cls": "the [CLS] state", "mean": "the mean of the real tokens' states"}[model.pooling] + ", one label per text"
        else:
            reads = "every piece's state, one label per piece (trained at each word's first piece)"
        lines += [f"- head: {reads}, through ModernBERT's prediction head (dense, GELU, LayerNorm) and a linear classifier",
                  f"- labels ({len(names)}): " + ", ".join(f"{i} `{n}`" for i, n in enumerate(names))]
    lines += ["", "## Training", ""]
    if is_head:
        lines += [f"- pretraining data: {trained_on or not_recorded}", f"- fine-tuned on: {f'the task {task!r}' if task else not_recorded}",
                  f"- fine-tuning steps (the weights kept): {steps:,}" if steps is not None else f"- fine-tuning steps: {not_recorded}"]
    else:
        lines += [f"- data: {trained_on or not_recorded}",
                  f"- steps: {steps:,}" if steps is not None else f"- steps: {not_recorded}"]
    if metrics:
        for k, v in metrics.items():
            if isinstance(v, dict):  # one split's scores
                lines += [f"- {k} {name}: {_fmt(x)}" for name, x in v.items()] or [f"- {k}: {not_recorded}"]
            else:
                lines.append(f"- validation {k}: {_fmt(v)}")
    else:
        lines.append(f"- {'validation and test scores' if is_head else 'validation [MASK] loss and accuracy'}: {not_recorded}")
    lines += ["", "## How it was made", "", "```"] + (commands or [not_recorded]) + ["```", "", "## Use", "", "```python",
              "from transformers import pipeline", *use, "```", "",
              "A model this small is for learning and experiments: it knows the text it was trained on, little else.", ""]
    return "\n".join(lines)


def save_pretrained(model, tokenizer, path: str | os.PathLike, *, trained_on: str | None = None, steps: int | None = None,
                    metrics: dict | None = None, commands: list[str] | None = None, label_names: list[str] | None = None,
                    task: str | None = None) -> Path:
    """Write a folder that ``transformers`` loads with no code of ours: ``config.json``,
    ``model.safetensors``, the tokenizer (``tokenizer.json``, ``tokenizer_config.json``, special tokens
    named) and ``README.md`` (:func:`model_card`). ``model`` is a ``MaskedLM`` (``AutoModelForMaskedLM``,
    ``pipeline("fill-mask")``) or a fine-tuned head (``AutoModelForSequenceClassification`` /
    ``AutoModelForTokenClassification``, ``pipeline("text-classification")`` / ``"token-classification"``),
    whose ``label_names`` become the labels the pipelines print; for a head ``trained_on`` is the
    pretraining data, ``task`` the fine-tuning task and ``steps`` the step whose weights are kept.
    Returns the folder."""
    check_vocabulary(model.config, tokenizer)
    layout = export_layout(model)
    label_names = _label_names(model, label_names)  # checked before anything is written
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{str(out)!r} is a file; give a folder to write the model into")
    out.mkdir(parents=True, exist_ok=True)
    hf = to_transformers(model, label_names=label_names)
    hf.save_pretrained(out, safe_serialization=True)
    hf_tokenizer(tokenizer, model_max_length=model.config.max_len).save_pretrained(out)
    (out / "README.md").write_text(model_card(model, layout=layout, trained_on=trained_on, steps=steps, metrics=metrics,
                                              commands=commands, label_names=label_names, task=task), encoding="utf-8")
    return out


def run_summary(checkpoint: dict) -> dict:
    """Steps, and the validation ``[MASK]`` loss and accuracy of the weights a training checkpoint
    keeps (those of its best evaluation after early stopping, as a DAPT run keeps; of the last
    otherwise), with the ``[MASK]`` loss of every other text it tracked (a DAPT run's general text), for the card."""
    evals = [h for h in checkpoint.get("history", []) if "valid_mask_loss" in h]
    metrics = {}
    if evals:
        best = checkpoint.get("best_step")
        kept = next((h for h in evals if h["step"] == best), evals[-1]) if best is not None else evals[-1]
        metrics = {"[MASK] loss (nats)": float(kept["valid_mask_loss"]), "[MASK] accuracy": float(kept["valid_mask_accuracy"])}
        for key in kept:
            if key.endswith("_mask_loss") and key != "valid_mask_loss":  # another text's, e.g. "general_mask_loss"
                metrics[f"[MASK] loss on the {key[: -len('_mask_loss')]} text (nats)"] = float(kept[key])
        metrics["at step"] = int(kept["step"])
    return {"steps": checkpoint.get("step"), "metrics": metrics}


def modernbert_rotary(config, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``transformers``' own ``ModernBertRotaryEmbedding`` (global attention) at
    ``position_ids``, for comparing our rotary positions with theirs. The class changed its signature in
    ``transformers`` 5: ``(config)`` and ``forward(x, position_ids, layer_type)`` there, ``(config, dim,
    base)`` and ``forward(x, position_ids)`` in 4.x; this calls whichever is installed."""
    from transformers.models.modernbert import modeling_modernbert as mb

    if "dim" in inspect.signature(mb.ModernBertRotaryEmbedding.__init__).parameters:  # transformers 4.x
        rotary = mb.ModernBertRotaryEmbedding(config, dim=config.hidden_size // config.num_attention_heads,
                                              base=config.global_rope_theta)
        return rotary(x, position_ids)
    return mb.ModernBertRotaryEmbedding(config)(x, position_ids, "full_attention")
