"""Export to Hugging Face ``transformers``: a ``norm="post"`` MaskedLM *is* a BertForMaskedLM.

``to_transformers(model)`` copies every weight into a ``BertForMaskedLM`` of the same sizes, so the
model can be used with the whole ``transformers`` ecosystem (pipelines, ``save_pretrained``, the
Hub). ``transformers`` is needed only here, and imported only when called.
"""

from __future__ import annotations

import torch

from .model import MaskedLM

__all__ = ["to_transformers", "bert_config"]


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


@torch.no_grad()
def to_transformers(model: MaskedLM):
    """A ``transformers.BertForMaskedLM`` computing the same logits as ``model`` (eval mode).

    Only ``norm="post"`` models can be exported: BERT puts LayerNorm after each sublayer, and
    ``transformers`` has no BERT variant that matches our pre-LN layout exactly.
    """
    if not isinstance(model, MaskedLM):
        raise ValueError(f"expected an mlm_lessons MaskedLM, got {type(model).__name__}")
    if model.config.norm != "post":
        raise ValueError(
            f"only norm='post' models match BertForMaskedLM; this one has norm={model.config.norm!r} "
            f"(LayerNorm before each sublayer, which BERT does not have). Train with "
            f"EncoderConfig(..., norm='post') to export."
        )
    if model.config.positions != "learned":
        raise ValueError(f"only positions='learned' models match BertForMaskedLM (one trained vector per position); this "
                         f"one has positions={model.config.positions!r}. Train with EncoderConfig(..., positions='learned', "
                         f"norm='post') to export to BERT's layout.")
    if model.config.causal:
        raise ValueError("this model is causal (causal=True): BertForMaskedLM attends both ways, so it would not "
                         "compute the same logits; only bidirectional models can be exported")
    from transformers import BertForMaskedLM

    hf = BertForMaskedLM(bert_config(model)).eval()
    enc, bert = model.encoder, hf.bert
    d = model.config.d_model
    bert.embeddings.word_embeddings.weight.copy_(enc.tok_emb.weight)
    bert.embeddings.position_embeddings.weight.copy_(enc.pos_emb.weight)
    bert.embeddings.token_type_embeddings.weight.zero_()  # we have no segments: type 0 adds nothing
    bert.embeddings.LayerNorm.load_state_dict(enc.emb_ln.state_dict())
    for ours, theirs in zip(enc.blocks, bert.encoder.layer):
        for i, part in enumerate((theirs.attention.self.query, theirs.attention.self.key, theirs.attention.self.value)):
            part.weight.copy_(ours.attn.qkv.weight[i * d : (i + 1) * d])
            part.bias.copy_(ours.attn.qkv.bias[i * d : (i + 1) * d])
        theirs.attention.output.dense.load_state_dict(ours.attn.proj.state_dict())
        theirs.attention.output.LayerNorm.load_state_dict(ours.ln1.state_dict())
        theirs.intermediate.dense.load_state_dict(ours.ffn.up.state_dict())
        theirs.output.dense.load_state_dict(ours.ffn.down.state_dict())
        theirs.output.LayerNorm.load_state_dict(ours.ln2.state_dict())
    head = hf.cls.predictions
    head.transform.dense.load_state_dict(model.head_dense.state_dict())
    head.transform.LayerNorm.load_state_dict(model.head_ln.state_dict())
    head.decoder.weight = bert.embeddings.word_embeddings.weight  # tied, as in our model
    head.decoder.bias = head.bias if hasattr(head, "bias") and head.bias is not None else head.decoder.bias
    head.decoder.bias.copy_(model.head_bias)
    return hf
