"""Sphinx extension: the footer's copyright year is the year the book is built.

Reproducible builds set ``SOURCE_DATE_EPOCH``; then that date's year is used instead of today's.
"""

from __future__ import annotations

import os
import time


def build_year(environ=os.environ) -> int:
    epoch = environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return time.gmtime(int(epoch)).tm_year
        except ValueError:
            raise ValueError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {epoch!r}") from None
    return time.localtime().tm_year


def _set_year(app, config) -> None:
    config.copyright = str(build_year())


def setup(app):
    # priority < 500: runs before Sphinx's own handler that rewrites years under SOURCE_DATE_EPOCH
    app.connect("config-inited", _set_year, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
