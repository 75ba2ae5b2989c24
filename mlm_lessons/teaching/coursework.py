"""Coursework: the student edition of the book's notebooks, what an instructor hands out.

The notebooks mark the roles of an exercise's cells with tags:

- ``solution`` (with ``hide-cell``): the reference solution, ending with ``mlm.check("<id>", ...)``;
- ``attempt``: a wrong placeholder answer, kept in the book to show what the checker says to it;
- ``remove-cell``: hidden cells, some of which assert that every solution passes.

:func:`student_edition` writes copies of the notebooks in which every solution is a stub that keeps
the signatures and docstrings of the functions it defines, raises :class:`NotImplementedError`, and
keeps the check call; attempt cells and the hidden cells that use a solution or name its exercise are
dropped, and every output is cleared. Only the standard library is imported here; ``nbformat`` when it
is needed.
"""

from __future__ import annotations

import ast
import copy
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ATTEMPT", "SOLUTION", "stub_source", "student_edition"]

SOLUTION = "solution"
ATTEMPT = "attempt"
_DROPPED_TAGS = ("hide-cell", SOLUTION)
_REMOVE_CELL = "remove-cell"
_MAGIC = re.compile(r"^([ \t]*)[%!]", re.M)


def student_edition(book_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the student edition of every ``*.ipynb`` in ``book_dir`` (sorted) to ``out_dir``.

    Solutions become stubs, attempts and the hidden cells that use a solution are dropped, outputs,
    execution counts and the saved widget state are cleared. Nothing is written unless every notebook
    converts. Returns the paths written, in order.
    """
    import nbformat

    book_dir, out_dir = Path(book_dir), Path(out_dir)
    if not book_dir.is_dir():
        raise ValueError(f"the book directory {str(book_dir)!r} does not exist")
    if out_dir.resolve() == book_dir.resolve():
        raise ValueError(f"the output directory is the book directory {str(book_dir)!r}: that would overwrite "
                         f"the book's notebooks; choose another directory")
    paths = sorted(book_dir.glob("*.ipynb"))
    if not paths:
        raise ValueError(f"no notebooks (*.ipynb) in {str(book_dir)!r}")
    editions = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        editions.append((out_dir / path.name, _student_notebook(nb, path.name)))
    out_dir.mkdir(parents=True, exist_ok=True)
    for target, nb in editions:
        nbformat.write(nb, target)
    return [target for target, _ in editions]


def stub_source(source: str, where: str = "the solution") -> str:
    """The stub that replaces a solution cell's code (``where`` names the cell in error messages)."""
    return _Solution.parse(source, where).stub()


# -- notebooks -------------------------------------------------------------------------------


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _student_notebook(nb, name: str):
    solutions = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and SOLUTION in _tags(cell):
            solutions[i] = _Solution.parse(cell.source, f"{name}, cell {i} ({cell.get('id', 'no id')})")
    names = {n for s in solutions.values() for n in s.defines}
    ids = {e for s in solutions.values() for e in s.exercise_ids}
    cells = []
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if ATTEMPT in tags:
            continue
        if _REMOVE_CELL in tags and _mentions(cell.source, names, ids):
            continue
        if i in solutions:
            cell.source = solutions[i].stub()
            kept = [t for t in tags if t not in _DROPPED_TAGS]
            if kept:
                cell.metadata["tags"] = kept
            else:
                cell.metadata.pop("tags", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)  # the timings of the book's run
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)  # the saved state of the cleared widget outputs
    return nb


def _mentions(source: str, names: set[str], ids: set[str]) -> bool:
    """Whether code uses one of ``names`` or mentions one of the exercise ``ids`` (``mlm.check("01-x", ...)``)."""
    try:
        _, tree = _parse(source)
    except SyntaxError:
        words = set(re.findall(r"[\w-]+", source))
        return bool(words & (names | ids))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in names:
            return True
        if isinstance(node, ast.Constant) and node.value in ids:
            return True
    return False


# -- solutions -> stubs ----------------------------------------------------------------------


def _parse(source: str) -> tuple[str, ast.Module]:
    """Parse a cell's code; IPython magics and shell lines (``%time``, ``!pip``) are commented out."""
    try:
        return source, ast.parse(source)
    except SyntaxError:
        masked = _MAGIC.sub(r"\1#", source)
        return masked, ast.parse(masked)


def _is_check(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "mlm")


def _literal(text: str) -> str:
    return f'"{text}"' if not set(text) & set('"\\\n\r') else repr(text)


@dataclass
class _Solution:
    source: str
    where: str
    tree: ast.Module
    checks: list[ast.stmt] = field(default_factory=list)  # the statements that call mlm.check
    check_calls: list[ast.Call] = field(default_factory=list)
    definitions: list[ast.stmt] = field(default_factory=list)  # imports, functions and classes, in order
    values: list[str] = field(default_factory=list)  # what the solution assigns instead of defining
    answer_args: list[ast.expr] = field(default_factory=list)  # answers written into a check call

    @classmethod
    def parse(cls, source: str, where: str) -> "_Solution":
        try:
            masked, tree = _parse(source)
        except SyntaxError as exc:
            raise ValueError(f"{where}: the solution is not valid Python ({exc.msg}, line {exc.lineno})") from None
        self = cls(masked, where, tree)
        for stmt in tree.body:
            calls = [n for n in ast.walk(stmt) if _is_check(n)]
            if calls:
                self.checks.append(stmt)
                self.check_calls.extend(calls)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.definitions.append(stmt)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    for name in _target_names(target):
                        if name not in self.values:
                            self.values.append(name)
            # anything else (printing, applying the solution) is part of the answer: dropped
        if not self.check_calls:
            raise ValueError(f"{where}: a solution cell must call mlm.check(\"<exercise id>\", ...) "
                             f"so that the student edition can keep the check")
        for call in self.check_calls:
            if len(call.args) >= 2 and not isinstance(call.args[1], ast.Name):
                self.answer_args.append(call.args[1])  # e.g. mlm.check("01-x", "the answer"): the answer goes
        if self.answer_args and "answer" not in self.values:
            self.values.append("answer")
        return self

    # what it defines, what it checks

    @property
    def functions(self) -> list[str]:
        return [d.name for d in self.definitions if not isinstance(d, (ast.Import, ast.ImportFrom))]

    @property
    def defines(self) -> list[str]:
        return self.functions + [v for v in self.values if v.isidentifier()]

    @property
    def exercise_ids(self) -> list[str]:
        return list(dict.fromkeys(self._id(call) for call in self.check_calls))

    def _exercise_of(self, name: str) -> str:
        for call in self.check_calls:
            args = [*call.args[1:], *(k.value for k in call.keywords)]
            if any(isinstance(n, ast.Name) and n.id == name for a in args for n in ast.walk(a)):
                return self._id(call)
        return self.exercise_ids[0]

    def _id(self, call: ast.Call) -> str:
        first = call.args[0] if call.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
        return ast.unparse(first) if first is not None else "?"

    # the stub

    def stub(self) -> str:
        blocks = []  # (kind, text): "import", "def" or "value"
        for node in self.definitions:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                blocks.append(("import", ast.get_source_segment(self.source, node)))
            elif isinstance(node, ast.ClassDef):
                blocks.append(("def", self._stub_class(node)))
            else:
                blocks.append(("def", self._stub_function(node, node.name, self._exercise_of(node.name))))
        if self.values:
            ex = self._exercise_of(self.values[0])
            names = ", ".join(self.values)
            message = _literal(f"Exercise {ex}: assign {names}")
            blocks.append(("value", f"# Exercise {ex}: assign {names} here, then delete the raise line.\n"
                                    + f"raise NotImplementedError({message})"))
        blocks.append(("check", "\n".join(self._check_text(stmt) for stmt in self.checks)))
        text = blocks[0][1]
        for (before, _), (kind, block) in zip(blocks, blocks[1:]):
            text += ("\n\n\n" if "def" in (before, kind) else "\n") + block
        return text

    def _offset(self, lineno: int, col: int) -> int:
        """The character offset in ``self.source`` of an AST position (``col`` counts UTF-8 bytes)."""
        lines = self.source.splitlines(keepends=True)
        return sum(len(line) for line in lines[: lineno - 1]) + len(lines[lineno - 1].encode()[:col].decode())

    def _check_text(self, stmt: ast.stmt) -> str:
        """The statement's source, with answers written into a check call replaced by ``answer``."""
        start = self._offset(stmt.lineno, stmt.col_offset)
        text = self.source[start: self._offset(stmt.end_lineno, stmt.end_col_offset)]
        inside = [a for a in self.answer_args if any(a is n for n in ast.walk(stmt))]
        for arg in sorted(inside, key=lambda a: (a.lineno, a.col_offset), reverse=True):
            a = self._offset(arg.lineno, arg.col_offset) - start
            b = self._offset(arg.end_lineno, arg.end_col_offset) - start
            text = text[:a] + "answer" + text[b:]
        return text

    def _header(self, node) -> str:
        """The original text of a def or class statement up to its colon, decorators included."""
        lines = self.source.splitlines(keepends=True)
        start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        decorators = "".join(lines[start - 1: node.lineno - 1])
        indent = lines[node.lineno - 1][: len(lines[node.lineno - 1].encode()[: node.col_offset].decode())]
        # from the keyword to where the body starts; the header ends at the first colon outside brackets
        body = node.body[0]
        segment = self.source[self._offset(node.lineno, node.col_offset): self._offset(body.lineno, body.col_offset)]
        depth, end = 0, None
        try:
            for tok in tokenize.generate_tokens(io.StringIO(segment).readline):
                if tok.type == tokenize.OP:
                    if tok.string in ("(", "[", "{"):
                        depth += 1
                    elif tok.string in (")", "]", "}"):
                        depth -= 1
                    elif tok.string == ":" and depth == 0:
                        end = tok.end
                        break
        except (tokenize.TokenError, SyntaxError):
            end = None
        if end is None:  # not expected for code that parsed: fall back to a normalised header
            bare = copy.copy(node)
            bare.body, bare.decorator_list = [ast.Pass()], []
            return decorators + indent + ast.unparse(bare).splitlines()[0]
        header_lines = segment.splitlines(keepends=True)[: end[0]]
        header_lines[-1] = header_lines[-1][: end[1]]
        return decorators + indent + "".join(header_lines)

    def _docstring(self, node, indent: str) -> str | None:
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            return indent + ast.get_source_segment(self.source, first)
        return None

    def _body_indent(self, node) -> str:
        first = node.body[0]
        return " " * (first.col_offset if first.lineno > node.lineno else node.col_offset + 4)

    def _stub_function(self, node, qualname: str, exercise: str) -> str:
        indent = self._body_indent(node)
        lines = [self._header(node)]
        doc = self._docstring(node, indent)
        if doc:
            lines.append(doc)
        lines.append(f"{indent}raise NotImplementedError({_literal(f'Exercise {exercise}: write {qualname}')})")
        return "\n".join(lines)

    def _stub_class(self, node: ast.ClassDef) -> str:
        exercise = self._exercise_of(node.name)
        indent = self._body_indent(node)
        parts = [self._header(node)]
        doc = self._docstring(node, indent)
        if doc:
            parts.append(doc)
        methods = [m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for m in methods:
            parts.append("\n" + self._stub_function(m, f"{node.name}.{m.name}", exercise))
        if not methods:
            parts.append(f"{indent}def __init__(self, *args, **kwargs):\n{indent}    raise NotImplementedError("
                         f"{_literal(f'Exercise {exercise}: write {node.name}')})")
        return "\n".join(parts)


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for t in target.elts for n in _target_names(t)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return [ast.unparse(target)]  # an attribute or item: say what to assign
