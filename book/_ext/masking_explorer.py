"""Sphinx extension: the ``masking-explorer`` directive, chapter 2's widget working in the browser.

At build time the directive trains chapter 2's tokenizer, cuts chapter 2's sentence and the next
validation texts into pieces and embeds them in the page with the vocabulary
(:func:`mlm_lessons.teaching.explorer.book_explorer_data`); ``mlm-explorer.js`` then masks them in the
reader's browser – no kernel, nothing fetched. In MyST::

    ```{masking-explorer}
    :sentences: 256
    ```

Options: ``corpus`` (default ``python-docs``), ``vocab-size`` (8000), ``sentences`` (256, the batch
whose counts are compared with their expectation), ``max-length`` (64), ``seed`` (0).
"""

from __future__ import annotations

import functools

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

from mlm_lessons.teaching import explorer


@functools.lru_cache(maxsize=8)
def _data(corpus: str, vocab_size: int, sentences: int, max_length: int, seed: int) -> dict:
    return explorer.book_explorer_data(
        corpus=corpus, vocab_size=vocab_size, sentences=sentences, max_length=max_length, seed=seed
    )


class MaskingExplorer(SphinxDirective):
    has_content = False
    option_spec = {
        "corpus": directives.unchanged_required,
        "vocab-size": directives.positive_int,
        "sentences": directives.positive_int,
        "max-length": directives.positive_int,
        "seed": directives.nonnegative_int,
    }

    def run(self):
        o = self.options
        data = _data(o.get("corpus", "python-docs"), o.get("vocab-size", 8000), o.get("sentences", 256),
                     o.get("max-length", 64), o.get("seed", 0))
        element_id = f"mlm-explorer-{self.env.new_serialno('mlm-explorer') + 1}"
        # a change to the explorer's Python re-reads the pages that embed it
        self.env.note_dependency(explorer.__file__)
        return [nodes.raw("", explorer.explorer_html(data, element_id=element_id), format="html")]


def _add_assets(app) -> None:
    app.config.html_static_path.append(explorer.asset_dir())


def setup(app):
    app.add_directive("masking-explorer", MaskingExplorer)
    app.connect("builder-inited", _add_assets)
    for asset in explorer.ASSETS:
        if asset.endswith(".js"):
            app.add_js_file(asset, loading_method="defer")
        else:
            app.add_css_file(asset)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
