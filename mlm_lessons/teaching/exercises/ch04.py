"""Chapter 4, the encoder: the checkers of its exercises."""

from __future__ import annotations

from .registry import register, call_answer, name_mistake


@register(
    "04-attention",
    4,
    "Write my_attention(q, k, v, keep) for [B, h, T, d_h] tensors and a boolean keep [B, 1, 1, T]: "
    "softmax(q k^T / sqrt(d_h)) v with the keys where keep is False given weight 0.",
)
def _check_attention(answer) -> tuple[bool, str]:
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    for b, h, t, d in ((1, 1, 4, 8), (2, 4, 7, 16)):
        q, k, v = (torch.randn(b, h, t, d, generator=g) for _ in range(3))
        keep = torch.ones(b, 1, 1, t, dtype=torch.bool)
        keep[-1, ..., t - 2 :] = False  # padding at the end of the last sequence
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        got = call_answer(answer, q, k, v, keep)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return False, f"expected a tensor of shape {tuple(want.shape)}, got {getattr(got, 'shape', type(got).__name__)}"
        if not torch.allclose(got, want, atol=1e-5):
            scores = q @ k.transpose(-2, -1) / d**0.5
            hint = name_mistake(got, [
                (F.scaled_dot_product_attention(q, k, v, scale=1.0), "apply the mask and divide the scores by sqrt(d_h)"),
                (F.scaled_dot_product_attention(q, k, v), "did you apply the mask? the padded keys still get weight"),
                (F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1.0), "did you divide the scores by sqrt(d_h)?"),
                (F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1 / d), "divide the scores by sqrt(d_h), not by d_h"),
                (scores.masked_fill(~keep, 0.0).softmax(-1) @ v,
                 "a masked score of 0 still gets weight exp(0) after the softmax: fill with -inf (or a very negative number)"),
                (scores.softmax(-1) * keep @ v, "you zeroed the weights after the softmax, so they no longer sum to 1: mask the scores before it"),
                *((scores.masked_fill(~keep.transpose(-2, -1), fill).softmax(-1) @ v,
                   "you masked the padded queries (rows), not the padded keys (columns): keep is [B, 1, 1, T] over the keys")
                  for fill in (float("-inf"), -1e9)),
                *((scores.masked_fill(~keep, fill).softmax(-2) @ v, "take the softmax over the keys (the last dimension), not the queries")
                  for fill in (float("-inf"), -1e9)),
            ], lambda g, w: torch.allclose(g, w, atol=1e-5, equal_nan=True))
            return False, f"differs from scaled_dot_product_attention by {float((got - want).abs().max()):.3g}{hint}"
    return True, "matches F.scaled_dot_product_attention, padding included"


@register(
    "04-params",
    4,
    "Write count_parameters(config) that returns the number of parameters of MaskedLM(config) from "
    "the sizes alone.",
)
def _check_params(answer) -> tuple[bool, str]:
    import torch

    from ...model import EncoderConfig, MaskedLM

    configs = [
        EncoderConfig(vocab_size=8000, max_len=64, d_model=128, n_layers=2, n_heads=4, d_ff=512),
        EncoderConfig(vocab_size=1000, max_len=32, d_model=64, n_layers=3, n_heads=2, d_ff=100, norm="post"),
        EncoderConfig(vocab_size=30522, max_len=512, d_model=768, n_layers=12, n_heads=12, d_ff=3072, norm="post"),
    ]
    for c in configs:
        model = MaskedLM(c)
        want = model.num_parameters()
        got = call_answer(answer, c)
        if got != want:
            d = c.d_model
            norms = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters())
            biases = sum(m.bias.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)) + c.vocab_size
            hint = name_mistake(got, [
                (want + c.vocab_size * d, "the output layer reuses (ties) the token embedding matrix: count it once"),
                (want - c.max_len * d, "you left out the position embeddings (max_len × d_model)"),
                (want - norms, "you left out the LayerNorms (a weight and a bias of d_model each)"),
                (want - 2 * d, "you left out one LayerNorm: the one after the embeddings (post-LN) or after the last block (pre-LN)"),
                (want - biases, "you left out the biases (of every linear layer, and the output bias of vocab_size)"),
                (want - c.vocab_size, "you left out the output bias (one per vocabulary entry)"),
                (want - (d * d + d + 2 * d), "you left out the head's dense layer and LayerNorm"),
            ], lambda g, w: g == w)
            return False, f"for d_model={d}, n_layers={c.n_layers}, d_ff={c.d_ff}, V={c.vocab_size}, norm={c.norm!r}: you counted {got!r}, MaskedLM has {want:,}{hint}"
    return True, "exact for 3 configurations, BERT-base's shape among them"


@register(
    "04-causal",
    4,
    "Write causal_keep(T): a boolean [T, T] matrix, True where query i may attend to key j in a "
    "left-to-right model.",
)
def _check_causal(answer) -> tuple[bool, str]:
    import torch

    for t in (1, 4, 9):
        want = torch.ones(t, t, dtype=torch.bool).tril()
        got = call_answer(answer, t)
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool or got.shape != want.shape:
            return False, f"causal_keep({t}) should be a bool tensor of shape ({t}, {t}), got {got!r:.80}"
        if not torch.equal(got, want):
            hint = name_mistake(got, [
                (want.T, "that is the transpose: query i (row) sees keys j <= i (columns)"),
                (want.tril(-1), "the diagonal is missing: a query may attend to its own position"),
                (torch.ones_like(want), "every query sees every key: a left-to-right model must hide the future (j > i)"),
            ], torch.equal)
            return False, f"causal_keep({t}) returned {got.int().tolist()}, expected {want.int().tolist()}{hint}"
    return True, "right for T = 1, 4, 9"


# -- chapter 5 ------------------------------------------------------------------------------
