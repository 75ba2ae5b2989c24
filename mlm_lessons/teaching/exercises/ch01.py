"""Chapter 1, the corpus and the tokenizer: the checkers of its exercises."""

from __future__ import annotations

from .registry import register, call_answer, name_mistake, as_number, first_mismatch


@register(
    "01-roles",
    1,
    "Write strip_roles(text) that replaces every Sphinx role :name:`content` by its content, "
    "shows only the last part of a ~-prefixed target, and keeps the title of `title <target>`.",
)
def _check_roles(answer) -> tuple[bool, str]:
    import re

    cases = [
        (":func:`torch.add`", "torch.add"),
        ("Adds :attr:`other` to :attr:`input`.", "Adds other to input."),
        (":class:`~torch.nn.Linear`", "Linear"),
        ("See :ref:`broadcasting <broadcasting-semantics>`.", "See broadcasting."),
        (":meth:`~Tensor.add_` works in place", "add_ works in place"),
        ("no roles here", "no roles here"),
    ]

    def describe(args, got, want):
        left = got if isinstance(got, str) else ""
        hint = next((f" – {h}" for wrong, h in (
            (re.search(r":\w+:`", left), "the :role:`...` markup is still there: replace each role by its content"),
            ("`" in left, "the backticks go too, not only the :role:"),
            ("~" in left or left.endswith("." + want), "a ~-prefixed target shows only its last part, after the last dot"),
            ("<" in left, "of `title <target>` keep only the title, without the <target>"),
        ) if wrong), "")
        return f"strip_roles({args[0]!r}) returned {got!r}, expected {want!r}{hint}"

    wrong = first_mismatch(answer, [((given,), want) for given, want in cases], describe)
    return wrong or (True, f"all {len(cases)} cases right")


@register(
    "01-leaks",
    1,
    "Write leaks(corpus) that returns how many distinct texts - compared after lowercasing and "
    "collapsing whitespace - appear in more than one of corpus.train, corpus.valid and corpus.test.",
)
def _check_leaks(answer) -> tuple[bool, str]:
    from ...corpus import Corpus, Document

    def docs(*texts):
        return [Document(t, "exercise", "m", f"doc {i}", "text") for i, t in enumerate(texts)]

    why = {
        "clean": "no text is shared",
        "exact": "one text in train and valid",
        "case": "equal after lowercasing and collapsing spaces",
        "three": "'x y' in all three splits, 'p q' in two: each text counts once",
        "within": "a duplicate inside one split is not a leak",
    }
    cases = [
        ((Corpus("clean", docs("a b c", "d e f"), docs("g h"), docs("i j")),), 0),
        ((Corpus("exact", docs("Same text here."), docs("Same text here."), []),), 1),
        ((Corpus("case", docs("Tensor  Shapes"), [], docs("tensor shapes")),), 1),
        ((Corpus("three", docs("x y", "p q"), docs("X  y"), docs("x\ny", "P Q")),), 2),
        ((Corpus("within", docs("dup", "dup"), docs("other"), []),), 0),
    ]
    wrong = first_mismatch(
        answer, cases,
        lambda args, got, want: f"on corpus {args[0].name!r} ({why[args[0].name]}) you counted {got!r}, expected {want}",
    )
    return wrong or (True, f"all {len(cases)} corpora counted right")


@register(
    "01-fragmentation",
    1,
    "Write pieces_per_word(tokenizer, words) that returns (mean pieces per word, share of words cut "
    "into two or more pieces) for a list of words.",
)
def _check_fragmentation(answer, *, tokenizer) -> tuple[bool, str]:
    words = ["autograd", "tensor", "the", "backpropagation", "gradient", "of", "dtype", "matrix"]
    frag = tokenizer.fragmentation([" ".join(words)])
    got = call_answer(answer, tokenizer, words)
    if not (isinstance(got, tuple) and len(got) == 2):
        return False, f"return a pair (pieces per word, share split), got {got!r:.80}"
    want = (frag.pieces_per_word, frag.share_split)
    got = tuple(as_number(g) for g in got)
    if all(abs(g - w) < 1e-9 for g, w in zip(got, want)):
        return True, f"pieces per word {want[0]:.3f}, share split {want[1]:.3f}"
    ppw, share = want
    hint = name_mistake(got, [
        ((ppw + 2, 1.0), "you counted [CLS] and [SEP] with every word: tokenize without the special tokens"),
        ((ppw, 1.0), "share split counts the words cut into two or more pieces (n > 1), not n >= 1"),
        ((ppw, ppw - 1), "you counted the ## continuation pieces; count each split word once"),
        ((1.0, 0.0), "you counted words, not pieces: count the pieces tokenizer.tokenize(word) returns"),
        ((share, ppw), "the pair is the wrong way round: (pieces per word, share split)"),
        ((ppw, 100 * share), "return the share split as a fraction, not a percent"),
    ], lambda g, w: all(abs(a - b) < 1e-9 for a, b in zip(g, w)))
    return False, f"got {tuple(round(g, 4) for g in got)}, expected {tuple(round(w, 4) for w in want)}{hint}"


@register(
    "01-closer",
    1,
    "Predict: on numpy-docs, are the general tokenizer's pieces per word closer to its value on "
    "python-docs or on pytorch-docs? Answer with the corpus name.",
)
def _check_closer(answer, *, tokenizer, corpora) -> tuple[bool, str]:
    if answer not in ("python-docs", "pytorch-docs"):
        return False, f"answer 'python-docs' or 'pytorch-docs', got {answer!r}"
    ppw = {name: tokenizer.fragmentation(corpora[name].texts("valid")).pieces_per_word
           for name in ("python-docs", "pytorch-docs", "numpy-docs")}
    truth = min(("python-docs", "pytorch-docs"), key=lambda n: abs(ppw[n] - ppw["numpy-docs"]))
    detail = ", ".join(f"{n} {v:.3f}" for n, v in ppw.items())
    if answer == truth:
        return True, f"right: pieces per word {detail}"
    return False, (f"not this time: numpy-docs ({ppw['numpy-docs']:.3f} pieces per word) is closer to {truth} "
                   f"({ppw[truth]:.3f}) than to {answer} ({ppw[answer]:.3f}); look at which words numpy-docs shares with each")


# -- chapter 2 ------------------------------------------------------------------------------
