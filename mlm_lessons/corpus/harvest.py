"""Collect docstrings from installed packages, deterministically.

The walk imports every public module of a package (sorted, recursively), records where each
documented object was found, and then gives every object one canonical place – independent of the
order in which modules were imported and of Python's hash seed, so that two builds in two processes
produce the same documents byte for byte.

Run in a fresh interpreter (``load_corpus`` does this for you): importing hundreds of modules
changes the state of the process that does it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import pkgutil
import re
import sys
import warnings
from dataclasses import dataclass

__all__ = ["RawDoc", "harvest_package", "harvest_stdlib", "harvest_pydoc_topics", "SOURCES"]


@dataclass(frozen=True)
class RawDoc:
    """One docstring before cleaning, with where it came from."""

    source: str  # the corpus it belongs to, e.g. "pytorch-docs"
    module: str  # the public module it was found in, e.g. "torch.nn.modules.linear"
    name: str  # the object within the module, e.g. "Linear.forward"; "" for the module itself
    kind: str  # "module", "class", "function", "method", "property" or "topic"
    raw: str


# Modules never imported: side effects on import (a browser, a printed poem), test suites, shims
# whose content depends on other installed packages, and parts that need optional dependencies.
_SKIP_ALWAYS = {"test", "tests", "testing._internal", "conftest", "__main__", "setup"}
SOURCES = {
    "python-docs": {
        "skip": {
            "antigravity", "this", "idlelib", "turtledemo", "lib2to3", "distutils", "encodings",
            "pydoc_data", "ensurepip._bundled", "xxsubtype", "venv.scripts", "tkinter.tix",
            "ctypes.macholib", "sqlite3.test", "unittest.test",
        },
    },
    "pytorch-docs": {
        "root": "torch",
        "skip": {
            "torch.utils.tensorboard", "torch.onnx", "torch.contrib", "torch.utils.hipify",
            "torch.utils.bottleneck", "torch.version", "torch.torch_version",
        },
    },
    "numpy-docs": {
        "root": "numpy",
        "skip": {
            "numpy.f2py", "numpy.distutils", "numpy.core", "numpy.matlib", "numpy.typing.mypy_plugin",
            "numpy.version",
        },
    },
}


def _quiet_import(name: str):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


def _skipped(name: str, skip: set[str]) -> bool:
    parts = name.split(".")
    if any(p.startswith("_") for p in parts):
        return True
    if any(p in _SKIP_ALWAYS for p in parts) or "testing._internal" in name:
        return True
    return any(name == s or name.startswith(s + ".") for s in skip)


def _walk_modules(roots: list[str], skip: set[str]) -> tuple[list, list[str]]:
    """Import ``roots`` and their public submodules; return ``(modules, names that failed)``."""
    modules, failed = [], []
    seen = set()

    def visit(name: str) -> None:
        if name in seen or _skipped(name, skip):
            return
        seen.add(name)
        try:
            mod = _quiet_import(name)
        except BaseException:  # noqa: BLE001 - platform-specific modules raise all sorts
            failed.append(name)
            return
        modules.append((name, mod))
        path = getattr(mod, "__path__", None)
        if path:
            for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
                visit(f"{name}.{info.name}")

    for root in sorted(roots):
        visit(root)
    return modules, failed


def _own_doc(obj) -> str | None:
    """The object's own docstring (not the one of its type), or None."""
    try:
        doc = obj.__doc__
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(doc, str) or not doc.strip():
        return None
    if not inspect.isclass(obj) and doc == getattr(type(obj), "__doc__", None):
        return None
    return doc


def _home(obj) -> str:
    mod = getattr(obj, "__module__", None)
    if not isinstance(mod, str):
        mod = getattr(type(obj), "__module__", None)
    return mod if isinstance(mod, str) else ""


def _documentable(obj) -> bool:
    if inspect.ismodule(obj):
        return False
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return True
    # callables with their own docstring: numpy ufuncs, torch op packets
    return callable(obj) and _own_doc(obj) is not None


def _canonical(obj, places: list[tuple[str, str]]) -> tuple[str, str]:
    """One place for an object found under several names, whatever order they were found in.

    Prefer the module the object says it is defined in; else the deepest walked module that
    contains that home; else the shallowest one. Within a module prefer the object's own name.
    """
    home = _home(obj)
    own_name = getattr(obj, "__name__", None)

    def pick(cands):
        named = [c for c in cands if c[1] == own_name]
        return min(named or cands)

    exact = [p for p in places if p[0] == home]
    if exact:
        return pick(exact)
    ancestors = [p for p in places if home.startswith(p[0] + ".")]
    if ancestors:
        depth = max(len(p[0].split(".")) for p in ancestors)
        return pick([p for p in ancestors if len(p[0].split(".")) == depth])
    depth = min(len(p[0].split(".")) for p in places)
    return pick([p for p in places if len(p[0].split(".")) == depth])


def _member_docs(cls, module: str, clsname: str, source: str) -> list[RawDoc]:
    docs = []
    try:
        members = sorted(vars(cls).items())
    except TypeError:
        return docs
    for attr, member in members:
        if attr.startswith("_"):
            continue
        kind = "method"
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        elif isinstance(member, property):
            kind = "property"
        elif not (inspect.isroutine(member) or inspect.isdatadescriptor(member)):
            continue
        doc = _own_doc(member) if kind == "method" else member.__doc__
        if isinstance(doc, str) and doc.strip():
            docs.append(RawDoc(source, module, f"{clsname}.{attr}", kind, doc))
    return docs


def _harvest_modules(source: str, modules: list, belongs) -> list[RawDoc]:
    docs: list[RawDoc] = []
    places: dict[int, tuple[object, list[tuple[str, str]]]] = {}
    for modname, mod in modules:
        doc = _own_doc(mod)
        if doc:
            docs.append(RawDoc(source, modname, "", "module", doc))
        for attr, obj in sorted(vars(mod).items()):
            if attr.startswith("_") or not _documentable(obj) or not belongs(_home(obj)):
                continue
            places.setdefault(id(obj), (obj, []))[1].append((modname, attr))
    located = sorted((_canonical(obj, where), obj) for obj, where in places.values())
    for (modname, attr), obj in located:
        doc = _own_doc(obj)
        if inspect.isclass(obj):
            if doc:
                docs.append(RawDoc(source, modname, attr, "class", doc))
            docs.extend(_member_docs(obj, modname, attr, source))
        elif doc:
            docs.append(RawDoc(source, modname, attr, "function", doc))
    return docs


def harvest_package(source: str) -> tuple[list[RawDoc], dict]:
    """Docstrings of an installed package named in :data:`SOURCES` (``pytorch-docs``, ``numpy-docs``)."""
    spec = SOURCES[source]
    root = spec["root"]
    modules, failed = _walk_modules([root], spec["skip"])
    docs = _harvest_modules(source, modules, lambda home: home == root or home.startswith(root + "."))
    return docs, {"modules": len(modules), "failed_imports": failed}


def harvest_stdlib() -> tuple[list[RawDoc], dict]:
    """Docstrings of the importable standard library modules, plus the language reference topics.

    Needs an interpreter where no large third-party package has been imported: PyTorch, for one,
    replaces ``inspect.getfile`` when it loads, which would change the corpus.
    """
    loaded = [m for m in ("torch", "numpy", "IPython", "tokenizers", "transformers") if m in sys.modules]
    if loaded:
        raise RuntimeError(
            f"harvest_stdlib must run in a fresh interpreter, but {', '.join(loaded)} is already imported "
            f"(it may patch the standard library); use load_corpus('python-docs'), which builds in a subprocess"
        )
    names = sorted(n for n in sys.stdlib_module_names if not n.startswith("_"))
    modules, failed = _walk_modules(names, SOURCES["python-docs"]["skip"])
    stdlib_tops = set(sys.stdlib_module_names)
    docs = _harvest_modules("python-docs", modules, lambda home: home.split(".")[0] in stdlib_tops)
    topics = harvest_pydoc_topics()
    return topics + docs, {"modules": len(modules), "failed_imports": failed, "topic_sections": len(topics)}


_HEADING_RULE = re.compile(r"^([*=\-~^])\1{2,}$")


def harvest_pydoc_topics() -> list[RawDoc]:
    """The language reference as plain text (``pydoc_data.topics``), one document per section."""
    from pydoc_data.topics import topics  # a large data module, read only by this harvest (in the build process)

    docs = []
    for key in sorted(topics):
        lines = topics[key].splitlines()
        sections: list[tuple[str, list[str]]] = []
        title, body = key, []
        i = 0
        while i < len(lines):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if lines[i].strip() and _HEADING_RULE.match(nxt.strip()) and len(nxt.strip()) >= len(lines[i].strip()) - 2:
                if body:
                    sections.append((title, body))
                title, body = lines[i].strip(), []
                i += 2
                continue
            body.append(lines[i])
            i += 1
        if body:
            sections.append((title, body))
        for title, body in sections:
            docs.append(RawDoc("python-docs", "pydoc_data.topics", f"{key}: {title}", "topic", "\n".join(body)))
    return docs
