"""The model outside PyTorch: one ONNX file, run by onnxruntime in Python or in a web browser.

:func:`export_onnx` writes a :class:`~mlm_lessons.model.MaskedLM` as one ONNX file through
``torch.onnx`` (its ``torch.export``-based exporter). Inputs ``input_ids`` and ``attention_mask``
(int64, ``[batch, length]``, length up to the model's ``max_len``); outputs ``logits``
(``[batch, length, vocab]``, float32, the head at every position) and ``attention`` (``[batch,
layers, heads, length, length]``, every head's weights). The weights keep their PyTorch names and
the file carries the model's configuration, so :func:`load_onnx_model` rebuilds the same
``MaskedLM`` from it. :func:`onnx_logits` runs the file with ``onnxruntime`` and :func:`compare_onnx`
measures it against the PyTorch model.

:func:`write_web_bundle` writes what a page needs to run the model in the reader's browser with
``onnxruntime-web``: ``model.onnx``, the tokenizer (``tokenizer.json``, the format of
``tokenizers``) and ``meta.json`` (sizes, the limit on length, the weights' digest). The book's
live fill-mask box (:mod:`mlm_lessons.teaching.live`) loads it.

``onnx``, ``onnxscript`` (PyTorch 2.6 and newer) and ``onnxruntime`` are imported only when a function needs them; a missing one
is a ``ValueError`` that names it.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .model import EncoderConfig, MaskedLM, evaluating

__all__ = ["OPSET", "export_onnx", "load_onnx_model", "onnx_logits", "compare_onnx", "write_web_bundle",
           "weights_digest", "WEB_TOKENIZER"]

#: The ONNX operator set written (onnxruntime-web runs it).
OPSET = 18
#: The tokenizer pipeline the page's tokenizer implements: BERT's normaliser and pre-tokenizer and
#: a WordPiece model, as :func:`mlm_lessons.train_tokenizer` makes them.
WEB_TOKENIZER = {"normalizer": "BertNormalizer", "pre_tokenizer": "BertPreTokenizer", "model": "WordPiece"}
_CONFIG_KEY = "mlm_lessons.encoder_config"


class _Exported(nn.Module):
    """The graph written: the encoder with its attention weights, then the head at every position.
    Its parameters are the model's own, under the model's own names."""

    def __init__(self, model: MaskedLM):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden, maps = self.model.encoder(input_ids, attention_mask, return_attention=True)
        return self.model.head(hidden), torch.stack(maps, dim=1)


def _missing(module: str, why: str) -> ValueError:
    return ValueError(f"{why} needs the package {module!r}, which is not installed: pip install {module}")


def _onnx():
    try:
        import onnx
    except ImportError as error:
        raise _missing("onnx", "reading or writing an ONNX file") from error
    return onnx


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise _missing("onnxruntime", "running an ONNX file") from error
    return onnxruntime


def _check_model(model) -> None:
    if not isinstance(model, MaskedLM) or model.config.causal:
        raise ValueError(f"model must be a bidirectional MaskedLM, got {type(model).__name__}"
                         + (" (causal)" if isinstance(model, MaskedLM) else ""))


def export_onnx(model: MaskedLM, path: str | os.PathLike) -> Path:
    """Write ``model`` (in evaluation mode, on the CPU, fp32) as one ONNX file at ``path``.

    With PyTorch 2.6 or newer, ``torch.onnx.export(..., dynamo=True)`` (``torch.export``, then
    ``onnxscript``), the graph not optimised at export, so that every weight keeps its name (onnxruntime
    optimises the graph when it loads it). Older PyTorch has only the TorchScript exporter, which this
    falls back to (opset 17, constants not folded)."""
    _check_model(model)
    onnx = _onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = MaskedLM(model.config)
    cpu.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    cpu.eval()
    example = torch.full((2, 3), 5, dtype=torch.long), torch.ones(2, 3, dtype=torch.long)
    names = dict(input_names=["input_ids", "attention_mask"], output_names=["logits", "attention"])
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed" and the like: nothing this export uses
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporter's own progress, tracer and deprecation notes
            if "optimize" in inspect.signature(torch.onnx.export).parameters:
                try:
                    import onnxscript  # noqa: F401  (torch.onnx's exporter translates the graph with it)
                except ImportError as error:
                    raise _missing("onnxscript", "torch.onnx's exporter") from error
                length = torch.export.Dim("length", min=1, max=model.config.max_len)
                batch = torch.export.Dim("batch", min=1)
                proto = torch.onnx.export(
                    _Exported(cpu), example, opset_version=OPSET, dynamo=True, optimize=False, external_data=False,
                    verbose=False, dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}), **names).model_proto
            else:  # PyTorch before 2.6
                buffer = io.BytesIO()
                axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
                        "logits": {0: "batch", 1: "length"}, "attention": {0: "batch", 3: "length", 4: "length"}}
                torch.onnx.export(_Exported(cpu), example, buffer, opset_version=17, do_constant_folding=False,
                                  dynamic_axes=axes, **names)
                proto = onnx.load_from_string(buffer.getvalue())
    finally:
        quiet.setLevel(level)
    for initializer in proto.graph.initializer:  # "model.encoder.tok_emb.weight" -> "encoder.tok_emb.weight"
        if initializer.name.startswith("model."):
            old, initializer.name = initializer.name, initializer.name[len("model."):]
            for node in proto.graph.node:
                node.input[:] = [initializer.name if i == old else i for i in node.input]
    # The TorchScript exporter keeps one copy of equal tensors (e.g. the LayerNorm weights of an untrained
    # model, all ones): the others are written too, under their own names, so that the file carries every weight
    present = {i.name for i in proto.graph.initializer}
    from onnx import numpy_helper

    for name, value in cpu.state_dict().items():
        if name not in present:
            proto.graph.initializer.append(numpy_helper.from_array(value.numpy(), name))
    entry = proto.metadata_props.add()
    entry.key, entry.value = _CONFIG_KEY, json.dumps(model.config.to_dict(), sort_keys=True)
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(path))
    return path


def load_onnx_model(path: str | os.PathLike) -> MaskedLM:
    """The :class:`MaskedLM` whose weights an :func:`export_onnx` file holds (same names, same values)."""
    onnx = _onnx()
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    if _CONFIG_KEY not in meta:
        raise ValueError(f"{path} was not written by mlm_lessons.web.export_onnx (no {_CONFIG_KEY} in its metadata)")
    model = MaskedLM(EncoderConfig(**json.loads(meta[_CONFIG_KEY])))
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    state = model.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        raise ValueError(f"{path} lacks the weights {missing[:3]}{' …' if len(missing) > 3 else ''}; "
                         f"write it again with mlm_lessons.web.export_onnx")
    model.load_state_dict({k: weights[k] for k in state})
    return model.eval()


def onnx_logits(path: str | os.PathLike, input_ids, attention_mask=None, *, session=None):
    """``(logits, attention)`` of the ONNX file for a batch, run by onnxruntime on the CPU (numpy arrays)."""
    if session is None:
        session = _onnxruntime().InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    mask = torch.ones_like(ids) if attention_mask is None else torch.as_tensor(attention_mask, dtype=torch.long)
    logits, attention = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    return logits, attention


def compare_onnx(model: MaskedLM, tokenizer, path: str | os.PathLike, texts, *, top_k: int = 5) -> dict:
    """The ONNX file against ``model`` on ``texts`` (each alone, unpadded, at most ``max_len`` pieces):
    the largest absolute difference of logits and of attention weights, and the share of positions
    whose ``top_k`` pieces are the same, in the same order."""
    session = _onnxruntime().InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logit_gap = attention_gap = 0.0
    same = positions = 0
    device = next(model.parameters()).device
    with evaluating(model), torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer.encode(text, max_length=model.config.max_len)])
            mask = torch.ones_like(ids)
            hidden, maps = model.encoder(ids.to(device), mask.to(device), return_attention=True)
            theirs, their_maps = onnx_logits(path, ids, mask, session=session)
            ours = model.head(hidden).float().cpu()
            ours_maps = torch.stack(maps, dim=1).float().cpu()
            logit_gap = max(logit_gap, float((ours - torch.from_numpy(theirs)).abs().max()))
            attention_gap = max(attention_gap, float((ours_maps - torch.from_numpy(their_maps)).abs().max()))
            a, b = ours[0].topk(top_k).indices, torch.from_numpy(theirs[0]).topk(top_k).indices
            same += int((a == b).all(-1).sum())
            positions += a.shape[0]
    return {"texts": len(texts), "positions": positions, "max_logit_difference": logit_gap,
            "max_attention_difference": attention_gap, "same_top_k": same / positions if positions else float("nan")}


def weights_digest(model: MaskedLM) -> str:
    """sha256 of the model's weights (names, shapes and fp32 values in name order): the same weights,
    the same digest, on any machine."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(f"{name}:{tuple(value.shape)}".encode())
        h.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _web_tokenizer_check(tokenizer) -> dict:
    spec = json.loads(tokenizer.to_json())
    found = {part: (spec.get(part) or {}).get("type") for part in WEB_TOKENIZER}
    if found != WEB_TOKENIZER:
        raise ValueError(f"the page's tokenizer implements {WEB_TOKENIZER}; this tokenizer has {found}: "
                         f"train it with mlm_lessons.train_tokenizer")
    return spec


def write_web_bundle(model: MaskedLM, tokenizer, folder: str | os.PathLike, *, description: str = "",
                     example: str = "") -> dict:
    """Write ``model.onnx``, ``tokenizer.json`` and ``meta.json`` into ``folder`` for a web page, and
    return the metadata: the model's size and limits, the special ids, the weights' digest and the
    bytes of each file. ``description`` and ``example`` (a sentence with ``[MASK]``) go into it."""
    _check_model(model)
    spec = _web_tokenizer_check(tokenizer)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"the model has {model.config.vocab_size} vocabulary rows, the tokenizer "
                         f"{tokenizer.vocab_size} pieces; pass the tokenizer the model was trained with")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(model, folder / "model.onnx")
    (folder / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    meta = {
        "description": description, "example": example,
        "max_len": model.config.max_len, "vocab_size": model.config.vocab_size,
        "layers": model.config.n_layers, "heads": model.config.n_heads, "parameters": model.num_parameters(),
        "special_ids": sorted(tokenizer.special_ids), "mask_id": tokenizer.mask_id, "unk_id": tokenizer.unk_id,
        "cls_id": tokenizer.cls_id, "sep_id": tokenizer.sep_id,
        "weights_sha256": weights_digest(model), "torch": torch.__version__,
    }
    meta["bytes"] = {name: (folder / name).stat().st_size for name in ("model.onnx", "tokenizer.json")}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    return meta
