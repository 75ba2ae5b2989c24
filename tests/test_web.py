"""The model outside PyTorch (mlm_lessons.web): the ONNX file against PyTorch with onnxruntime, the
weights it carries, the bundle a web page loads; and fill_mask, which the page repeats, all at once
and one mask at a time (against chapter 9's fill_sequentially)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons import web
from mlm_lessons.generation import fill_sequentially
from mlm_lessons.model import EncoderConfig, MaskedLM, fill_mask, language_model
from mlm_lessons.settings import PRESETS

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_thread")

SENTENCES = ["Return a new [MASK] with the same size.", "The [MASK] [MASK] of a list is its first item.",
             "[MASK] a file, read its lines, then [MASK] it.", "If the key is missing, [MASK] raises a [MASK]."]


def small_model(tok, seed=0, **changes) -> MaskedLM:
    torch.manual_seed(seed)
    settings = dict(PRESETS["cpu-small"][0], d_model=32, n_heads=2, d_ff=48, max_len=32)
    return language_model(EncoderConfig(vocab_size=tok.vocab_size, **{**settings, **changes})).eval()


@pytest.fixture(scope="module")
def exported(general_tok, tmp_path_factory):
    model = small_model(general_tok)
    path = web.export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx")
    return model, path


def test_onnx_computes_what_pytorch_computes(general_tok, corpora, exported):
    model, path = exported
    texts = corpora["python-docs"].texts("valid")[:40] + SENTENCES
    check = web.compare_onnx(model, general_tok, path, texts)
    assert check["positions"] > 500
    assert check["max_logit_difference"] <= 1e-4
    assert check["max_attention_difference"] <= 1e-5
    assert check["same_top_k"] == 1.0


@pytest.mark.parametrize("length", [1, 2, 7, 31, 32])
def test_onnx_takes_any_length_up_to_max_len_and_padded_batches(general_tok, exported, length):
    model, path = exported
    g = torch.Generator().manual_seed(length)
    ids = torch.randint(5, general_tok.vocab_size, (2, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, length // 2 + 1:] = 0  # the second row padded
    logits, attention = web.onnx_logits(path, ids, mask)
    with torch.no_grad():
        hidden, maps = model.encoder(ids, mask, return_attention=True)
        ours = model.head(hidden)
    real = mask.bool().numpy()
    assert logits.shape == (2, length, general_tok.vocab_size) and attention.shape == (2, 2, 2, length, length)
    assert np.abs(logits - ours.numpy())[real].max() <= 1e-4
    assert np.abs(attention - torch.stack(maps, 1).numpy()).max() <= 1e-5


def test_onnx_file_carries_the_weights_by_name(general_tok, exported):
    model, path = exported
    again = web.load_onnx_model(path)
    assert again.config == model.config
    ours, theirs = model.state_dict(), again.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert web.weights_digest(again) == web.weights_digest(model)
    assert web.weights_digest(small_model(general_tok, seed=1)) != web.weights_digest(model)


def test_export_refuses_what_it_cannot_write(general_tok, tmp_path):
    with pytest.raises(ValueError, match="bidirectional MaskedLM"):
        web.export_onnx(small_model(general_tok, causal=True), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="bidirectional MaskedLM"):
        web.export_onnx(torch.nn.Linear(2, 2), tmp_path / "m.onnx")
    import onnx
    from onnx import TensorProto, helper

    foreign = tmp_path / "foreign.onnx"
    value = {n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy"}
    onnx.save_model(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                                       [value["x"]], [value["y"]])), str(foreign))
    with pytest.raises(ValueError, match="not written by mlm_lessons.web.export_onnx"):
        web.load_onnx_model(foreign)


def test_web_bundle(general_tok, tmp_path):
    model = small_model(general_tok)
    meta = web.write_web_bundle(model, general_tok, tmp_path / "bundle", description="a test", example=SENTENCES[0])
    files = sorted(p.name for p in (tmp_path / "bundle").iterdir())
    assert files == ["meta.json", "model.onnx", "tokenizer.json"]
    assert json.loads((tmp_path / "bundle" / "meta.json").read_text()) == meta
    assert meta["bytes"]["model.onnx"] == (tmp_path / "bundle" / "model.onnx").stat().st_size
    assert meta["max_len"] == 32 and meta["mask_id"] == general_tok.mask_id and meta["special_ids"] == [0, 1, 2, 3, 4]
    assert meta["weights_sha256"] == web.weights_digest(model) and meta["example"] == SENTENCES[0]
    # the tokenizer file is the tokenizers library's own: MLMTokenizer reads it back, piece for piece
    again = mlm.MLMTokenizer.load(tmp_path / "bundle" / "tokenizer.json")
    assert again == general_tok
    with pytest.raises(ValueError, match="vocabulary rows"):
        web.write_web_bundle(MaskedLM(EncoderConfig(vocab_size=100, max_len=8, d_model=8, n_layers=1, n_heads=1, d_ff=8)),
                             general_tok, tmp_path / "other")


def test_web_bundle_refuses_a_tokenizer_the_page_cannot_read(general_tok, tmp_path):
    class Other:
        vocab_size = general_tok.vocab_size

        def to_json(self):
            spec = json.loads(general_tok.to_json())
            spec["model"]["type"] = "BPE"
            return json.dumps(spec)

    with pytest.raises(ValueError, match="WordPiece"):
        web.write_web_bundle(small_model(general_tok), Other(), tmp_path / "b")


# ---------------------------------------------------------------- fill_mask, which the page repeats

def test_fill_mask_all_at_once_is_one_pass_with_specials_at_zero(general_tok):
    model = small_model(general_tok)
    text = SENTENCES[1]
    ids = torch.tensor([general_tok.encode(text)])
    with torch.no_grad():
        probs = model(ids).logits[0].softmax(-1)
    probs[:, sorted(general_tok.special_ids)] = 0
    out = fill_mask(model, general_tok, text, top_k=5)
    positions = (ids[0] == general_tok.mask_id).nonzero().flatten().tolist()
    assert len(out) == len(positions) == 2
    for answer, pos in zip(out, positions):
        top = probs[pos].topk(5)
        assert [t for t, _ in answer] == [general_tok.id_to_token(i) for i in top.indices.tolist()]
        assert [p for _, p in answer] == pytest.approx(top.values.tolist(), abs=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("text", SENTENCES)
def test_fill_mask_one_at_a_time_fills_as_fill_sequentially(general_tok, seed, text):
    model = small_model(general_tok, seed=seed)
    out = fill_mask(model, general_tok, text, one_at_a_time=True)
    filled = fill_sequentially(model, general_tok, text, order="confident")
    ids = general_tok.encode(text)
    positions = [i for i, t in enumerate(ids) if t == general_tok.mask_id]
    assert [general_tok.id_to_token(filled.ids[p]) for p in positions] == [answer[0][0] for answer in out]
    # the surest mask is filled first, so its list is the all-at-once one; one mask: both agree
    at_once = fill_mask(model, general_tok, text)
    assert any(a == b for a, b in zip(at_once, out))
    if len(positions) == 1:
        assert at_once == out


def test_fill_mask_refuses_bad_input(general_tok):
    model = small_model(general_tok)
    with pytest.raises(ValueError, match="must contain \\[MASK\\]"):
        fill_mask(model, general_tok, "no mask here")
    with pytest.raises(ValueError, match="40 pieces long .* at most max_len=32"):
        fill_mask(model, general_tok, "[MASK] " + "word " * 37)
    fill_mask(model, general_tok, "[MASK] " + "word " * 29)  # 32 pieces: as many as the model reads
    with pytest.raises(ValueError, match="top_k"):
        fill_mask(model, general_tok, SENTENCES[0], top_k=general_tok.vocab_size)
    with pytest.raises(ValueError, match="one_at_a_time"):
        fill_mask(model, general_tok, SENTENCES[0], one_at_a_time="yes")


def test_a_missing_onnx_package_is_named_with_its_fix(general_tok, exported, monkeypatch):
    import sys

    model, path = exported
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(ValueError, match="needs the package 'onnxruntime', which is not installed: pip install onnxruntime"):
        web.onnx_logits(path, [[2, 4, 3]])
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ValueError, match="pip install onnx$"):
        web.load_onnx_model(path)
