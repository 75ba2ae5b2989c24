"""Chapter 5's model as ONNX (what the online book's live box runs) against the PyTorch model on the
probe sentences of data/fill_mask_probes.tsv: the same logits to 1e-4 and the same five answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mlm_lessons import web
from mlm_lessons.model import fill_mask
from mlm_lessons.teaching.live import book_model, read_probes

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_chapter5_model_as_onnx_answers_the_probes_as_pytorch(tmp_path):
    model, tok, _ = book_model()  # the run cache (chapter 5 and the book's build make the same run)
    path = web.export_onnx(model, tmp_path / "model.onnx")
    probes = [row["sentence"] for row in read_probes(ROOT / "data" / "fill_mask_probes.tsv")]
    check = web.compare_onnx(model, tok, path, probes)
    assert check["max_logit_difference"] <= 1e-4 and check["same_top_k"] == 1.0, check
    specials = sorted(tok.special_ids)
    for sentence in probes:
        ids = tok.encode(sentence)
        logits, _ = web.onnx_logits(path, [ids])
        probs = torch.from_numpy(logits[0, ids.index(tok.mask_id)]).softmax(-1)
        probs[specials] = 0
        top = probs.topk(5)
        ours = fill_mask(model, tok, sentence)[0]
        assert [tok.id_to_token(i) for i in top.indices.tolist()] == [t for t, _ in ours], sentence
        assert top.values.tolist() == pytest.approx([p for _, p in ours], abs=1e-6)
