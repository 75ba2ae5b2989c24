"""The package's shape: the MLM chain does not reach into the teaching layer, the settings load without
PyTorch, and no function grows past a screenful."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mlm_lessons

PACKAGE = Path(mlm_lessons.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))
#: The two modules outside teaching/ that may import it: the lazy public names, and the command line.
MAY_IMPORT_TEACHING = {"__init__.py", "cli.py"}
MAX_FUNCTION_LINES = 80


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _imported_modules(path: Path) -> set[str]:
    """The absolute names of the modules ``path`` imports (relative imports resolved; for ``from X
    import a`` both ``X`` and ``X.a``, since ``a`` may be a submodule)."""
    package = ["mlm_lessons", *path.relative_to(PACKAGE).parent.parts]  # what a relative import starts from
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_module_list_is_the_package():
    assert {"__init__.py", "cli.py", "tokenizer.py", "teaching/__init__.py", "corpus/build.py"} <= {_name(p) for p in MODULES}


def test_resolving_relative_imports():
    assert "mlm_lessons.teaching.display" in _imported_modules(PACKAGE / "cli.py")
    assert "mlm_lessons.corpus.cleaning" in _imported_modules(PACKAGE / "corpus" / "build.py")
    assert "mlm_lessons.corpus.build" in _imported_modules(PACKAGE / "corpus" / "__init__.py")
    assert "mlm_lessons.masking" in _imported_modules(PACKAGE / "teaching" / "widgets.py")
    assert "mlm_lessons.corpus.build" in _imported_modules(PACKAGE / "teaching" / "exercises" / "ch01.py")  # in a function


def test_only_init_and_cli_import_the_teaching_layer():
    offenders = {}
    for path in MODULES:
        name = _name(path)
        if name.startswith("teaching/") or name in MAY_IMPORT_TEACHING:
            continue
        teaching = sorted(m for m in _imported_modules(path)
                          if m == "mlm_lessons.teaching" or m.startswith("mlm_lessons.teaching."))
        if teaching:
            offenders[name] = teaching
    assert not offenders, f"the MLM chain imports the teaching layer: {offenders}"


def test_the_settings_import_without_torch():
    program = "import mlm_lessons.settings, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def _long_functions() -> list[str]:
    found = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{_name(path)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_longer_than_80_lines():
    long = _long_functions()
    assert not long, f"functions longer than {MAX_FUNCTION_LINES} lines (split them): {long}"
