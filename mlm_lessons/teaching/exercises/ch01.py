"""Chapter 1, the corpus and the tokenizer: the checkers of its exercises."""

from __future__ import annotations

import re

from .registry import register, call_answer, name_mistake, as_number, first_mismatch, judge_choice, judge_prediction

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


@register(
    "01-roles",
    1,
    "Write strip_roles(text) that replaces every Sphinx role :name:`content` by its content, "
    "shows only the last part of a ~-prefixed target, and keeps the title of `title <target>`.",
)
def _check_roles(answer) -> tuple[bool, str]:
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


def moved_share(corpora, edit=lambda text: text + ".") -> float:
    """Of all the documents of ``corpora`` (a dict of corpus name -> Corpus), the share whose split
    (:func:`~mlm_lessons.corpus.build.split_of`, the hash of the text) changes when ``edit`` changes
    the text: the measurement of exercise 1.5."""
    from ...corpus.build import split_of

    documents = [d for corpus in corpora.values() for d in corpus.documents]
    return sum(split_of(edit(d.text)) != split_of(d.text) for d in documents) / len(documents)


@register(
    "01-predict-moved",
    1,
    "Predict, then run: a new release adds a full stop at the end of every docstring. What share of the "
    "documents of the three corpora would move to another split?",
)
def _check_predict_moved(answer, *, corpora) -> tuple[bool, str]:
    measured = moved_share(corpora)
    return judge_prediction(answer, measured, within=0.03, relative=False, what="a share between 0 and 1", why=(
        "One more character gives the text a new SHA-256, unrelated to the old one: the document draws a new "
        "u, as if at random. It stays only if both draws fall in the same split, which happens with probability "
        "0.90² + 0.05² + 0.05² ≈ 0.815, so about 0.185 move. The split is stable when other documents change, "
        "not when the document itself does: an edited copy of a training text can land in valid or test, a "
        "near-duplicate that exact de-duplication does not catch."))


@register(
    "01-interpret-own-corpus",
    1,
    "Interpret: in section 1.7, on its own corpus each tokenizer needs fewer pieces per word than the other "
    "tokenizer. Why? (a) it saw those validation texts during training; (b) its vocabulary keeps whole the "
    "words that are frequent in its training text, and a corpus's validation split uses mostly the same words; "
    "(c) it has a larger vocabulary; (d) the words of pytorch-docs are longer.",
)
def _check_interpret_own_corpus(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "each tokenizer was trained on the train split only, and section 1.4 checked that no validation text "
             "is also in train: the table measures text neither tokenizer was trained on",
        "b": "WordPiece merges the pieces that are frequent in its training text, so those words get entries of "
             "their own; the validation split of the same corpus talks about the same things (tensor, dtype and "
             "cuda in pytorch-docs), so most of its words are found whole, while the other corpus's words are cut",
        "c": "both tokenizers have 8,000 entries (section 1.6)",
        "d": "word length cannot explain why the same corpus is cut differently by the two tokenizers: on "
             "python-docs the general tokenizer needs fewer pieces per word than the domain one, on "
             "pytorch-docs it needs more",
    }, right="b")


@register(
    "01-vocab-size",
    1,
    "Extend: write pieces_per_word_at(vocab_size, train_texts, valid_texts) that trains a tokenizer of "
    "vocab_size entries on train_texts (mlm.train_tokenizer) and returns its pieces per word on valid_texts "
    "(tokenizer.fragmentation).",
)
def _check_vocab_size(answer, *, corpora) -> tuple[bool, str]:
    from ...tokenizer import train_tokenizer

    train, valid = corpora["python-docs"].texts("train"), corpora["pytorch-docs"].texts("valid")
    sizes = (1000, 4000)
    got = {v: as_number(call_answer(answer, v, train, valid)) for v in sizes}
    if got[sizes[0]] == got[sizes[1]]:
        return False, (f"your function returns {got[sizes[0]]:.3f} for both {sizes[0]:,} and {sizes[1]:,} entries: "
                       f"train a new tokenizer with vocab_size=vocab_size on train_texts")
    if got[sizes[0]] < got[sizes[1]]:
        return False, (f"your function finds more pieces per word with {sizes[1]:,} entries ({got[sizes[1]]:.3f}) than with "
                       f"{sizes[0]:,} ({got[sizes[0]]:.3f}), but a larger vocabulary keeps more words whole: does vocab_size "
                       f"reach train_tokenizer?")
    want = {}
    for v in sizes:
        tokenizer = train_tokenizer(train, vocab_size=v)
        frag = tokenizer.fragmentation(valid)
        want[v] = frag.pieces_per_word
        if got[v] < 1:
            hint = name_mistake(got[v], [(frag.share_split, "that is the share of words split")], lambda g, w: abs(g - w) < 1e-6)
            return False, (f"with {v:,} entries you returned {got[v]:.3f}, but every word is one piece or more: pieces "
                           f"per word is at least 1{hint or ' – return tokenizer.fragmentation(valid_texts).pieces_per_word'}")
        if abs(got[v] - want[v]) > 0.01 * want[v]:  # the measurement is not printed: it is what the function should find
            side = "high" if got[v] > want[v] else "low"
            hint = (" – measure on valid_texts (pytorch-docs), not on the text the tokenizer was trained on" if side == "low" else
                    " – count the pieces of words only (tokenizer.fragmentation), not [CLS] and [SEP]")
            return False, f"with {v:,} entries your pieces per word, {got[v]:.3f}, is too {side} (more than 1% from the package's measurement){hint}"
    return True, (f"on pytorch-docs, a tokenizer trained on python-docs needs {want[1000]:.3f} pieces per word with 1,000 "
                  f"entries and {want[4000]:.3f} with 4,000 – more entries keep more words whole, but each costs a row of "
                  f"the embedding matrix (chapter 4)")
