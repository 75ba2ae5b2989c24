"""Export to Hugging Face ``transformers``: two of our layouts *are* ``transformers`` models.

- ``norm="post"``, ``positions="learned"`` (BERT, 2018) → ``BertForMaskedLM``;
- ``norm="pre"``, ``positions="rope"``, ``embedding_norm=True``, ``ffn="geglu"`` (ModernBERT, 2024) →
  ``ModernBertForMaskedLM``, every layer global, with or without biases.

``to_transformers(model)`` copies every weight into the matching class, so the model computes the
same logits (eval mode) and works with the whole ecosystem: pipelines, ``Trainer``, the Hub.
``save_pretrained(model, tokenizer, path)`` writes a folder that ``AutoTokenizer`` and
``AutoModelForMaskedLM`` load with no code of ours, with a model card. ``transformers`` is needed only
here, and imported only when called.

Other layouts are refused with the reason. The book's own pre-LN preset normalises inside block 0
(a LayerNorm before its attention, none on the embeddings): ModernBERT normalises the embeddings and
feeds them to block 0's attention as they are, and no ``transformers`` encoder with rotary positions
has the other arrangement, so such a model has no exact ``transformers`` twin.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .model import MaskedLM
from .tokenizer import CLS, MASK, PAD, SEP, UNK

__all__ = ["to_transformers", "bert_config", "modernbert_config", "export_layout", "hf_tokenizer", "save_pretrained", "model_card",
           "run_summary"]


def export_layout(model: MaskedLM) -> str:
    """``"bert"`` or ``"modernbert"``: the ``transformers`` class ``model`` matches exactly; a
    ValueError that names what does not match otherwise."""
    if not isinstance(model, MaskedLM):
        raise ValueError(f"expected an mlm_lessons MaskedLM, got {type(model).__name__}")
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
    missing = [f"{name}={want!r}" for name, want, have in (("positions", "rope", c.positions), ("embedding_norm", True, c.embedding_norm),
                                                              ("ffn", "geglu", c.ffn)) if have != want]
    if missing:
        raise ValueError(
            f"a pre-LN model matches ModernBertForMaskedLM only with positions='rope', embedding_norm=True and ffn='geglu'; "
            f"this one needs {', '.join(missing)}. Without embedding_norm the model normalises inside block 0 instead of "
            f"the embeddings, which no transformers encoder does. Train in ModernBERT's layout with "
            f"EncoderConfig.in_modernbert_layout(), preset(..., layout='modernbert') or `pretrain --layout modernbert`; "
            f"for BERT's layout train with norm='post' instead.")
    return "modernbert"


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


def modernbert_config(model: MaskedLM):
    """The ``ModernBertConfig`` of our ModernBERT-layout model: its sizes, its rotary base for every
    layer, every layer global (no sliding window), our special-token ids."""
    from transformers import ModernBertConfig

    c = model.config
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
        classifier_bias=c.bias,
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
    )


def _copy(theirs, ours) -> None:
    """A linear layer's or a LayerNorm's weight, and its bias where ours has one (theirs has one then too)."""
    theirs.weight.copy_(ours.weight)
    if ours.bias is not None:
        theirs.bias.copy_(ours.bias)


@torch.no_grad()
def to_transformers(model: MaskedLM):
    """A ``transformers.BertForMaskedLM`` or ``ModernBertForMaskedLM`` (:func:`export_layout`)
    computing the same logits as ``model`` (eval mode)."""
    if export_layout(model) == "modernbert":
        return _to_modernbert(model)
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


def _to_modernbert(model: MaskedLM):
    from transformers import ModernBertForMaskedLM

    hf = ModernBertForMaskedLM(modernbert_config(model)).eval()
    enc, mb = model.encoder, hf.model
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
    _copy(hf.head.dense, model.head_dense)
    _copy(hf.head.norm, model.head_ln)
    hf.decoder.weight = mb.embeddings.tok_embeddings.weight  # tied, as in our model
    hf.decoder.bias.copy_(model.head_bias)
    return hf


def hf_tokenizer(tokenizer, *, model_max_length: int):
    """Our tokenizer as a ``transformers.PreTrainedTokenizerFast`` with the five special tokens named
    (the same pieces, ids and ``[CLS] … [SEP]`` framing); ``model_max_length`` truncates as our
    ``max_length`` does."""
    from transformers import PreTrainedTokenizerFast

    if not isinstance(model_max_length, int) or model_max_length < 3:
        raise ValueError(f"model_max_length must be an int >= 3 (room for [CLS], a piece and [SEP]), got {model_max_length!r}")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer.tokenizer, unk_token=UNK, pad_token=PAD, cls_token=CLS,
                                   sep_token=SEP, mask_token=MASK, model_max_length=model_max_length)


def model_card(model: MaskedLM, *, layout: str, trained_on: str | None = None, steps: int | None = None,
               metrics: dict | None = None, commands: list[str] | None = None) -> str:
    """The folder's ``README.md``: what the model is, what it was trained on and for how long, its
    validation ``[MASK]`` loss and accuracy, and the commands that made it. What was not given is
    said to be not recorded, never left out."""
    c = model.config
    cls = {"bert": "BertForMaskedLM", "modernbert": "ModernBertForMaskedLM"}[layout]
    not_recorded = "not recorded"
    lines = [
        "---", "library_name: transformers", "pipeline_tag: fill-mask", "tags: [masked-language-modeling, mlm-lessons]", "---", "",
        f"# A small masked-language model ({cls})", "",
        "Trained with `mlm_lessons`, the companion package of the book *Masked Language Modeling, step by step*, and "
        f"exported exactly: `{cls}` computes the same logits as the model it was trained as.", "",
        "## Model", "",
        f"- layout: {layout} ({c.norm}-LN, {c.positions} positions, {c.ffn} feed-forward, biases {'on' if c.bias else 'off'}"
        f"{', a LayerNorm on the embeddings' if c.embedding_norm or c.norm == 'post' else ''})",
        f"- {c.n_layers} layers, d_model {c.d_model}, {c.n_heads} heads, d_ff {c.d_ff}, vocabulary {c.vocab_size:,}, "
        f"up to {c.max_len} pieces, {model.num_parameters():,} parameters",
        "", "## Training", "",
        f"- data: {trained_on or not_recorded}",
        f"- steps: {steps:,}" if steps is not None else f"- steps: {not_recorded}",
    ]
    if metrics:
        lines += [f"- validation {k}: {v:.4f}" if isinstance(v, float) else f"- validation {k}: {v}" for k, v in metrics.items()]
    else:
        lines.append(f"- validation [MASK] loss and accuracy: {not_recorded}")
    lines += ["", "## How it was made", "", "```"] + (commands or [not_recorded]) + ["```", "", "## Use", "", "```python",
              "from transformers import pipeline", "fill = pipeline(\"fill-mask\", model=\"<this folder>\")",
              "fill(\"The function returns a [MASK].\")", "```", "",
              "A model this small is for learning and experiments: it knows the text it was trained on, little else.", ""]
    return "\n".join(lines)


def save_pretrained(model: MaskedLM, tokenizer, path: str | os.PathLike, *, trained_on: str | None = None,
                    steps: int | None = None, metrics: dict | None = None, commands: list[str] | None = None) -> Path:
    """Write a folder that ``transformers`` loads with no code of ours: ``config.json``,
    ``model.safetensors``, the tokenizer (``tokenizer.json``, ``tokenizer_config.json``, special tokens
    named) and ``README.md`` (:func:`model_card`). Returns the folder."""
    model.check_vocabulary(tokenizer)
    layout = export_layout(model)
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{str(out)!r} is a file; give a folder to write the model into")
    out.mkdir(parents=True, exist_ok=True)
    hf = to_transformers(model)
    hf.save_pretrained(out, safe_serialization=True)
    hf_tokenizer(tokenizer, model_max_length=model.config.max_len).save_pretrained(out)
    (out / "README.md").write_text(model_card(model, layout=layout, trained_on=trained_on, steps=steps, metrics=metrics,
                                              commands=commands), encoding="utf-8")
    return out


def run_summary(checkpoint: dict) -> dict:
    """Steps and the last validation ``[MASK]`` loss and accuracy of a training checkpoint, for the card."""
    history = [h for h in checkpoint.get("history", []) if "valid_mask_loss" in h]
    metrics = {}
    if history:
        metrics = {"[MASK] loss (nats)": float(history[-1]["valid_mask_loss"]),
                   "[MASK] accuracy": float(history[-1]["valid_mask_accuracy"]), "at step": int(history[-1]["step"])}
    return {"steps": checkpoint.get("step"), "metrics": metrics}
