"""The encoder and its MLM head: shapes, masks, sparse prediction, initialisation, FLOPs, export."""

from __future__ import annotations

import math

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.model import EncoderConfig, MaskedLM, fill_mask, flops_per_token, parameter_table

SMALL = dict(vocab_size=300, max_len=32, d_model=64, n_layers=2, n_heads=4, d_ff=128)


def model(norm="pre", dropout=0.0, seed=0, **kw):
    torch.manual_seed(seed)
    return MaskedLM(EncoderConfig(**{**SMALL, "dropout": dropout, "norm": norm, **kw})).eval()


def batch(b=3, t=20, vocab=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (b, t), generator=g)
    ids[:, 0], mask = 2, torch.ones(b, t, dtype=torch.long)
    if b > 1:  # the second sequence is padded after 12 tokens
        ids[1, 12:], mask[1, 12:] = 0, 0
    labels = torch.full((b, t), -100)
    labels[:, 3] = ids[:, 3]
    labels[0, 7] = ids[0, 7]
    return ids, mask, labels


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"d_model": 100, "n_heads": 3}, r"d_model must be divisible by n_heads, got d_model=100 and n_heads=3"),
        ({"n_layers": 0}, "n_layers must be a positive int, got 0"),
        ({"vocab_size": -5}, "vocab_size must be a positive int, got -5"),
        ({"d_ff": 2.5}, "d_ff must be a positive int, got 2.5"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"norm": "middle"}, "norm must be 'pre'"),
        ({"layer_norm_eps": 0}, "layer_norm_eps must be > 0"),
        ({"positions": "sinusoidal"}, "positions must be one of 'learned', 'rope', 'alibi', got 'sinusoidal'"),
        ({"positions": "rope", "d_model": 60, "n_heads": 4}, r"head_dim = d_model / n_heads = 15 must be even"),
        ({"positions": "rope", "rope_theta": 1}, r"rope_theta must be a number > 1"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**{**SMALL, **kwargs})


SCHEMES = ["learned", "rope", "alibi"]


@pytest.mark.parametrize("norm, positions", [("pre", "learned"), ("post", "learned"), ("pre", "rope"), ("pre", "alibi")])
def test_shapes_and_sparse_prediction(norm, positions):
    m = model(norm, positions=positions)
    ids, mask, labels = batch()
    full = m(ids, mask).logits
    assert full.shape == (3, 20, 300) and m(ids, mask).loss is None
    sparse = m(ids, mask, labels)
    n = int((labels != -100).sum())
    assert sparse.logits.shape == (n, 300)
    assert torch.allclose(sparse.logits, full[labels != -100], atol=1e-5)
    assert sparse.loss.item() == pytest.approx(mlm.masked_lm_loss(full, labels).item(), abs=1e-5)


def test_nothing_labelled_gives_zero_loss_with_gradient():
    m = model()
    ids, mask, _ = batch()
    out = m(ids, mask, torch.full_like(ids, -100))
    assert out.logits.shape == (0, 300) and out.loss.item() == 0.0
    out.loss.backward()
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in m.parameters())


@pytest.mark.parametrize("positions", SCHEMES)
def test_padding_does_not_change_real_positions(positions):
    m = model(positions=positions)
    ids, mask, _ = batch(b=1)
    short = m(ids[:, :10], mask[:, :10]).logits
    padded_ids = torch.cat([ids[:, :10], torch.zeros(1, 15, dtype=torch.long)], 1)
    padded_mask = torch.cat([mask[:, :10], torch.zeros(1, 15, dtype=torch.long)], 1)
    longer = m(padded_ids, padded_mask).logits[:, :10]
    assert torch.allclose(short, longer, atol=1e-5)
    other_pad = padded_ids.clone()
    other_pad[:, 10:] = 77  # whatever sits under the padding mask is never seen
    assert torch.allclose(m(other_pad, padded_mask).logits[:, :10], short, atol=1e-5)


@pytest.mark.parametrize("positions", SCHEMES)
def test_attention_is_bidirectional(positions):
    m = model(positions=positions)
    ids, mask, _ = batch(b=1)
    changed = ids.clone()
    changed[0, 15] = 6
    before, after = m(ids, mask).logits, m(changed, mask).logits
    assert not torch.allclose(before[0, 2], after[0, 2]), "an early position sees a later token"


@pytest.mark.parametrize("positions", SCHEMES)
def test_attention_maps_match_the_fused_kernel(positions):
    m = model(positions=positions)
    ids, mask, _ = batch()
    hidden, maps = m.encoder(ids, mask, return_attention=True)
    assert torch.allclose(hidden, m.encoder(ids, mask), atol=1e-5)
    assert len(maps) == 2 and maps[0].shape == (3, 4, 20, 20)
    assert torch.allclose(maps[0].sum(-1), torch.ones(3, 4, 20), atol=1e-5)
    assert (maps[1][1, :, :, 12:] == 0).all(), "no attention on padding"


def test_initial_loss_is_about_log_v():
    torch.manual_seed(0)
    m = MaskedLM(EncoderConfig(vocab_size=8000, max_len=64, d_model=128, n_layers=2, n_heads=4, d_ff=512)).eval()
    ids = torch.randint(5, 8000, (8, 64))
    labels = torch.where(torch.rand(8, 64) < 0.15, ids, torch.full_like(ids, -100))
    assert m(ids, labels=labels).loss.item() == pytest.approx(math.log(8000), abs=0.1)


def test_head_is_tied_to_the_embeddings():
    m = model()
    assert not any(p.shape == (300, 64) for n, p in m.named_parameters() if "tok_emb" not in n)
    ids, mask, labels = batch()
    m.train()
    m(ids, mask, labels).loss.backward()
    assert m.encoder.tok_emb.weight.grad is not None
    rows = parameter_table(m)
    assert rows[-1]["parameters"] == m.num_parameters() == sum(r["parameters"] for r in rows[:-1])


def test_flops_formula_against_pytorchs_counter():
    from torch.utils.flop_counter import FlopCounterMode

    m = model(vocab_size=2000, max_len=64, d_model=128, n_heads=4, d_ff=512)
    ids = torch.randint(5, 2000, (4, 64))
    labels = torch.full_like(ids, -100)
    labels[:, ::8] = ids[:, ::8]  # 12.5% labelled
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():  # the spelled-out attention, so that its two products are counted too
        hidden, _ = m.encoder(ids, return_attention=True)
        m.head(hidden[labels != -100])
    counted = counter.get_total_flops() / ids.numel()
    ours = flops_per_token(m.config, 64, labelled_fraction=0.125, training=False)
    assert ours == pytest.approx(counted, rel=0.02)
    assert flops_per_token(m.config, 64, 0.125) == 3 * ours
    with pytest.raises(ValueError, match="labelled_fraction"):
        flops_per_token(m.config, 64, 0.0)


def test_sequence_longer_than_max_len():
    m = model()
    with pytest.raises(ValueError, match="sequence length 40 exceeds max_len=32"):
        m(torch.randint(5, 300, (1, 40)))
    with pytest.raises(ValueError, match=r"attention_mask \(1, 5\) must match input_ids \(1, 6\)"):
        m(torch.randint(5, 300, (1, 6)), torch.ones(1, 5, dtype=torch.long))


def test_export_to_transformers_gives_the_same_logits():
    transformers = pytest.importorskip("transformers")
    from mlm_lessons.hf import to_transformers

    m = model("post")
    with torch.no_grad():  # move every parameter off its initial value, LayerNorms included
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    hf = to_transformers(m)
    assert isinstance(hf, transformers.BertForMaskedLM)
    assert hf.cls.predictions.decoder.weight.data_ptr() == hf.bert.embeddings.word_embeddings.weight.data_ptr()
    ids, mask, _ = batch()
    theirs = hf(input_ids=ids, attention_mask=mask).logits
    ours = m(ids, mask).logits
    assert (ours - theirs)[mask.bool()].abs().max().item() <= 1e-4


def test_pre_ln_without_modernberts_layout_cannot_be_exported():
    pytest.importorskip("transformers")
    from mlm_lessons.hf import to_transformers

    with pytest.raises(ValueError, match="a pre-LN model matches ModernBertForMaskedLM only with positions='rope', "
                                         "embedding_norm=True and ffn='geglu'"):
        to_transformers(model("pre"))
    with pytest.raises(ValueError, match="only positions='learned' models match BertForMaskedLM"):
        to_transformers(model("post", positions="rope"))


def test_in_modernbert_layout_changes_only_the_layout():
    base = EncoderConfig(vocab_size=300, max_len=32, d_model=64, n_heads=4, n_layers=2, d_ff=256, positions="rope", dropout=0.0)
    modern = base.in_modernbert_layout()
    assert (modern.embedding_norm, modern.ffn, modern.bias, modern.d_ff) == (True, "geglu", False, 176)  # ceil(256 · 2/3 / 8) · 8
    assert {k: v for k, v in modern.to_dict().items() if k not in ("embedding_norm", "ffn", "bias", "d_ff")} == \
           {k: v for k, v in base.to_dict().items() if k not in ("embedding_norm", "ffn", "bias", "d_ff")}
    assert modern.in_modernbert_layout() == modern  # already there: nothing changes
    for wrong in (dict(norm="post", positions="learned"), dict(positions="learned"), dict(causal=True)):
        with pytest.raises(ValueError, match="ModernBERT's layout is a bidirectional pre-LN encoder with rotary positions"):
            EncoderConfig(**{**base.to_dict(), **wrong}).in_modernbert_layout()


# -- positions in attention: rotary (RoPE) and ALiBi ----------------------------------------------------------


@pytest.mark.parametrize("head_dim, theta", [(16, 10000.0), (32, 160000.0)])
def test_rotary_matches_transformers_modernbert(head_dim, theta):
    """Our tables and rotation against ModernBERT's own rotary code, the convention an export must match."""
    pytest.importorskip("transformers")
    from transformers import ModernBertConfig
    from transformers.models.modernbert import modeling_modernbert as mb

    from mlm_lessons.hf import modernbert_rotary
    from mlm_lessons.model import apply_rotary, rotary_tables

    heads, length = 4, 24
    config = ModernBertConfig(hidden_size=heads * head_dim, num_attention_heads=heads, global_rope_theta=theta,
                              max_position_embeddings=64)
    x = torch.randn(2, heads, length, head_dim, generator=torch.Generator().manual_seed(0))
    q, k = x, x.flip(-2)
    positions = torch.arange(length)[None].expand(2, -1)
    cos, sin = modernbert_rotary(config, q, positions)  # transformers' own class, under either of its signatures
    ours_cos, ours_sin = rotary_tables(head_dim, length, theta)
    assert torch.allclose(ours_cos, cos[0], atol=1e-6) and torch.allclose(ours_sin, sin[0], atol=1e-6)
    q_theirs, k_theirs = mb.apply_rotary_pos_emb(q, k, cos, sin)
    assert torch.allclose(apply_rotary(q, ours_cos, ours_sin), q_theirs, atol=1e-6)
    assert torch.allclose(apply_rotary(k, ours_cos, ours_sin), k_theirs, atol=1e-6)


def test_rotary_scores_depend_on_the_offset_only():
    """q·k after rotation is the same for positions (i, j) and (i + s, j + s): only i − j is seen."""
    from mlm_lessons.model import apply_rotary, rotary_tables

    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(16, generator=g), torch.randn(16, generator=g)
    cos, sin = rotary_tables(16, 60)

    def score(i, j):
        return float(apply_rotary(q, cos[i], sin[i]) @ apply_rotary(k, cos[j], sin[j]))

    for i, j in [(0, 3), (5, 1), (10, 10), (2, 40)]:
        for shift in (1, 7, 19):
            assert score(i + shift, j + shift) == pytest.approx(score(i, j), abs=1e-4)
    assert score(0, 3) != pytest.approx(score(0, 4), abs=1e-3), "a different offset gives a different score"
    assert float(apply_rotary(q, cos[9], sin[9]).norm()) == pytest.approx(float(q.norm()), rel=1e-5), "a rotation keeps the length"


@pytest.mark.parametrize("positions", ["rope", "alibi"])
def test_relative_schemes_see_a_shifted_sequence_the_same_way(positions):
    """With no position vectors, one attention layer scores a run of identical tokens as a Toeplitz
    matrix: every diagonal (one offset i − j) holds one value."""
    m = model(positions=positions, n_layers=1)
    ids = torch.full((1, 12), 9)
    _, maps = m.encoder(ids, return_attention=True)
    def relative_scores(maps):
        # log-weights are scores minus a per-row constant; minus each row's own diagonal (offset 0,
        # the same token on both sides) leaves s(i, j) − s(i, i)
        logw = maps[0][0].log()
        return logw - torch.diagonal(logw, dim1=-2, dim2=-1)[..., None]

    rel = relative_scores(maps)
    assert rel.isfinite().all()
    for offset in range(-11, 12):
        diagonal = torch.diagonal(rel, offset=offset, dim1=-2, dim2=-1)
        assert torch.allclose(diagonal, diagonal[..., :1].expand_as(diagonal), atol=1e-4), (positions, offset)
    learned = model(positions="learned", n_layers=1)
    with torch.no_grad():
        learned.encoder.pos_emb.weight.normal_(0, 0.5)  # learned positions: each position its own vector
    _, maps = learned.encoder(ids, return_attention=True)
    diagonal = torch.diagonal(relative_scores(maps), offset=1, dim1=-2, dim2=-1)
    assert not torch.allclose(diagonal, diagonal[..., :1].expand_as(diagonal), atol=1e-3), "absolute positions are not relative"


def test_alibi_slopes_and_bias():
    from mlm_lessons.model import alibi_bias, alibi_slopes

    assert alibi_slopes(8).tolist() == [2.0 ** -(i + 1) for i in range(8)]  # Press et al.: 1/2, 1/4, ..., 1/256
    assert alibi_slopes(4).tolist() == [2.0 ** -(2 * (i + 1)) for i in range(4)]
    six = alibi_slopes(6).tolist()  # not a power of two: the 4 slopes of 4 heads, then every other of 8 heads'
    assert six[:4] == alibi_slopes(4).tolist() and six[4:] == alibi_slopes(8).tolist()[0::2][:2]
    bias = alibi_bias(2, 5)
    assert bias.shape == (2, 5, 5) and torch.equal(bias, bias.transpose(-1, -2)) and (bias.diagonal(dim1=-2, dim2=-1) == 0).all()
    assert bias[0, 0, 3].item() == pytest.approx(-3 * alibi_slopes(2)[0].item())


def test_rotary_and_alibi_have_no_position_parameters():
    learned, rope, alibi = (model(positions=p) for p in SCHEMES)
    assert learned.num_parameters() - rope.num_parameters() == SMALL["max_len"] * SMALL["d_model"]
    assert rope.num_parameters() == alibi.num_parameters()
    assert rope.encoder.pos_emb is None and not any("pos_emb" in n for n, _ in rope.named_parameters())
    rows = {r["part"]: r["parameters"] for r in parameter_table(rope)}
    assert rows["position embeddings"] == 0


def test_fill_mask(general_tok):
    m = MaskedLM(EncoderConfig(vocab_size=general_tok.vocab_size, max_len=32, d_model=32, n_layers=1, n_heads=2, d_ff=64))
    out = fill_mask(m, general_tok, "Return a new [MASK] with the [MASK] size.", top_k=3)
    assert len(out) == 2 and all(len(o) == 3 for o in out)
    assert all(tok not in ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]") for o in out for tok, _ in o)
    assert m.training, "fill_mask restores the training mode"
    with pytest.raises(ValueError, match="must contain \\[MASK\\]"):
        fill_mask(m, general_tok, "no mask here")
