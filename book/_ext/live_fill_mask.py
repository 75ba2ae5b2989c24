"""Sphinx extension: the ``live-fill-mask`` directive, chapter 5's model answering in the reader's browser.

At build time the extension gets chapter 5's model (:func:`mlm_lessons.teaching.live.book_model`: the
run cache, or a few minutes of training the first time) and writes it for the browser into
``_static/live-fill-mask`` (:func:`mlm_lessons.web.write_web_bundle`: the ONNX model, its tokenizer,
its metadata). A page with the directive loads ``live-fill-mask.js`` (a few kB); that script loads
onnxruntime-web (``_static/third_party/onnxruntime-web``, from ``.ci/vendor-js``) and the model only
when the reader asks the first question. Pages without the directive load none of it. In MyST::

    ```{live-fill-mask}
    :sentence: The result is a new tensor with the same [MASK] as the input.
    ```

Without ``sentence`` the box starts with the first probe of ``data/fill_mask_probes.tsv``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from mlm_lessons import web
from mlm_lessons.teaching import live

ROOT = Path(__file__).resolve().parents[2]
PROBES = ROOT / "data" / "fill_mask_probes.tsv"
ORT = ROOT / "book" / "_static" / "third_party" / "onnxruntime-web"
ORT_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")  # what the page fetches of the runtime
BUNDLE = "live-fill-mask"
logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _model():
    logger.info("live-fill-mask: chapter 5's model (from the run cache; trained first if missing, a few minutes)")
    return live.book_model()


@functools.lru_cache(maxsize=4)
def _bundle(outdir: str) -> dict:
    """Write the bundle into ``outdir``'s ``_static`` (once a build) and return its metadata."""
    model, tok, result = _model()
    final = result.evaluations()[-1]
    description = (f"Chapter 5's model: {model.num_parameters() / 1e6:.1f} M parameters, "
                   f"{final['step']:,} steps on the Python documentation.")
    return web.write_web_bundle(model, tok, Path(outdir) / "_static" / BUNDLE, description=description,
                                example=live.read_probes(PROBES)[0]["sentence"])


def download_bytes(meta: dict) -> int:
    """What the first answer fetches: the runtime's module and WebAssembly, the model and its tokenizer."""
    return sum((ORT / name).stat().st_size for name in ORT_FILES) + sum(meta["bytes"].values())


class LiveFillMask(SphinxDirective):
    has_content = False
    option_spec = {"sentence": directives.unchanged_required}

    def run(self):
        if self.env.docname in getattr(self.env, "mlm_live_pages", set()):
            raise self.error("one live-fill-mask box per page (the box has a fixed id)")
        try:
            meta = _bundle(self.env.app.outdir)
        except ValueError as error:  # e.g. a PyTorch too old for torch.onnx's exporter: the page goes on without the box
            logger.warning(f"live-fill-mask: the box is left out of {self.env.docname}: {error}", location=self.get_location())
            return [nodes.paragraph(text=f"(The live fill-mask box was left out of this build: {error})")]
        sentence = self.options.get("sentence", meta["example"])
        self.env.mlm_live_pages = getattr(self.env, "mlm_live_pages", set()) | {self.env.docname}
        self.env.note_dependency(live.__file__)
        self.env.note_dependency(str(PROBES))
        text = live.live_html(sentence, description=meta["description"],
                              download=f"{download_bytes(meta) / 1e6:.0f} MB")
        return [nodes.raw("", text, format="html")]


def _purge(app, env, docname) -> None:
    getattr(env, "mlm_live_pages", set()).discard(docname)


def _merge(app, env, docnames, other) -> None:
    env.mlm_live_pages = getattr(env, "mlm_live_pages", set()) | getattr(other, "mlm_live_pages", set())


def _page_assets(app, pagename, templatename, context, doctree) -> None:
    if pagename in getattr(app.env, "mlm_live_pages", set()):  # only the pages with the box
        app.add_js_file(live.ASSETS[0], loading_method="defer")
        app.add_css_file(live.ASSETS[1])


def _write_bundle(app, exception) -> None:
    # also when no page was read again this build (the pages' HTML still names the bundle)
    if exception is None and app.builder.format == "html" and getattr(app.env, "mlm_live_pages", None):
        try:
            _bundle(app.outdir)
        except ValueError as error:
            logger.warning(f"live-fill-mask: the box's model was not written: {error}")


def _add_assets(app) -> None:
    app.config.html_static_path.append(live.asset_dir())


def setup(app):
    app.add_directive("live-fill-mask", LiveFillMask)
    app.connect("builder-inited", _add_assets)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("html-page-context", _page_assets)
    app.connect("build-finished", _write_bundle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
