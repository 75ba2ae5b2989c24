"""Chapter 4, the encoder: the checkers of its exercises."""

from __future__ import annotations

import math

from .registry import register, call_answer, name_mistake, as_number, judge_choice, judge_prediction

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


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


def initial_logit_spread(vocab_size: int, batch: dict, d_model: int, *, seed: int = 0) -> float:
    """The standard deviation of an untrained MaskedLM's logits at the real positions of ``batch``
    (``input_ids`` and ``attention_mask``): two pre-LN layers of width ``d_model``, 4 heads, a
    feed-forward of width 4 · d_model, as in section 4.8. The global random state is left as it was."""
    import torch

    from ...model import EncoderConfig, MaskedLM

    config = EncoderConfig(vocab_size=vocab_size, max_len=batch["input_ids"].shape[1], d_model=d_model, n_layers=2,
                           n_heads=4, d_ff=4 * d_model, dropout=0.0)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        model = MaskedLM(config).eval()
        logits = model(batch["input_ids"], batch["attention_mask"]).logits
    return float(logits[batch["attention_mask"].bool()].std())


@register(
    "04-predict-spread",
    4,
    "Predict, then run: the model of section 4.8 made four times as wide (d_model = 512, feed-forward 2,048), "
    "untrained: what is the standard deviation of its logits on the same batch?",
)
def _check_predict_spread(answer, *, tokenizer, batch) -> tuple[bool, str]:
    measured = initial_logit_spread(tokenizer.vocab_size, batch, 512)
    return judge_prediction(answer, measured, within=0.1, what="a standard deviation", why=(
        f"A logit is the head's output vector, LayerNorm-ed to about unit scale in each of its d coordinates, dotted "
        f"with an embedding row of d entries of standard deviation 0.02: a sum of d terms, so its standard deviation "
        f"grows like the square root of d, about sqrt(512) x 0.02 = {math.sqrt(512) * 0.02:.3f}. Four times the width "
        f"doubles it; it does not quadruple it."))


@register(
    "04-interpret-shares",
    4,
    "Interpret: in section 4.6 the token embeddings' share of the parameters falls from this chapter's model to "
    "BERT-base's shape. Why? (a) bigger models need fewer token embeddings; (b) the embedding matrix grows like "
    "V·d, the blocks like n_layers·d²; (c) weight tying saves a larger share in bigger models; (d) BERT-base's "
    "shape uses a smaller vocabulary.",
)
def _check_interpret_shares(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "the embedding matrix does not shrink, it grows: V × d, with the same 8,000 pieces in every row of the "
             "table, is six times larger at width 768 than at width 128",
        "b": "the embedding matrix is V × d, linear in the width; each block holds about 12·d² parameters (4·d² in "
             "attention, 8·d² in a feed-forward of width 4·d), and there are n_layers blocks. Six times the width "
             "and six times the depth multiply the blocks by about 216 and the embeddings by 6",
        "c": "every row of the table is tied, so tying saves one V × d matrix at every size: untied, the embeddings' "
             "share would be larger in every row, and it would still fall with size",
        "d": "the three rows use the same tokenizer, 8,000 pieces (the cell builds each with tok.vocab_size); the "
             "real BERT-base has a larger vocabulary, 30,522",
    }, right="b")


def changed_positions(model, ids, attention_mask, j: int, mask_id: int, *, threshold: float = 1e-6,
                      run_mask="same", count="real") -> int:
    """How many real positions (``attention_mask`` 1) of the one sequence ``ids`` [1, T] get logits that
    change by more than ``threshold`` when the piece at position ``j`` is replaced by ``mask_id``: the
    reference of exercise 4.6. (``run_mask=None`` runs the model without the mask, ``count="all"``
    counts the [PAD] positions too: two mistakes the checker names.)"""
    import torch

    changed = ids.clone()
    changed[0, j] = mask_id
    given = attention_mask if run_mask == "same" else run_mask
    with torch.no_grad():
        before = model(ids, given).logits
        after = model(changed, given).logits
    moved = (after - before)[0].abs().amax(-1) > threshold
    return int(moved.sum() if count == "all" else moved[attention_mask[0].bool()].sum())


@register(
    "04-reach",
    4,
    "Extend: write reach(model, ids, attention_mask, j, mask_id) for one sequence ids [1, T]: replace the piece "
    "at position j by mask_id in a copy, run the model on both, and return how many real positions "
    "(attention_mask 1) have logits that change by more than 1e-6.",
)
def _check_reach(answer, *, tokenizer) -> tuple[bool, str]:
    import torch

    from ...model import EncoderConfig, language_model

    texts = ["Return a new tensor with the same size.", "Close the file."]  # the two sentences the chapter starts from
    batch = tokenizer.encode_batch(texts, max_length=32)
    ids, mask = batch.input_ids, batch.attention_mask
    long_real, length = int(mask[0].sum()), ids.shape[1]
    models = {}
    for causal in (False, True):
        config = EncoderConfig(vocab_size=tokenizer.vocab_size, max_len=length, d_model=64, n_layers=2, n_heads=2,
                               d_ff=128, dropout=0.0, causal=causal)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            models[causal] = language_model(config).eval()
    names = {False: "the encoder", True: "the left-to-right model"}
    # the descriptions give no count: the number of real pieces is the answer of some cases
    long, short = f"the first sentence ({texts[0]!r}, no padding)", f"the second sentence ({texts[1]!r}, padded)"
    cases = [  # (causal, row, j, what)
        (False, 0, 5, f"piece 5 of {long}"),
        (True, 0, 5, f"piece 5 of {long}"),
        (False, 1, 3, f"piece 3 of {short}"),
        (True, 1, 3, f"piece 3 of {short}"),
        (False, 1, length - 2, f"a [PAD] (position {length - 2}) of {short}"),
    ]
    found = {}
    for causal, row, j, what in cases:
        model, x, m = models[causal], ids[row : row + 1].clone(), mask[row : row + 1].clone()
        with torch.no_grad():
            got = call_answer(answer, model, x, m, j, tokenizer.mask_id)
        if not torch.equal(x, ids[row : row + 1]):
            return False, "your function modified ids: replace the piece in a copy (ids.clone()), so that the model can run on both"
        if isinstance(got, torch.Tensor) and got.numel() > 1:
            return False, f"return one number, how many positions changed, got a tensor of shape {tuple(got.shape)}"
        got = as_number(got)
        want = found[causal, row, j] = changed_positions(model, x, m, j, tokenizer.mask_id)
        if got != want:  # the measurement is not printed: it is what the function should find
            hint = name_mistake(got, [
                (0, "nothing changed: run the model on the original ids and on a copy with position j replaced, and compare"),
                (changed_positions(model, x, m, j, tokenizer.mask_id, count="all"),
                 "count only the real positions (attention_mask 1): nothing reads the outputs at [PAD]"),
                (changed_positions(model, x, m, j, tokenizer.mask_id, run_mask=None),
                 "run the model with the attention_mask: without it, real pieces attend to [PAD] too"),
            ], lambda g, w: g == w)
            return False, f"{names[causal]}, {what}: you counted {got:g} positions, not what the package measures{hint}"
    return True, (f"in the encoder one replaced piece changed the output at {found[False, 0, 5]} of the {long_real} real "
                  f"positions; in the left-to-right model at {found[True, 0, 5]} – its own and those to its right; a "
                  f"replaced [PAD] changed {found[False, 1, length - 2]}")
