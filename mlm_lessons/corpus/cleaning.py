"""Turn reStructuredText docstrings into readable prose, remembering which words were code.

Docstrings are written for Sphinx, not for people reading plain text: roles such as
``:func:`torch.add```, directives such as ``.. math::``, doctest sessions, literal blocks, tables
and the call signature that C functions carry on their first line. :func:`clean_docstring` removes
the markup and keeps the words. Whatever the markup marked as *code* (double backquotes, single
backquotes and the Python roles ``:func:``, ``:class:``, ``:attr:``, ...) is reported as character
spans of the cleaned text, because the token-labeling task of the fine-tuning chapter learns to
find exactly those spans once the markup is gone.

The rules are line based and deliberately simple; every one of them is exercised by
``tests/test_cleaning.py``.
"""

from __future__ import annotations

import inspect
import re

__all__ = ["clean_docstring", "clean_plain_text", "clean_reference_text", "looks_like_prose", "CODE_ROLES"]

#: Roles whose content is a Python object: their text is kept and marked as code. Any other role
#: (``:ref:``, ``:term:``, ``:doc:``, ...) keeps its text as ordinary words.
CODE_ROLES = frozenset(
    {"func", "meth", "class", "attr", "mod", "obj", "data", "exc", "const", "member", "type"}
)
# Directives whose body is prose worth keeping (a note is still English).
_PROSE_DIRECTIVES = frozenset(
    {
        "note", "warning", "seealso", "tip", "hint", "important", "attention", "caution",
        "danger", "admonition", "deprecated", "versionadded", "versionchanged", "versionremoved",
        "topic", "rubric",
    }
)
# Section titles of numpydoc and Google style: useful to a renderer, noise to a language model.
_SECTION_TITLES = frozenset(
    t.lower()
    for t in (
        "Parameters", "Params", "Args", "Arguments", "Keyword Args", "Keyword Arguments",
        "Kwargs", "Returns", "Return", "Yields", "Yield", "Raises", "Raise", "Warns", "Warnings",
        "See Also", "Notes", "Note", "References", "Examples", "Example", "Attributes",
        "Methods", "Shape", "Shapes", "Other Parameters", "Receives", "Inputs", "Outputs",
        "Example usage", "Usage", "Variables", "Todo", "Footnotes",
    )
)

_ADDRESS = re.compile(r"\s+at 0x[0-9a-fA-F]+")
_UNDERLINE = re.compile(r"""^\s*([=\-~^*+#"'`:.])\1{2,}\s*$""")
_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::(.*)$")
_EXPLICIT_MARKUP = re.compile(r"^(\s*)\.\.(\s|$)")  # comments, targets, footnotes, citations
_FIELD = re.compile(r"^(\s*):(param|parameter|arg|argument|key|keyword|type|vartype|rtype|returns?|raises?|except|exception|var|ivar|cvar|yields?)(\s+[^:]+)?:\s*(.*)$")
_TABLE_LINE = re.compile(r"^\s*(\+[-=+]+\+|\|.*\||=+(\s+=+)+)\s*$")
_BULLET = re.compile(r"^(?:[-*+•]|\d+[.)]|\(\d+\)|#\.)\s+")
# An entry of a parameter list: ``name : type``, ``name (type): text`` or ``name: text``.
_ENTRY = re.compile(r"^(?:Raises\s+|Warns\s+)?\*{0,2}[A-Za-z_][\w.]*(?:,\s*\*{0,2}[A-Za-z_][\w.]*)*(?:\s*\([^)]*\))?\s*:(?:\s|$)")
_NUMPY_ENTRY = re.compile(r"^(?:Raises\s+|Warns\s+)?\*{0,2}[A-Za-z_][\w.]*(?:,\s*\*{0,2}[A-Za-z_][\w.]*)*\s+:(?:\s+\S.*)?$")
_SIGNATURE_START = re.compile(r"^\s*[A-Za-z_][\w.]*\s*\(")

# Inline markup, tried left to right at each position.
_INLINE = re.compile(
    r"""
      (?P<role>:(?:py:|std:|c:|np:)?(?P<rolename>[\w-]+):`(?P<rolebody>[^`]+)`)
    | (?P<literal>``(?P<litbody>[^`]+?)``)
    | (?P<link>`(?P<linktext>[^`<]+?)\s*<[^`>]+>`__?)
    | (?P<reflink>`(?P<reftext>[^`]+)`__?(?!\w))
    | (?P<interp>`(?P<interpbody>[^`]+)`)
    | (?P<strong>\*\*(?P<strongbody>[^*\n]+?)\*\*)
    | (?P<emph>(?<![\w*\\])\*(?P<emphbody>[^\s*](?:[^*\n]*?[^\s*\\])?)\*(?![\w*]))
    | (?P<cite>\s?\[(?:\d+|\#\w*|[A-Za-z][\w-]*\d[\w-]*)\]_)
    | (?P<url>https?://[^\s>)\]]+)
    """,
    re.VERBOSE,
)

# Markup whose content is kept as is: group name -> (content group, is it code?)
_PLAIN_MARKUP = {
    "literal": ("litbody", True),
    "interp": ("interpbody", True),
    "link": ("linktext", False),
    "reflink": ("reftext", False),
    "strong": ("strongbody", False),
    "emph": ("emphbody", False),
}

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
    "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ",
    "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω", "times": "×", "cdot": "·", "leq": "≤", "le": "≤",
    "geq": "≥", "ge": "≥", "neq": "≠", "ne": "≠", "infty": "∞", "sum": "Σ", "prod": "Π",
    "sqrt": "√", "approx": "≈", "in": "∈", "ldots": "…", "cdots": "…", "dots": "…",
    "partial": "∂", "nabla": "∇", "leftarrow": "←", "rightarrow": "→", "to": "→", "pm": "±",
}


def _simplify_math(tex: str) -> str:
    """A LaTeX fragment as plain text: ``\\text{out}_i = \\alpha x`` becomes ``out_i = α x``."""
    if "{{" in tex:  # a docstring built with str.format doubles every brace
        tex = tex.replace("{{", "{").replace("}}", "}")
    for _ in range(3):  # unwrap nested \text{\mathbf{x}}
        tex = re.sub(r"\\(?:text|mathrm|mathbf|mathit|mathcal|mathbb|operatorname|textbf|textit|texttt|boldsymbol|bm)\s*\{([^{}]*)\}", r"\1", tex)
    tex = re.sub(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", tex)
    tex = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)\b\s*\\?", "", tex)
    tex = re.sub(r"\\([A-Za-z]+)", lambda m: _GREEK.get(m.group(1), m.group(1)), tex)
    tex = re.sub(r"\\[,;:! ]", " ", tex)
    tex = tex.replace("\\_", "_").replace("\\{", "{").replace("\\}", "}").replace("\\\\", " ")
    tex = re.sub(r"(?<![\w)])\{([^{}]*)\}", r"\1", tex)
    return re.sub(r"\s+", " ", tex).strip()


def _strip_signature(lines: list[str]) -> list[str]:
    """Drop the call signatures C functions put on their first line(s), e.g. ``add(input, other) -> Tensor``."""
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    while i < len(lines) and _SIGNATURE_START.match(lines[i]):
        depth, j = 0, i
        while j < len(lines):
            depth += lines[j].count("(") + lines[j].count("[") - lines[j].count(")") - lines[j].count("]")
            if depth <= 0:
                break
            j += 1
        if j >= len(lines) or depth > 0:
            return lines  # unbalanced: not a signature after all
        rest = lines[j].rsplit(")", 1)[-1].strip()
        if rest and not re.fullmatch(r"(->.*|:|\s*)", rest):
            return lines  # text after the closing parenthesis: a sentence that starts with a call
        i = j + 1
        while i < len(lines) and not lines[i].strip():
            i += 1
    return lines[i:]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], start: int, base: int) -> int:
    """Index after the block of lines indented deeper than ``base`` (blank lines included) from ``start``."""
    j = start
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
        j += 1
    while j > start and not lines[j - 1].strip():
        j -= 1
    return j


def _remove_blocks(lines: list[str]) -> list[str]:
    """Remove directives, literal blocks, doctest sessions, tables and footnotes; keep admonition bodies."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped in ("-[ Footnotes ]-", "Footnotes", "References") and (
            i + 1 >= len(lines) or not lines[i + 1].strip() or _UNDERLINE.match(lines[i + 1])
        ):
            break  # everything below is citations
        m = _DIRECTIVE.match(line)
        if m:
            base, name, arg = len(m.group(1)), m.group(2).split(":")[-1].lower(), m.group(3).strip()
            end = _block_end(lines, i + 1, base)
            if name in _PROSE_DIRECTIVES:
                body = [ln for ln in lines[i + 1 : end] if not re.match(r"^\s*:[\w-]+:", ln)]
                if name in ("deprecated", "versionadded", "versionchanged", "versionremoved"):
                    body = body if any(b.strip() for b in body) else []
                elif name in ("admonition", "topic", "rubric") and arg:
                    body = [" " * (base + 1) + arg, ""] + body
                out.append("")
                out.extend(_remove_blocks(_dedent(body, base)))
                out.append("")
            else:
                _drop_dangling_intro(out)
            i = end
            continue
        if _EXPLICIT_MARKUP.match(line):
            i = _block_end(lines, i + 1, _indent(line))
            continue
        if stripped.startswith(">>>"):
            while i < len(lines) and lines[i].strip():
                i += 1
            _drop_dangling_intro(out)
            continue
        if _TABLE_LINE.match(line):
            i += 1
            continue
        if stripped.endswith("::"):
            # A literal block follows: keep the sentence, drop the block.
            text = stripped[:-2].rstrip()
            if text:
                out.append(line[: _indent(line)] + text + ":")
            end = _block_end(lines, i + 1, _indent(line))
            i = end
            _drop_dangling_intro(out)
            continue
        out.append(line)
        i += 1
    return out


def _drop_dangling_intro(out: list[str]) -> None:
    """After removing an example, drop a lone ``Example:`` that introduced it."""
    j = len(out) - 1
    while j >= 0 and not out[j].strip():
        j -= 1
    if j >= 0 and out[j].strip().endswith(":") and len(out[j].split()) <= 3 and (j == 0 or not out[j - 1].strip()):
        del out[j:]


def _dedent(lines: list[str], base: int) -> list[str]:
    indents = [_indent(ln) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return [" " * base + ln[cut:] if ln.strip() else "" for ln in lines]


def _paragraphs(lines: list[str]) -> list[list[str]]:
    paras: list[list[str]] = []
    cur: list[str] = []
    for line in lines:
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def _join_lines(lines: list[str]) -> str:
    """Unwrap a hard-wrapped paragraph; list items and parameter entries keep their own line.

    A numpydoc entry header (``x : array_like``) stays alone on its line, above its description.
    """
    logical: list[str] = []
    closed = False  # the previous line was a numpydoc entry header
    in_list = False  # the current logical line is a list item or a parameter entry
    prev = ""
    for line in lines:
        s = line.strip()
        # "name: text" starts an entry only in a list, or after a finished sentence: a wrapped
        # sentence whose next line happens to begin with "word:" is not a parameter list.
        entry = bool(_ENTRY.match(s)) and (in_list or not logical or prev.endswith((".", ":", ";")))
        if logical and not closed and not _BULLET.match(s) and not entry:
            logical[-1] += " " + s
        else:
            logical.append(s)
            in_list = bool(_BULLET.match(s)) or entry
        closed = bool(_NUMPY_ENTRY.match(s))
        prev = s
    return "\n".join(re.sub(r"[ \t]+", " ", ln) for ln in logical)


def _render_inline(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Strip inline markup from one paragraph; return the text and the spans marked as code."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    length = 0

    def emit(s: str, code: bool = False) -> None:
        nonlocal length
        if not s:
            return
        if code:
            spans.append((length, length + len(s)))
        out.append(s)
        length += len(s)

    for m in _INLINE.finditer(text):
        emit(text[pos : m.start()])
        pos = m.end()
        kind = m.lastgroup  # the outermost group that matched
        if kind == "role":
            role, body = m.group("rolename").lower(), m.group("rolebody")
            if role == "math":
                emit(_simplify_math(body))
                continue
            shown = re.match(r"^(.*?)\s*<([^<>]+)>$", body, re.S)
            if shown and shown.group(1):
                body = shown.group(1)
            elif shown:
                body = shown.group(2)
            body = body.lstrip("!")
            if body.startswith("~"):
                body = body[1:].rsplit(".", 1)[-1]
            if role in CODE_ROLES:
                emit(body.strip(), code=True)
            else:
                emit(body.strip())
        elif kind in _PLAIN_MARKUP:
            body, is_code = _PLAIN_MARKUP[kind]
            emit(m.group(body), code=is_code)
        # citations and bare URLs ("cite", "url") are dropped
    emit(text[pos:])
    return "".join(out), spans


def _tidy(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Collapse runs of spaces and drop spaces left dangling by removed markup, keeping spans aligned.

    A space goes when it follows a space or a line start, precedes a line end, or separates a word
    from punctuation that ends it (``"tensor ,"`` after a removed citation becomes ``"tensor,"``).
    """
    n = len(text)
    keep = []
    for i, ch in enumerate(text):
        if ch != " ":
            keep.append(True)
            continue
        prev = text[i - 1] if i else "\n"
        nxt = text[i + 1] if i + 1 < n else "\n"
        after = text[i + 2] if i + 2 < n else "\n"
        dangling = prev in " \n" or nxt == "\n" or (nxt in ",.;:)" and after in " \n")
        keep.append(not dangling)
    new_index = [0] * (n + 1)
    j = 0
    for i in range(n):
        new_index[i] = j
        j += keep[i]
    new_index[n] = j
    tidy = "".join(ch for ch, k in zip(text, keep) if k)
    new_spans = []
    for a, b in spans:
        na, nb = new_index[a], new_index[b]
        while na < nb and tidy[na] in " \n":
            na += 1
        while nb > na and tidy[nb - 1] in " \n":
            nb -= 1
        if nb > na:
            new_spans.append((na, nb))
    return tidy, new_spans


def _is_section_title(para: list[str]) -> bool:
    return len(para) == 1 and para[0].strip().rstrip(":").strip().lower() in _SECTION_TITLES


def clean_docstring(raw: str) -> tuple[str, list[tuple[int, int]]]:
    """Clean one reST docstring.

    Returns ``(text, code_spans)``: paragraphs separated by a blank line, hard wraps undone, and the
    half-open character ranges of ``text`` that the markup marked as code.

    >>> clean_docstring("Adds :attr:`other` to ``input``.")
    ('Adds other to input.', [(5, 10), (14, 19)])
    """
    if not isinstance(raw, str):
        raise ValueError(f"clean_docstring expects a str, got {type(raw).__name__}: {raw!r:.80}")
    text = inspect.cleandoc(raw.expandtabs(8))
    text = _ADDRESS.sub("", text)
    lines = _strip_signature(text.splitlines())
    lines = [ln for ln in lines if not _UNDERLINE.match(ln)]
    lines = _fields_to_text(lines)
    lines = _remove_blocks(lines)
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    offset = 0
    for para in _paragraphs(lines):
        while para and _is_section_title(para[:1]):
            para = para[1:]
        if not para:
            continue
        rendered, para_spans = _render_inline(_join_lines(para))
        rendered, para_spans = _tidy(rendered, para_spans)
        rendered_stripped = rendered.strip()
        if not re.search(r"[A-Za-z]", rendered_stripped):
            continue
        lead = len(rendered) - len(rendered.lstrip())
        if pieces:
            offset += 2  # the blank line between paragraphs
        spans.extend((a - lead + offset, b - lead + offset) for a, b in para_spans if b - lead <= len(rendered_stripped))
        pieces.append(rendered_stripped)
        offset += len(rendered_stripped)
    return "\n\n".join(pieces), spans


def _fields_to_text(lines: list[str]) -> list[str]:
    """``:param x: text`` becomes ``x: text``; ``:type x:`` and ``:rtype:`` lines go."""
    out = []
    skip_indent = None
    for line in lines:
        if skip_indent is not None:
            if line.strip() and _indent(line) > skip_indent:
                continue
            skip_indent = None
        m = _FIELD.match(line)
        if not m:
            out.append(line)
            continue
        indent, kind, name, rest = m.group(1), m.group(2), (m.group(3) or "").strip(), m.group(4)
        if kind in ("type", "vartype", "rtype"):
            skip_indent = len(indent)
            continue
        if kind.startswith("return"):
            label = "Returns"
        elif kind.startswith("yield"):
            label = "Yields"
        elif kind.startswith(("raise", "except")):
            label = f"Raises {name}".strip()
        else:
            label = name.split()[-1] if name else kind
        out.append(f"{indent}{label}: {rest}".rstrip())
    return out


def clean_plain_text(raw: str) -> str:
    """Normalise a plain-text document: unify newlines, unwrap paragraphs, collapse spaces."""
    if not isinstance(raw, str):
        raise ValueError(f"clean_plain_text expects a str, got {type(raw).__name__}")
    raw = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    paras = _paragraphs(raw.splitlines())
    return "\n\n".join(_join_lines(p) for p in paras)


_FOOTNOTE_REF = re.compile(r"\s\[\d+\](?=[\s.,;:)]|$)")
_PROSE_WORD = re.compile(r"^[(\"'“‘]*[A-Za-z][a-z’'-]*[)\"'”’]*[,.;:?!]?[)\"'”’]*$")


def looks_like_prose(paragraph: str) -> bool:
    """True for a paragraph of sentences, False for code, grammar rules, signatures and tables.

    Used where the text has lost the markup that told code from prose (the plain-text language
    reference): prose has several words, mostly ordinary ones, and ends like a sentence.
    """
    words = paragraph.split()
    if len(words) < 4 or "::=" in paragraph or paragraph.lstrip().startswith((">>>", "...", "$ ")):
        return False
    if not paragraph.rstrip().endswith((".", ":", "?", "!", '."', ".)", ".”")):
        return False
    plain = sum(1 for w in words if _PROSE_WORD.match(w))
    return plain / len(words) >= 0.6


def clean_reference_text(raw: str) -> str:
    """Clean a section of the plain-text language reference (``pydoc_data.topics``).

    There is no markup left to read, so code examples and grammar rules are told apart from prose
    by :func:`looks_like_prose`; footnote markers and tables are removed.
    """
    lines = [ln for ln in raw.expandtabs(8).splitlines() if not _TABLE_LINE.match(ln) and not _UNDERLINE.match(ln)]
    kept = []
    for para in _paragraphs(lines):
        if para[0].strip() == "-[ Footnotes ]-":
            break
        text = _FOOTNOTE_REF.sub("", _join_lines(para))
        text, _ = _tidy(*_render_inline(text))
        if looks_like_prose(text):
            kept.append(text.strip())
    return "\n\n".join(kept)
