"""Cleaning reST docstrings: each rule on a hand-written case, code spans as an invariant."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlm_lessons.corpus import clean_docstring, clean_plain_text, clean_reference_text, looks_like_prose


def clean(raw: str) -> str:
    return clean_docstring(raw)[0]


def code_of(raw: str) -> list[str]:
    text, spans = clean_docstring(raw)
    return [text[a:b] for a, b in spans]


@pytest.mark.parametrize(
    "raw, text, code",
    [
        ("Adds :attr:`other` to :attr:`input`.", "Adds other to input.", ["other", "input"]),
        ("Returns a :class:`~torch.Tensor`.", "Returns a Tensor.", ["Tensor"]),
        ("Use :py:func:`torch.add` here.", "Use torch.add here.", ["torch.add"]),
        ("Set ``dim=-1`` now.", "Set dim=-1 now.", ["dim=-1"]),
        ("The array `a` is copied.", "The array a is copied.", ["a"]),
        ("See :ref:`broadcasting <broadcasting-semantics>`.", "See broadcasting.", []),
        ("See :ref:`TensorFloat32<tf32_on_ampere>`.", "See TensorFloat32.", []),
        ("A :term:`glossary term` here.", "A glossary term here.", []),
        ("This is **very** *important*.", "This is very important.", []),
        ("Read `the guide <https://example.org/guide>`_ first.", "Read the guide first.", []),
        ("As shown in [1]_, it converges.", "As shown in, it converges.", []),
        ("It takes *args and **kwargs.", "It takes *args and **kwargs.", []),
    ],
)
def test_inline_markup(raw, text, code):
    assert clean(raw) == text
    assert code_of(raw) == code


def test_inline_math_becomes_plain_symbols():
    assert clean(r"Computes :math:`\text{out}_i = \alpha \times x_i`.") == "Computes out_i = α × x_i."
    assert clean(r"with :math:`k = \frac{1}{\text{in\_features}}`") == "with k = (1)/(in_features)"
    # docstrings built with str.format double their braces
    assert clean(r"Is :math:`\text{{input}}_i`.") == "Is input_i."


def test_display_math_and_code_blocks_go_notes_stay():
    raw = """Applies softmax.

    .. math::
        \\text{Softmax}(x_i) = \\frac{\\exp(x_i)}{\\sum_j \\exp(x_j)}

    .. note::
        This function does not work with ``NLLLoss``.

    .. code-block:: python

        y = torch.softmax(x, dim=0)

    .. warning::
        Beta feature.

        For example:

        .. code-block:: python

            class M(nn.Module): pass

    Done.
    """
    assert clean(raw) == "Applies softmax.\n\nThis function does not work with NLLLoss.\n\nBeta feature.\n\nDone."


def test_version_directives():
    assert clean("Text.\n\n.. versionadded:: 3.2\n") == "Text."
    assert clean("Text.\n\n.. deprecated:: 2.0\n    Use :func:`bar` instead.\n") == "Text.\n\nUse bar instead."


def test_doctests_and_literal_blocks_go_with_their_lone_intro():
    raw = """Creates a module.

    Example::

        >>> m = nn.Linear(20, 30)
        >>> m(torch.randn(128, 20)).size()
        torch.Size([128, 30])

    Some text follows.

    >>> x = 1
    >>> x + 1
    2

    The block below is code::

        for i in range(3):
            print(i)

    End.
    """
    assert clean(raw) == "Creates a module.\n\nSome text follows.\n\nThe block below is code:\n\nEnd."


@pytest.mark.parametrize(
    "raw, text",
    [
        ("add(input, other, *, alpha=1, out=None) -> Tensor\n\nAdds things.", "Adds things."),
        ("nextafter_(other) -> Tensor\nIn-place version of nextafter.", "In-place version of nextafter."),
        (
            "scaled_dot_product_attention(query, key, value, attn_mask=None,\n"
            "        is_causal=False) -> Tensor:\n\n    Computes attention.",
            "Computes attention.",
        ),
        ("add(x1, x2, /, out=None, *, where=True[, signature])\n\nAdd arguments element-wise.", "Add arguments element-wise."),
        # a sentence that starts with a call is not a signature
        ("len(x) returns the number of items.", "len(x) returns the number of items."),
    ],
)
def test_signatures(raw, text):
    assert clean(raw) == text


def test_memory_addresses_are_removed():
    assert clean("The hook is <function hook at 0x7f3a2c1d5e40>.") == "The hook is <function hook>."
    assert "0x7f" not in clean("Default: <object object at 0x7F3A2C1D5E40>")


def test_numpydoc_sections():
    raw = """Sum of elements.

    Parameters
    ----------
    a : array_like
        Elements to sum.
    axis : int, optional
        Axis along which
        the sum is taken.

    Returns
    -------
    out : ndarray
        The sum.
    """
    assert clean(raw) == (
        "Sum of elements.\n\n"
        "a: array_like\nElements to sum.\naxis: int, optional\nAxis along which the sum is taken.\n\n"
        "out: ndarray\nThe sum."
    )


def test_google_style_args_keep_one_entry_per_line():
    raw = """Linear layer.

    Args:
        in_features: size of each input sample
        bias: If set to ``False``, the layer will not learn
            an additive bias. Default: ``True``
    """
    assert clean(raw) == (
        "Linear layer.\n\nin_features: size of each input sample\n"
        "bias: If set to False, the layer will not learn an additive bias. Default: True"
    )


def test_wrapped_sentence_with_colon_word_is_not_split():
    raw = "For binary mode, this function is equivalent to the BZ2File\nconstructor: BZ2File(filename, mode)."
    assert clean(raw) == "For binary mode, this function is equivalent to the BZ2File constructor: BZ2File(filename, mode)."


def test_field_lists():
    raw = """Open a file.

    :param path: where the file is
    :type path: str
    :returns: a file object
    :rtype: IO
    :raises OSError: when it cannot be opened
    """
    assert clean(raw) == "Open a file.\n\npath: where the file is\nReturns: a file object\nRaises OSError: when it cannot be opened"


def test_tables_and_comments_go():
    raw = """Modes.

    +------+--------+
    | mode | effect |
    +======+========+
    | r    | read   |
    +------+--------+

    .. _target-label:

    .. [1] A citation that goes.

    After.
    """
    assert clean(raw) == "Modes.\n\nAfter."


def test_bullets_keep_their_lines():
    raw = "Shapes:\n    - Input: (N, C)\n    - Output: (N,)\n      where N is the batch size.\n"
    assert clean(raw) == "- Input: (N, C)\n- Output: (N,) where N is the batch size."


def test_rejects_non_strings():
    with pytest.raises(ValueError, match="expects a str, got NoneType"):
        clean_docstring(None)


words = st.from_regex(r"[a-z][a-z_]{0,7}", fullmatch=True)
pieces = st.lists(
    st.tuples(words, st.sampled_from(["plain", "func", "class", "attr", "literal", "ref", "emph"])), min_size=1, max_size=12
)


@given(pieces)
def test_code_spans_point_at_exactly_the_code(items):
    markup = {
        "plain": "{}",
        "func": ":func:`{}`",
        "class": ":class:`{}`",
        "attr": ":attr:`{}`",
        "literal": "``{}``",
        "ref": ":ref:`{}`",
        "emph": "*{}*",
    }
    raw = " ".join(markup[kind].format(w) for w, kind in items)
    text, spans = clean_docstring(raw)
    assert text == " ".join(w for w, _ in items)
    assert [text[a:b] for a, b in spans] == [w for w, kind in items if kind in ("func", "class", "attr", "literal")]
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


@given(st.lists(st.tuples(words, st.booleans()), min_size=1, max_size=30))
def test_code_spans_survive_paragraphs_and_wrapping(items):
    lines = []
    for i, (w, is_code) in enumerate(items):
        lines.append(f"``{w}``" if is_code else w)
        if i % 4 == 3:
            lines.append("")  # a paragraph break every four words
    text, spans = clean_docstring("\n".join(lines))
    assert [text[a:b] for a, b in spans] == [w for w, c in items if c]


def test_a_real_docstring_loses_all_markup():
    import torch

    text, spans = clean_docstring(torch.nn.Linear.__doc__)
    for marker in (":attr:", ":math:", ":ref:", "``", ">>>", ".. ", "::"):
        assert marker not in text
    assert "affine linear transformation" in text
    assert spans and all(text[a:b].strip() == text[a:b] for a, b in spans)
    assert inspect.cleandoc(torch.nn.Linear.__doc__).startswith("Applies an affine")


def test_reference_text_keeps_prose_drops_code_and_grammar():
    raw = """Assert statements are a convenient way to insert debugging assertions
into a program:

   assert_stmt ::= "assert" expression ["," expression]

The simple form, "assert expression", is equivalent to

   if __debug__:
       if not expression: raise AssertionError

These equivalences assume that "__debug__" refers to the built-in. [1]

-[ Footnotes ]-

[1] This is a footnote.
"""
    assert clean_reference_text(raw) == (
        "Assert statements are a convenient way to insert debugging assertions into a program:\n\n"
        'These equivalences assume that "__debug__" refers to the built-in.'
    )


@pytest.mark.parametrize(
    "para, prose",
    [
        ("This is an ordinary sentence about files.", True),
        ("if not expression: raise AssertionError", False),
        ('assert_stmt ::= "assert" expression', False),
        ("object.__new__(cls[, ...])", False),
        (">>> print('hello world, this is a doctest.')", False),
    ],
)
def test_looks_like_prose(para, prose):
    assert looks_like_prose(para) is prose


def test_plain_text_is_unwrapped_into_paragraphs():
    assert clean_plain_text("line one\r\nline two\n\n\n  next  para ") == "line one line two\n\nnext para"
