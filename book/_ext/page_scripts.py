"""Sphinx extension: every script once per page.

sphinx-thebe (which Jupyter Book always loads) registers its inline configuration script twice
with this Sphinx, and the second copy fails in the browser ("Identifier 'THEBE_JS_URL' has
already been declared"). Identical script entries are dropped here, keeping the first.
"""

from __future__ import annotations


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", None) or {}
    filename = getattr(script, "filename", script) or ""  # an inline script: None or "" (both occur)
    return (str(filename), tuple(sorted((str(k), str(v)) for k, v in attributes.items())))


def unique_scripts(scripts: list) -> list:
    """``scripts`` without repeats (same file or body, same attributes), in their first order."""
    seen, out = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            out.append(script)
    return out


def _dedupe(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        scripts[:] = unique_scripts(scripts)  # in place: the builder's own list


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)  # after the handlers that add scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}

