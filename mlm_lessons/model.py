"""A small Transformer encoder and its masked-LM head, readable from top to bottom.

``Encoder``: token embeddings, then ``n_layers`` blocks of bidirectional self-attention (a padding
mask keeps real tokens from attending to ``[PAD]``) and a GELU feed-forward network, each sublayer
wrapped in a residual connection and a LayerNorm – before the sublayer (``norm="pre"``, the stable
choice for training from scratch) or after it (``norm="post"``, BERT's layout, exportable to Hugging
Face ``BertForMaskedLM``).

Where a token is, the model learns in one of three ways (``positions``):
- ``"learned"``: a trained vector per absolute position, added to the token embedding (BERT);
- ``"rope"``: rotary positions (Su et al. 2021) – each head's queries and keys are rotated by an angle
  proportional to their position, so that the score of query ``i`` and key ``j`` depends on ``i - j``
  only; written in the convention of ``transformers``' ModernBERT (``rotate_half``, frequencies
  ``rope_theta ** (-2k / head_dim)``);
- ``"alibi"``: no position vectors at all; each head subtracts ``slope · |i - j|`` from its scores
  (Press et al. 2022, made symmetric for an encoder), a fixed preference for near neighbours.

Two layouts can be exported exactly to Hugging Face ``transformers`` (:mod:`mlm_lessons.hf`):
- BERT (2018): ``norm="post"``, ``positions="learned"``, a GELU feed-forward, biases everywhere;
- ModernBERT (2024): ``norm="pre"``, ``positions="rope"``, ``embedding_norm=True`` (a LayerNorm on the
  embeddings, and none before block 0's attention, which reads the normalised embeddings directly),
  ``ffn="geglu"`` (a gated feed-forward: ``down(gelu(a) * b)`` with ``a, b`` the two halves of ``up``)
  and, as ModernBERT ships it, ``bias=False`` (no bias in the linear layers and LayerNorms; the
  output projection keeps its own).

``MaskedLM``: the encoder plus BERT's head – dense, GELU, LayerNorm, and an output projection that
shares its weights with the token embeddings (plus its own bias). Given labels, the head runs only
at the labelled positions (sparse prediction): with 15% of positions labelled, that skips 85% of the
vocabulary projection, most of a small model's compute.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import require_ints
from .masking import IGNORE_INDEX
from .objective import masked_lm_loss

__all__ = ["FFN_KINDS", "EncoderConfig", "Encoder", "MaskedLM", "CausalLM", "language_model", "is_language_model", "check_vocabulary", "evaluating", "eval_mode", "MaskedLMOutput", "parameter_table", "flops_per_token", "fill_mask",
           "POSITION_SCHEMES", "rotary_tables", "rotate_half", "apply_rotary", "alibi_slopes", "alibi_bias"]


#: The ways the encoder can know where a token is (``EncoderConfig.positions``).
POSITION_SCHEMES = ("learned", "rope", "alibi")
#: The feed-forward networks of a block (``EncoderConfig.ffn``).
FFN_KINDS = ("gelu", "geglu")


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int
    max_len: int = 128
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    dropout: float = 0.1
    norm: str = "pre"
    layer_norm_eps: float = 1e-12  # BERT's value; keeps the export to transformers exact
    causal: bool = False  # True: each position attends only to itself and the left (a left-to-right LM)
    positions: str = "learned"  # "learned" (BERT), "rope" (rotary, as ModernBERT) or "alibi" (a distance penalty)
    rope_theta: float = 10000.0  # rotary base: the slowest rotation has a period of 2π · rope_theta positions
    embedding_norm: bool = False  # pre-LN only: LayerNorm on the embeddings, none before block 0's attention (ModernBERT)
    ffn: str = "gelu"  # "gelu": down(gelu(up(x))); "geglu": down(gelu(a) * b), a and b the halves of up(x) (ModernBERT)
    bias: bool = True  # biases in the linear layers and LayerNorms (False: ModernBERT's choice; the output bias stays)
    # the vocabulary the model reads (``MLMTokenizer.fingerprint``): None until it is trained with a
    # tokenizer; saved in every checkpoint and checked against the tokenizer it is used with
    vocab_fingerprint: str | None = None

    def __post_init__(self):
        require_ints(self, ("vocab_size", "max_len", "d_model", "n_layers", "n_heads", "d_ff"), minimum=1)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model must be divisible by n_heads, got d_model={self.d_model} and n_heads={self.n_heads} "
                f"(remainder {self.d_model % self.n_heads})"
            )
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' (LayerNorm before each sublayer) or 'post' (after, as BERT), got {self.norm!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if not isinstance(self.causal, bool):
            raise ValueError(f"causal must be True or False, got {self.causal!r}")
        if self.positions not in POSITION_SCHEMES:
            raise ValueError(f"positions must be one of {', '.join(map(repr, POSITION_SCHEMES))}, got {self.positions!r}")
        if self.positions == "rope" and self.head_dim % 2:
            raise ValueError(f"rotary positions rotate pairs of dimensions: head_dim = d_model / n_heads = {self.head_dim} "
                             f"must be even; change d_model or n_heads")
        if not (isinstance(self.rope_theta, (int, float)) and self.rope_theta > 1):
            raise ValueError(f"rope_theta must be a number > 1 (the rotary base, e.g. 10000.0), got {self.rope_theta!r}")
        for name in ("embedding_norm", "bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.embedding_norm and self.norm == "post":
            raise ValueError("embedding_norm=True is a pre-LN option (ModernBERT's layout); norm='post' always normalises "
                             "the embeddings, as BERT does: leave embedding_norm=False")
        if self.ffn not in FFN_KINDS:
            raise ValueError(f"ffn must be one of {', '.join(map(repr, FFN_KINDS))}, got {self.ffn!r}")
        if self.vocab_fingerprint is not None and not isinstance(self.vocab_fingerprint, str):
            raise ValueError(f"vocab_fingerprint must be a str (MLMTokenizer.fingerprint) or None, got {self.vocab_fingerprint!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)

    def in_modernbert_layout(self) -> "EncoderConfig":
        """The same sizes in ModernBERT's layout, which ``mlm_lessons.hf`` exports exactly: a LayerNorm
        on the embeddings, a GeGLU feed-forward and no biases. The gated feed-forward's first projection
        makes two halves, so ``d_ff`` becomes two thirds of this one's (rounded up to a multiple of 8):
        about the same parameters and FLOPs per token. Needs pre-LN and rotary positions, as ModernBERT."""
        if self.norm != "pre" or self.positions != "rope" or self.causal:
            raise ValueError(f"ModernBERT's layout is a bidirectional pre-LN encoder with rotary positions; this configuration "
                             f"has norm={self.norm!r}, positions={self.positions!r}, causal={self.causal}: start from "
                             f"norm='pre', positions='rope', causal=False")
        if self.ffn == "geglu":
            return replace(self, embedding_norm=True, bias=False)
        return replace(self, embedding_norm=True, ffn="geglu", d_ff=8 * math.ceil(2 * self.d_ff / 24), bias=False)

    def for_vocabulary(self, tokenizer) -> "EncoderConfig":
        """This configuration with ``tokenizer``'s fingerprint, after checking that it is the
        vocabulary the configuration was made for (size, and fingerprint where one is recorded)."""
        check_vocabulary(self, tokenizer)
        return replace(self, vocab_fingerprint=tokenizer.fingerprint)


def check_vocabulary(config: EncoderConfig, tokenizer) -> None:
    """Raise a ValueError when a model of ``config`` was not built for ``tokenizer``'s vocabulary:
    the size is checked always, the tokens themselves where the configuration records a fingerprint."""
    size = config.vocab_size
    if size != tokenizer.vocab_size:
        raise ValueError(
            f"the model has a vocabulary of {size:,} tokens, the tokenizer {tokenizer.vocab_size:,}: the "
            f"checkpoint comes from another vocabulary; use the tokenizer saved with it (tokenizer.json in its run directory)"
        )
    if config.vocab_fingerprint is not None and config.vocab_fingerprint != tokenizer.fingerprint:
        raise ValueError(
            f"the model was trained with vocabulary {config.vocab_fingerprint}, the tokenizer has {tokenizer.fingerprint} "
            f"(same size, different tokens); use the tokenizer saved with the checkpoint"
        )


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Run the block with ``model`` in eval mode (no dropout), and put it back as it was, even after an error."""
    if not isinstance(model, nn.Module):  # nothing to switch: the block's own checks will say what is wrong
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def eval_mode(fn):
    """Decorator: ``fn(model, ...)`` runs with ``model`` in eval mode (:func:`evaluating`)."""
    @functools.wraps(fn)
    def wrapper(model, *args, **kwargs):
        with evaluating(model):
            return fn(model, *args, **kwargs)

    return wrapper


# -- positions that live in attention: rotary (RoPE) and a linear distance bias (ALiBi) -------------


def rotary_tables(head_dim: int, length: int, theta: float = 10000.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)``, each [length, head_dim]: the rotation of every position, in fp32.

    Pair ``k`` of dimensions (``k`` and ``k + head_dim/2``, ModernBERT's ``rotate_half`` layout) turns by
    ``position · theta ** (-2k / head_dim)`` radians: fast for the first pairs, slow for the last.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float, device=device) / head_dim))
    angles = torch.arange(length, dtype=torch.float, device=device)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) → (−x2, x1) on the two halves of the last dimension: a quarter turn of every pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys [..., length, head_dim] by their positions' angles."""
    return (x.float() * cos + rotate_half(x.float()) * sin).to(x.dtype)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """One slope per head, the geometric sequence of Press et al.: 2^(-8/n), 2^(-16/n), ... (for a
    number of heads that is not a power of two, their interleaving rule)."""
    def powers(n):
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(n_heads).is_integer():
        return torch.tensor(powers(n_heads))
    closest = 2 ** math.floor(math.log2(n_heads))
    return torch.tensor(powers(closest) + powers(2 * closest)[0::2][: n_heads - closest])


def alibi_bias(n_heads: int, length: int, device=None) -> torch.Tensor:
    """[n_heads, length, length]: ``-slope · |i - j|``, added to the attention scores."""
    distance = torch.arange(length, device=device)
    distance = (distance[None, :] - distance[:, None]).abs().float()
    return -alibi_slopes(n_heads).to(device)[:, None, None] * distance


class SelfAttention(nn.Module):
    """Multi-head self-attention: every position sees all real positions, left and right – or, in
    a causal model, only those on its left and itself."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None, return_weights: bool = False, rotary=None):
        """``keep``: a boolean mask (True: may attend) or an additive float bias, broadcast to
        [batch, heads, queries, keys]; ``rotary``: the ``(cos, sin)`` tables of rotary positions."""
        batch, length, d = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        weights = None
        if return_weights:  # spelled out, to look at the attention pattern
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
            if keep is not None and keep.dtype == torch.bool:
                scores = scores.masked_fill(~keep, float("-inf"))
            elif keep is not None:
                scores = scores + keep
            weights = scores.softmax(dim=-1)
            out = F.dropout(weights, self.dropout, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=self.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(batch, length, d)
        return self.proj(out), weights


class FeedForward(nn.Module):
    """``down(gelu(up(x)))``, or with ``ffn="geglu"`` the gated ``down(gelu(a) * b)``, where ``a`` and
    ``b`` are the first and second halves of ``up(x)`` (``up`` is twice as wide; ModernBERT's ``Wi``)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.gated = config.ffn == "geglu"
        self.up = nn.Linear(config.d_model, config.d_ff * (2 if self.gated else 1), bias=config.bias)
        self.down = nn.Linear(config.d_ff, config.d_model, bias=config.bias)

    def forward(self, x):
        if self.gated:
            a, b = self.up(x).chunk(2, dim=-1)
            return self.down(F.gelu(a) * b)
        return self.down(F.gelu(self.up(x)))


def layer_norm(config: EncoderConfig) -> nn.LayerNorm:
    return nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)


class Block(nn.Module):
    def __init__(self, config: EncoderConfig, index: int = 0):
        super().__init__()
        self.norm_first = config.norm == "pre"
        self.attn = SelfAttention(config)
        self.ffn = FeedForward(config)
        # with a LayerNorm on the embeddings, block 0's attention reads them as they are (ModernBERT)
        self.ln1 = nn.Identity() if config.embedding_norm and index == 0 else layer_norm(config)
        self.ln2 = layer_norm(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, keep, return_weights=False, rotary=None):
        if self.norm_first:  # x + f(LN(x))
            a, w = self.attn(self.ln1(x), keep, return_weights, rotary)
            x = x + self.drop(a)
            x = x + self.drop(self.ffn(self.ln2(x)))
        else:  # LN(x + f(x)), as BERT
            a, w = self.attn(x, keep, return_weights, rotary)
            x = self.ln1(x + self.drop(a))
            x = self.ln2(x + self.drop(self.ffn(x)))
        return x, w


class Encoder(nn.Module):
    """Embeddings and ``n_layers`` blocks; returns one vector of size ``d_model`` per position."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        # learned positions: one trained vector per position; rotary and ALiBi have no position parameters
        self.pos_emb = nn.Embedding(config.max_len, config.d_model) if config.positions == "learned" else None
        # post-LN (BERT) normalises the embeddings; pre-LN normalises the output of the last block, and
        # the embeddings too with embedding_norm (ModernBERT)
        self.emb_ln = layer_norm(config) if config.norm == "post" or config.embedding_norm else None
        self.final_ln = layer_norm(config) if config.norm == "pre" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, return_attention: bool = False):
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}")
        batch, length = input_ids.shape
        if length > self.config.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len={self.config.max_len}; truncate the input")
        x = self.tok_emb(input_ids)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(length, device=input_ids.device))
        if self.emb_ln is not None:
            x = self.emb_ln(x)
        x = self.drop(x)
        # keep[b, 1, i, j]: may query i attend to key j? (broadcast over heads; over queries too
        # unless causal: then only keys j <= i)
        keep = None
        if attention_mask is not None:
            if attention_mask.shape != input_ids.shape:
                raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids {tuple(input_ids.shape)}")
            keep = attention_mask.bool()[:, None, None, :]
        if self.config.causal:
            left = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()
            keep = left if keep is None else keep & left
        rotary = None
        if self.config.positions == "rope":
            rotary = rotary_tables(self.config.head_dim, length, self.config.rope_theta, input_ids.device)
        elif self.config.positions == "alibi":  # the mask becomes a bias: -slope·|i-j| where allowed, -inf where not
            bias = alibi_bias(self.config.n_heads, length, input_ids.device).to(x.dtype)[None]
            keep = bias if keep is None else bias.masked_fill(~keep, float("-inf"))
        maps = []
        for block in self.blocks:
            x, w = block(x, keep, return_attention, rotary)
            maps.append(w)
        if self.final_ln is not None:
            x = self.final_ln(x)
        return (x, maps) if return_attention else x


@dataclass
class MaskedLMOutput:
    """``logits`` is [N, V] (labelled positions only) when labels were given, else [B, T, V]."""

    loss: torch.Tensor | None
    logits: torch.Tensor


class MaskedLM(nn.Module):
    """The bidirectional encoder and its masked-LM head (see :class:`CausalLM` for the left-to-right twin)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        if config.causal != isinstance(self, CausalLM):
            raise ValueError(f"a {type(self).__name__} needs EncoderConfig(causal={isinstance(self, CausalLM)}), got causal={config.causal}; "
                             f"use {'MaskedLM' if not config.causal else 'CausalLM'} (or language_model(config), which picks it)")
        self.config = config
        self.encoder = Encoder(config)
        self.head_dense = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.head_ln = layer_norm(config)
        self.head_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases, LayerNorm at identity."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states [..., d] to logits [..., V]; the projection is the token embedding matrix."""
        h = self.head_ln(F.gelu(self.head_dense(hidden)))
        return F.linear(h, self.encoder.tok_emb.weight, self.head_bias)

    def forward(self, input_ids, attention_mask=None, labels=None) -> MaskedLMOutput:
        hidden = self.encoder(input_ids, attention_mask)
        if labels is None:
            return MaskedLMOutput(None, self.head(hidden))
        if labels.shape != input_ids.shape:
            raise ValueError(f"labels {tuple(labels.shape)} must match input_ids {tuple(input_ids.shape)}")
        selected = labels != IGNORE_INDEX
        logits = self.head(hidden[selected])  # [N, V]: the head only where there is something to predict
        return MaskedLMOutput(masked_lm_loss(logits, labels[selected]), logits)

    def num_parameters(self) -> int:
        """Parameters counted once (the tied output projection is the embedding matrix)."""
        return sum(p.numel() for p in self.parameters())

    def adopt_vocabulary(self, tokenizer) -> None:
        """Record ``tokenizer``'s fingerprint in this model's configuration, after checking that it
        is the vocabulary the model reads (a ValueError otherwise): a new model, which records no
        fingerprint yet, takes ``tokenizer``'s once its size matches. To check without recording,
        use the module's :func:`check_vocabulary`."""
        self.config = self.encoder.config = self.config.for_vocabulary(tokenizer)

    #: The former name of :meth:`adopt_vocabulary`, kept for code written against it.
    check_vocabulary = adopt_vocabulary


class CausalLM(MaskedLM):
    """A left-to-right language model: the same encoder with causal attention (position ``t`` sees
    ``<= t``) and the same head, trained with ``TrainConfig(objective="causal")`` to predict the
    next piece at every position – chapter 9's comparison for the masked LM."""


def language_model(config: EncoderConfig) -> MaskedLM:
    """A new :class:`CausalLM` when ``config.causal``, else a :class:`MaskedLM`."""
    return CausalLM(config) if config.causal else MaskedLM(config)


def is_language_model(model) -> bool:
    """Whether ``pretrain`` and ``dapt`` can train ``model``: a :class:`MaskedLM` (or :class:`CausalLM`),
    or any module that trains like one – a ``config`` with ``vocab_size``, ``max_len``, ``causal``,
    ``vocab_fingerprint`` and ``to_dict()``, an ``adopt_vocabulary(tokenizer)`` that checks (and may
    record) the vocabulary, and ``forward(input_ids, attention_mask, labels)`` returning the loss and
    the logits of the labelled positions only, as :class:`MaskedLM` does. A published ``transformers``
    model wrapped by :mod:`mlm_lessons.published` is one."""
    return isinstance(model, MaskedLM) or (
        isinstance(model, nn.Module) and hasattr(model, "config") and callable(getattr(model, "adopt_vocabulary", None)))


def parameter_table(model: MaskedLM) -> list[dict]:
    """Parameters by part of the model, as rows for a table."""
    parts = {"token embeddings (tied with the output)": 0, "position embeddings": 0, "attention": 0,
             "feed-forward": 0, "layer norms": 0, "MLM head (dense + norm + bias)": 0}
    for name, p in model.named_parameters():
        if "tok_emb" in name:
            key = "token embeddings (tied with the output)"
        elif "pos_emb" in name:
            key = "position embeddings"
        elif ".attn." in name:
            key = "attention"
        elif ".ffn." in name:
            key = "feed-forward"
        elif name.startswith("head_"):
            key = "MLM head (dense + norm + bias)"
        else:
            key = "layer norms"
        parts[key] += p.numel()
    total = sum(parts.values())
    return [{"part": k, "parameters": v, "share": v / total} for k, v in parts.items()] + [
        {"part": "total", "parameters": total, "share": 1.0}
    ]


def flops_per_token(config: EncoderConfig, seq_len: int, labelled_fraction: float = 0.15, training: bool = True) -> float:
    """Floating-point operations per input token (a multiply-add counts 2).

    Per layer and token: the four d×d projections and the two d×d_ff ones (three with ``ffn="geglu"``;
    2 FLOPs per weight), and
    attention's two products over ``seq_len`` keys (2 · 2 · seq_len · d). The head (d×d dense and the
    d×V projection) runs at the labelled fraction of the positions only. Training costs three times
    the forward pass (forward, and a backward twice as expensive).
    """
    if not 0 < labelled_fraction <= 1:
        raise ValueError(f"labelled_fraction must be in (0, 1], got {labelled_fraction!r}")
    d = config.d_model
    ffn_weights = (3 if config.ffn == "geglu" else 2) * d * config.d_ff  # a gated up projection is twice as wide
    per_layer = 2 * (4 * d * d + ffn_weights) + 4 * seq_len * d
    head = 2 * (d * d + d * config.vocab_size) * labelled_fraction
    forward = config.n_layers * per_layer + head
    return 3 * forward if training else forward


@torch.no_grad()
def fill_mask(model: MaskedLM, tokenizer, text: str, top_k: int = 5, *,
              one_at_a_time: bool = False) -> list[list[tuple[str, float]]]:
    """For each ``[MASK]`` in ``text``, left to right, the ``top_k`` most likely pieces with their
    probabilities (specials are never proposed: their probability is set to 0).

    All at once (the default): one pass, every mask predicted from the visible words alone.
    ``one_at_a_time=True``: the mask the model is surest of gets its most likely piece first, then the
    others are predicted again with that piece in place, and so on (chapter 9's
    ``fill_sequentially(order="confident")``); each mask's list is the model's answer at the moment
    that mask was filled, and its first piece is the one filled in.
    A text longer than the model's ``max_len`` pieces (``[CLS]`` and ``[SEP]`` included) is refused."""
    if not isinstance(text, str) or "[MASK]" not in text:
        raise ValueError(f"text must contain [MASK] where a piece should be predicted, got {text!r}")
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    if not isinstance(one_at_a_time, bool):
        raise ValueError(f"one_at_a_time must be True or False, got {one_at_a_time!r}")
    ids = tokenizer.encode(text)
    if len(ids) > model.config.max_len:
        raise ValueError(f"the text is {len(ids)} pieces long with [CLS] and [SEP]; this model reads at most "
                         f"max_len={model.config.max_len}: shorten the text")
    if top_k > tokenizer.vocab_size - len(tokenizer.special_ids):
        raise ValueError(f"top_k={top_k} exceeds the {tokenizer.vocab_size - len(tokenizer.special_ids)} pieces "
                         f"that are not special; ask for fewer")
    device = next(model.parameters()).device
    ids = torch.tensor([ids], device=device)
    positions = (ids[0] == tokenizer.mask_id).nonzero().flatten().tolist()
    answers = {}  # position -> its top k (values, indices)
    with evaluating(model):
        while len(answers) < len(positions):
            logits = model(ids, torch.ones_like(ids)).logits[0]
            tops, sure = {}, {}
            for pos in (p for p in positions if p not in answers):
                probs = logits[pos].float().softmax(-1)
                probs[sorted(tokenizer.special_ids)] = 0.0  # never propose [PAD], [CLS], ...
                tops[pos] = probs.topk(top_k)
                sure[pos] = (tops[pos].values[0] / probs.sum()).item()  # as fill_sequentially: among non-specials
            if not one_at_a_time:
                answers = tops
                break
            pos = max(sure, key=lambda q: (sure[q], -q))  # the surest; the leftmost on a tie
            answers[pos] = tops[pos]
            ids[0, pos] = tops[pos].indices[0]
    return [[(tokenizer.id_to_token(i), p) for i, p in zip(answers[pos].indices.tolist(), answers[pos].values.tolist())]
            for pos in positions]
