"""The student edition: the book's notebooks with solutions replaced by stubs (no notebook is executed)."""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import re
from pathlib import Path

import nbformat
import pytest

from mlm_lessons import cli
from mlm_lessons.cli import main
from mlm_lessons.teaching.coursework import stub_source, student_edition

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BOOK_NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
CHECK_ID = re.compile(r'mlm\.check\(\s*"([^"]+)"')


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _solutions(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and "solution" in _tags(c)]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = student_edition(BOOK, out)
    return out, written


def _pairs(edition):
    """(book notebook, student notebook) for every chapter."""
    out, _ = edition
    return [(nbformat.read(p, as_version=4), nbformat.read(out / p.name, as_version=4)) for p in BOOK_NOTEBOOKS]


def test_same_notebooks(edition):
    out, written = edition
    assert BOOK_NOTEBOOKS, "the book has notebooks"
    assert [p.name for p in written] == [p.name for p in BOOK_NOTEBOOKS]
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in BOOK_NOTEBOOKS], "nothing else is copied"
    for p in written:
        nbformat.validate(nbformat.read(p, as_version=4))


def test_the_book_itself_is_unchanged(edition):
    for p in BOOK_NOTEBOOKS:
        nb = json.loads(p.read_text(encoding="utf-8"))
        assert any(c.get("outputs") for c in nb["cells"]), "the book keeps its outputs"


def _solution_lines(source: str) -> list[str]:
    """The lines of a solution's body: what a student must not be given."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and ast.get_docstring(node):
            first = node.body[0]
            docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines = []
    for n, line in enumerate(source.splitlines(), 1):
        s = line.strip()
        if (not s or n in docstrings or s.startswith(("def ", "async def ", "class ", "@", "import ", "from "))
                or "mlm.check(" in s or s == "# NBVAL_CHECK_OUTPUT"):
            continue
        lines.append(s)
    return lines


def test_no_solution_code_in_the_student_edition(edition):
    checked = 0
    for book, student in _pairs(edition):
        # lines the book also shows outside its solutions are not secrets (``else:``, ``return out``)
        elsewhere = "\n".join(c.source for c in book.cells if not {"solution", "attempt"} & set(_tags(c)))
        student_text = "\n".join(c.source for c in student.cells)
        for cell in _solutions(book):
            for line in _solution_lines(cell.source):
                if line not in elsewhere:
                    assert line not in student_text, f"solution code handed out: {line!r}"
                    checked += 1
        assert not [c for c in student.cells if {"solution", "attempt"} & set(_tags(c))]
        remove_cells = "\n".join(c.source for c in student.cells if "remove-cell" in _tags(c))
        for cell in _solutions(book):
            for exercise in CHECK_ID.findall(cell.source):
                assert exercise not in remove_cells, "the hidden asserts about solutions are dropped"
    assert checked > 50


class _Recorder:
    def __init__(self):
        self.calls = []

    def check(self, exercise, answer=None, *args, **kwargs):
        self.calls.append((exercise, answer))


class _AnyName(dict):
    """Names a stub's check call takes from earlier cells (``general_tok``, ``corpora``) exist; builtins stay."""

    def __missing__(self, name):
        if hasattr(builtins, name):
            raise KeyError(name)
        return object()


def test_every_stub_raises_not_implemented_and_keeps_its_check(edition):
    stubs = 0
    for book, student in _pairs(edition):
        by_id = {c.id: c for c in student.cells}
        for cell in _solutions(book):
            stub = by_id[cell.id]
            assert not {"solution", "hide-cell"} & set(_tags(stub))
            exercises = CHECK_ID.findall(cell.source)
            assert exercises and all(f'mlm.check("{e}"' in stub.source for e in exercises)
            assert "NotImplementedError" in stub.source
            tree = ast.parse(cell.source)
            functions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            recorder = _Recorder()
            names = _AnyName(mlm=recorder)
            code = compile(stub.source, f"stub of {cell.id}", "exec")
            if not functions:  # a value to assign: the cell itself raises
                with pytest.raises(NotImplementedError, match=re.escape(exercises[0])):
                    exec(code, {"mlm": recorder}, names)
                stubs += 1
                continue
            exec(code, {"mlm": recorder}, names)
            assert [e for e, _ in recorder.calls] == exercises
            for name in functions:
                fn = names[name]
                params = inspect.signature(fn).parameters.values()
                args = [None for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
                kwargs = {p.name: None for p in params if p.kind is p.KEYWORD_ONLY}
                with pytest.raises(NotImplementedError, match=f"Exercise .*: write {name}"):
                    fn(*args, **kwargs)
                original = next(n for n in tree.body if getattr(n, "name", None) == name)
                assert inspect.signature(fn).parameters.keys() == {a.arg for a in original.args.args} | {
                    a.arg for a in original.args.kwonlyargs}
                stubs += 1
    assert stubs >= 20


def test_outputs_are_cleared(edition):
    for _, student in _pairs(edition):
        for cell in student.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
                assert "execution" not in cell.metadata
        assert "widgets" not in student.metadata


def _notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        if kind == "code":
            cell.execution_count = 1
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
        nb.cells.append(cell)
    return nb


def test_a_synthetic_book(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    nbformat.write(_notebook(("markdown", "# 9. Intro", ()), ("code", "print(42)", ())), book / "09_intro.ipynb")
    solution = (
        "# NBVAL_CHECK_OUTPUT\n"
        "import math\n\n\n"
        "def root(x: float,\n"
        "         digits: int = 3) -> float:\n"
        '    """The square root of ``x``, rounded."""\n'
        "    return round(math.sqrt(x), digits)\n\n\n"
        'print(root(2))\nmlm.check("10-root", root)\n'
    )
    nbformat.write(_notebook(
        ("markdown", "## Exercises", ()),
        ("code", 'def root(x, digits=3):\n    return x\n\n\nmlm.check("10-root", root)', ["attempt"]),
        ("code", solution, ["hide-cell", "solution"]),
        ("code", 'answer = "yes"  # or "no"\nmlm.check("10-yes", answer)', ["attempt"]),
        ("code", '# because ...\nanswer = "yes"\nmlm.check("10-yes", answer)', ["hide-cell", "solution", "keep-me"]),
        ("code", 'assert mlm.check("10-root", root)', ["remove-cell"]),
        ("code", 'assert mlm.check("10-yes", "yes")', ["remove-cell"]),
        ("code", "import mlm_lessons as mlm", ["remove-cell"]),
    ), book / "10_exercises.ipynb")

    written = student_edition(book, tmp_path / "out")
    assert [p.name for p in written] == ["09_intro.ipynb", "10_exercises.ipynb"]
    intro = nbformat.read(written[0], as_version=4)
    assert [c.source for c in intro.cells] == ["# 9. Intro", "print(42)"] and intro.cells[1].outputs == []
    cells = nbformat.read(written[1], as_version=4).cells
    assert [c.source for c in cells[1:]] == [
        "import math\n\n\n"
        "def root(x: float,\n"
        "         digits: int = 3) -> float:\n"
        '    """The square root of ``x``, rounded."""\n'
        '    raise NotImplementedError("Exercise 10-root: write root")\n\n\n'
        'mlm.check("10-root", root)',
        "# Exercise 10-yes: assign answer here, then delete the raise line.\n"
        'raise NotImplementedError("Exercise 10-yes: assign answer")\n'
        'mlm.check("10-yes", answer)',
        "import mlm_lessons as mlm",
    ]
    assert [_tags(c) for c in cells[1:]] == [[], ["keep-me"], ["remove-cell"]]
    assert all(c.outputs == [] and c.execution_count is None for c in cells if c.cell_type == "code")


def test_stub_source_forms():
    # an answer written into the check call itself, a method, a magic line
    assert stub_source('%time x = 1\nmlm.check("11-a", "the answer", k=2)') == (
        "# Exercise 11-a: assign answer here, then delete the raise line.\n"
        'raise NotImplementedError("Exercise 11-a: assign answer")\n'
        'mlm.check("11-a", answer, k=2)'
    )
    stub = stub_source('class Box:\n    """A box."""\n\n    def size(self):\n        return 3\n\n\n'
                       'mlm.check("11-b", Box)')
    assert '"""A box."""' in stub and "return 3" not in stub
    namespace = {"mlm": _Recorder()}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="write Box.size"):
        namespace["Box"]().size()


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="would overwrite the book"):
        student_edition(BOOK, BOOK)
    with pytest.raises(ValueError, match="would overwrite the book"):
        student_edition(BOOK, BOOK / ".." / "book")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no notebooks"):
        student_edition(empty, tmp_path / "out")
    with pytest.raises(ValueError, match="does not exist"):
        student_edition(tmp_path / "missing", tmp_path / "out")
    book = tmp_path / "book"
    book.mkdir()
    nbformat.write(_notebook(("code", "def f(x):\n    return x", ["hide-cell", "solution"])), book / "01_x.ipynb")
    with pytest.raises(ValueError, match=r"01_x\.ipynb, cell 0 .*must call mlm\.check"):
        student_edition(book, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing is written when a notebook cannot be converted"


def test_cli(tmp_path, capsys, monkeypatch):
    out = tmp_path / "handout"
    assert main(["coursework", "student-edition", str(out), "--book", str(BOOK)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-1] == [f"wrote {out / p.name}" for p in BOOK_NOTEBOOKS]
    assert lines[-1].startswith(f"student edition: {len(BOOK_NOTEBOOKS)} notebooks")
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in BOOK_NOTEBOOKS]

    assert main(["coursework", "student-edition", str(tmp_path / "default")]) == 0, "the repository's book/"
    assert len(list((tmp_path / "default").glob("*.ipynb"))) == len(BOOK_NOTEBOOKS)
    capsys.readouterr()

    assert main(["coursework", "student-edition", str(BOOK)]) == 2
    assert "would overwrite the book" in capsys.readouterr().err
    assert main(["coursework", "student-edition", str(out), "--book", str(tmp_path / "nowhere")]) == 2
    assert "--book" in capsys.readouterr().err
    monkeypatch.setattr(cli, "BOOK_DIR", tmp_path / "site-packages" / "book")
    assert main(["coursework", "student-edition", str(out)]) == 2
    assert "--book DIR" in capsys.readouterr().err
