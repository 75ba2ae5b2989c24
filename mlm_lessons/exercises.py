"""Exercise checkers: a student's answer in, an immediate verdict with a useful message out.

Every exercise of the book has an id (``"01-split"``) and a checker. ``check(id, answer)`` returns a
:class:`CheckResult` that is truthy when the answer is right and shows as one line in a notebook::

    >>> check("01-roles", lambda s: s)                        # doctest: +ELLIPSIS
    ✘ 01-roles: ...
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable

__all__ = ["CheckResult", "Exercise", "check", "exercises", "register"]


@dataclass(frozen=True)
class CheckResult:
    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{'✔' if self.passed else '✘'} {self.exercise}: {self.message}"


@dataclass(frozen=True)
class Exercise:
    id: str
    chapter: int
    prompt: str
    checker: Callable[..., tuple[bool, str]]


_REGISTRY: dict[str, Exercise] = {}


def register(id: str, chapter: int, prompt: str):
    """Decorator: register ``checker(answer, **context) -> (passed, message)`` under ``id``."""

    def deco(checker):
        if id in _REGISTRY:
            raise ValueError(f"exercise {id!r} is registered twice")
        _REGISTRY[id] = Exercise(id, chapter, prompt, checker)
        return checker

    return deco


def exercises(chapter: int | None = None) -> list[Exercise]:
    """The registered exercises, of one chapter or all, in id order."""
    return [e for k, e in sorted(_REGISTRY.items()) if chapter is None or e.chapter == chapter]


def check(exercise_id: str, answer, **context) -> CheckResult:
    """Check ``answer`` against exercise ``exercise_id``; never raises because the answer is wrong."""
    if exercise_id not in _REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(_REGISTRY))}")
    try:
        passed, message = _REGISTRY[exercise_id].checker(answer, **context)
    except _AnswerError as exc:
        passed, message = False, str(exc)
    return CheckResult(exercise_id, bool(passed), message)


class _AnswerError(Exception):
    """The student's code failed; the message says on which input."""


def _call(fn, *args, hints: dict[type[Exception], str] | None = None):
    """``fn(*args)``; a failure becomes an :class:`_AnswerError` that says where, plus the hint that
    ``hints`` gives for the kind of exception (the known mistake that raises it)."""
    if not callable(fn):
        raise _AnswerError(f"expected a function, got {type(fn).__name__}")
    try:
        return fn(*args)
    except NotImplementedError:
        raise _AnswerError("not written yet: replace `raise NotImplementedError` with your code") from None
    except Exception as exc:  # noqa: BLE001 - report any failure of the student's code
        last = traceback.extract_tb(exc.__traceback__)[-1]
        hint = next((f" – {h}" for kind, h in (hints or {}).items() if isinstance(exc, kind)), "")
        raise _AnswerError(
            f"your function raised {type(exc).__name__}: {exc} (line {last.lineno}) on input {args!r:.120}{hint}"
        ) from None


def _hint(got, mistakes, same) -> str:
    """Name the mistake: `` – hint`` for the first ``(wrong answer, hint)`` of ``mistakes`` that ``got``
    matches by ``same(got, wrong)`` (the answer a known mistake gives), or '' when none does."""
    for wrong, hint in mistakes:
        try:
            matches = bool(same(got, wrong))
        except Exception:  # noqa: BLE001 - an answer of another type or shape matches no known mistake
            matches = False
        if matches:
            return f" – {hint}"
    return ""


def _as_number(got) -> float:
    """``got`` - a Python number or a one-element tensor - as a float."""
    try:
        return float(got)
    except (TypeError, ValueError, RuntimeError):
        shape = getattr(got, "shape", None)
        what = f"a tensor of shape {tuple(shape)}" if shape is not None else f"{got!r:.80}"
        raise _AnswerError(f"return one number, got {what}") from None


def _as_list(got) -> list:
    try:
        return list(got)
    except TypeError:
        raise _AnswerError(f"return a list, got {got!r:.80}") from None


def _first_mismatch(answer, cases, describe) -> tuple[bool, str] | None:
    """Run ``answer(*args)`` for each ``(args, expected)``; on the first wrong result return
    ``(False, describe(args, got, expected))``, or None when all are right."""
    for args, want in cases:
        got = _call(answer, *args)
        if got != want:
            return False, describe(args, got, want)
    return None


# -- chapter 1 ------------------------------------------------------------------------------


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

    wrong = _first_mismatch(answer, [((given,), want) for given, want in cases], describe)
    return wrong or (True, f"all {len(cases)} cases right")


@register(
    "01-leaks",
    1,
    "Write leaks(corpus) that returns how many distinct texts - compared after lowercasing and "
    "collapsing whitespace - appear in more than one of corpus.train, corpus.valid and corpus.test.",
)
def _check_leaks(answer) -> tuple[bool, str]:
    from .corpus import Corpus, Document

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
    wrong = _first_mismatch(
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
    got = _call(answer, tokenizer, words)
    if not (isinstance(got, tuple) and len(got) == 2):
        return False, f"return a pair (pieces per word, share split), got {got!r:.80}"
    want = (frag.pieces_per_word, frag.share_split)
    got = tuple(_as_number(g) for g in got)
    if all(abs(g - w) < 1e-9 for g, w in zip(got, want)):
        return True, f"pieces per word {want[0]:.3f}, share split {want[1]:.3f}"
    ppw, share = want
    hint = _hint(got, [
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


@register(
    "02-select",
    2,
    "Write how_many(n, ratio) that returns how many of n eligible positions BERT's exact "
    "selection picks.",
)
def _check_select(answer) -> tuple[bool, str]:
    import math

    from .masking import num_to_select

    cases = [((n, r), num_to_select(n, r)) for r in (0.15, 0.25, 0.5, 0.01, 1.0) for n in (0, 1, 2, 3, 6, 10, 14, 30, 127)]

    def describe(args, got, want):
        n, ratio = args
        x = ratio * n
        if n == 0:
            hint = " – a sequence with no eligible position gets 0"
        elif want == 1 and got == 0:
            hint = " – at least one position is always selected"
        else:
            hint = _hint(got, [
                (max(1, math.floor(x + 0.5)), "Python's round() sends a half to the even neighbour (round(4.5) == 4): use round(), not int(x + 0.5)"),
                (max(1, int(x)), "int() drops the fraction: round to the nearest with round(ratio * n)"),
                (max(1, math.ceil(x)), "math.ceil() rounds up: round to the nearest with round(ratio * n)"),
                (x, "return a whole number of positions: round(ratio * n)"),
            ], lambda g, w: g == w)
        return f"how_many({n}, {ratio}) returned {got!r}, expected {want}{hint}"

    return _first_mismatch(answer, cases, describe) or (True, f"all {len(cases)} cases right")


@register(
    "02-labels",
    2,
    "Write make_labels(input_ids, selected) that returns the original id where selected is True "
    "and -100 elsewhere, without modifying input_ids.",
)
def _check_labels(answer) -> tuple[bool, str]:
    import torch

    g = torch.Generator().manual_seed(0)
    for shape in ((2, 5), (3, 7), (4, 1)):  # the last one with nothing selected
        ids = torch.randint(5, 100, shape, generator=g)
        selected = torch.rand(shape, generator=g) < 0.4
        before = ids.clone()
        got = _call(answer, ids, selected)
        want = torch.where(selected, before, torch.full_like(before, -100))
        if not torch.equal(ids, before):
            return False, "your function modified input_ids; work on a copy (torch.where or .clone())"
        if not isinstance(got, torch.Tensor):
            return False, f"return a tensor of shape {tuple(want.shape)} (torch.where gives one), got {type(got).__name__}"
        if got.shape != want.shape or not torch.equal(got, want):
            hint = _hint(got, [
                (before, "you returned input_ids as they are: the positions not selected get -100"),
                (torch.where(selected, torch.full_like(before, -100), before), "swapped: the original id goes where selected is True, -100 where it is False"),
                (torch.where(selected, before, torch.zeros_like(before)), "the positions not selected get -100 (the loss skips them), not 0"),
            ], torch.equal)
            return False, f"for input_ids {before.tolist()} and selected {selected.tolist()} expected {want.tolist()}, got {got.tolist()}{hint}"
    return True, "labels right on 3 random batches, input untouched"


@register(
    "02-rebalance",
    2,
    "Write rebalance(shares, changed, value) that sets one of 'mask', 'random', 'keep' and "
    "adjusts the other two, in proportion, so that the three ints sum to 100.",
)
def _check_rebalance(answer) -> tuple[bool, str]:
    cases = [
        ({"mask": 80, "random": 10, "keep": 10}, "mask", 60),
        ({"mask": 40, "random": 20, "keep": 40}, "random", 25),  # 37.5 and 37.5: round one, not both
        ({"mask": 80, "random": 20, "keep": 0}, "mask", 50),
        ({"mask": 100, "random": 0, "keep": 0}, "mask", 40),
        ({"mask": 0, "random": 0, "keep": 100}, "keep", 0),
        ({"mask": 33, "random": 33, "keep": 34}, "keep", 100),
    ]
    for shares, changed, value in cases:
        a, b = (k for k in ("mask", "random", "keep") if k != changed)
        got = _call(answer, dict(shares), changed, value,
                    hints={ZeroDivisionError: f"when {a} and {b} are both 0, split the rest equally"})
        where = f"rebalance({shares}, {changed!r}, {value})"
        if not isinstance(got, dict) or set(got) != {"mask", "random", "keep"}:
            return False, f"{where} should return a dict with keys mask, random, keep; got {got!r:.120}"
        if not all(isinstance(v, int) and 0 <= v <= 100 for v in got.values()):
            return False, f"{where} returned {got}: every share must be an int in [0, 100] – round, and give the remainder to the other share"
        if got[changed] != value:
            return False, f"{where} returned {got}: {changed} must be {value}, the value just set"
        if sum(got.values()) != 100:
            hint = (f" – {a} and {b} must change so that the three sum to 100" if (got[a], got[b]) == (shares[a], shares[b])
                    else " – rounding both shares on their own can lose or gain a point: round one and give the other the rest"
                    if abs(sum(got.values()) - 100) == 1 else "")
            return False, f"{where} returned {got}: the shares sum to {sum(got.values())}, not 100{hint}"
        rest, total = 100 - value, shares[a] + shares[b]
        ideal_a = rest / 2 if total == 0 else rest * shares[a] / total
        if abs(got[a] - ideal_a) > 1:
            return False, f"{where} returned {got}: {a} and {b} should keep their proportion ({a} ≈ {ideal_a:.1f})"
    return True, f"all {len(cases)} cases sum to 100 and keep the proportions"


# -- chapter 3 ------------------------------------------------------------------------------


def _loss_cases():
    import torch

    g = torch.Generator().manual_seed(0)
    cases = []
    for batch, length, vocab, share in ((2, 6, 11, 0.5), (3, 9, 40, 0.15), (1, 4, 7, 1.0)):
        logits = torch.randn(batch, length, vocab, generator=g) * 2
        labels = torch.randint(0, vocab, (batch, length), generator=g)
        labels[torch.rand(batch, length, generator=g) > share] = -100
        labels[0, 0] = 3  # at least one labelled position
        cases.append((logits, labels))
    return cases


@register(
    "03-loss",
    3,
    "Write my_masked_loss(logits, labels) for logits [B, T, V] and labels [B, T]: the mean of "
    "-log_softmax(logits)[label] over positions whose label is not -100, from log_softmax and "
    "gather; a batch without any label must give 0.0, not nan.",
)
def _check_loss(answer) -> tuple[bool, str]:
    import math

    import torch
    import torch.nn.functional as F

    from .objective import masked_lm_loss

    def same(got, wrong):
        return math.isclose(got, float(wrong), rel_tol=1e-5, abs_tol=1e-6)

    for logits, labels in _loss_cases():
        want = masked_lm_loss(logits, labels).item()
        value = _as_number(_call(answer, logits, labels))
        if not same(value, want):
            labelled, index = labels != -100, labels.clamp(min=0)[..., None]
            nll = -F.log_softmax(logits, -1).gather(-1, index).squeeze(-1)
            everywhere = "looks like you averaged over all positions, including those labelled -100: divide by the number of labelled positions"
            hint = _hint(value, [
                ((nll * labelled).sum() / labels.numel(), everywhere),
                (nll.mean(), everywhere),
                ((nll * labelled).sum(), "that is the sum: divide by the number of labelled positions"),
                (-want, "the sign is flipped: the loss is minus the log-probability of the label"),
                (-logits.gather(-1, index).squeeze(-1)[labelled].mean(), "take log_softmax of the logits first: raw logits are not log-probabilities"),
                (masked_lm_loss(logits, labels, reduction="sequence"),
                 "you averaged within each sequence first: average over all labelled positions of the batch at once"),
            ], same)
            return False, f"for a batch of shape {tuple(labels.shape)} you computed {value:.6f}, expected {want:.6f}{hint}"
    empty = torch.full((2, 3), -100)
    value = _as_number(_call(answer, torch.randn(2, 3, 5), empty))
    if math.isnan(value):
        return False, "a batch with no labelled position gave nan: divide by max(count, 1), or return a zero"
    if value != 0.0:
        return False, f"a batch with no labelled position should give 0.0, got {value}"
    return True, "agrees with masked_lm_loss on 3 batches, and an empty batch gives 0.0"


@register(
    "03-accuracy",
    3,
    "Write my_accuracy(logits, labels): the share of labelled positions (label != -100) where the "
    "arg-max of the logits is the label.",
)
def _check_accuracy(answer) -> tuple[bool, str]:
    from .objective import masked_accuracy

    cases = []
    for logits, labels in _loss_cases():
        logits = logits.clone()
        labelled = (labels != -100).nonzero().tolist()
        for b, t in labelled[::2]:  # make every other labelled position a right prediction
            logits[b, t, labels[b, t]] += 20.0
        cases.append((logits, labels))
    for logits, labels in cases:
        got = _as_number(_call(answer, logits, labels))
        want = masked_accuracy(logits, labels)
        if abs(got - want) > 1e-9:
            right, labelled = logits.argmax(-1) == labels, labels != -100
            hint = _hint(got, [
                (right.float().mean(), "looks like you counted all positions, including those labelled -100: take the share among the labelled ones"),
                (right[labelled].sum(), "that is the number of right predictions: divide by the number of labelled positions"),
                (1 - want, "that is the error rate: count the positions where the arg-max IS the label"),
            ], lambda g, w: abs(g - float(w)) < 1e-9)
            return False, f"for a batch of shape {tuple(labels.shape)} you computed {got:.4f}, expected {want:.4f}{hint}"
    return True, "agrees with masked_accuracy on 3 batches"


@register(
    "03-unigram",
    3,
    "Write unigram_entropy(counts) for a 1-D tensor of token counts: the entropy -Σ p log p (in "
    "nats) of the frequencies p = counts / counts.sum(), with 0 log 0 taken as 0.",
)
def _check_unigram(answer) -> tuple[bool, str]:
    import math

    import torch

    from .objective import unigram_baseline

    cases = [torch.tensor([5, 5, 5, 5]), torch.tensor([0, 3, 1]), torch.tensor([100, 10, 1, 0, 0, 7])]
    for counts in cases:
        got = _as_number(_call(answer, counts.clone()))
        want = unigram_baseline(counts)
        if got != got:
            return False, f"counts {counts.tolist()} gave nan: leave out the zero counts (0 log 0 = 0)"
        if abs(got - want) > 1e-6:
            hint = _hint(got, [
                (want / math.log(2), "that is in bits (log2): use the natural log for nats"),
                (-want, "the sign is flipped: the entropy is -Σ p log p, and never negative"),
            ], lambda g, w: abs(g - w) < 1e-6)
            return False, f"counts {counts.tolist()}: you computed {got:.6f}, expected {want:.6f}{hint}"
    return True, f"all {len(cases)} cases right"


# -- chapter 4 ------------------------------------------------------------------------------


@register(
    "04-attention",
    4,
    "Write my_attention(q, k, v, keep) for [B, h, T, d_h] tensors and a boolean keep [B, 1, 1, T]: "
    "softmax(q k^T / sqrt(d_h)) v with the keys where keep is False given weight 0.",
)
def _check_attention(answer) -> tuple[bool, str]:
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    for b, h, t, d in ((1, 1, 4, 8), (2, 4, 7, 16)):
        q, k, v = (torch.randn(b, h, t, d, generator=g) for _ in range(3))
        keep = torch.ones(b, 1, 1, t, dtype=torch.bool)
        keep[-1, ..., t - 2 :] = False  # padding at the end of the last sequence
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        got = _call(answer, q, k, v, keep)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return False, f"expected a tensor of shape {tuple(want.shape)}, got {getattr(got, 'shape', type(got).__name__)}"
        if not torch.allclose(got, want, atol=1e-5):
            scores = q @ k.transpose(-2, -1) / d**0.5
            hint = _hint(got, [
                (F.scaled_dot_product_attention(q, k, v, scale=1.0), "apply the mask and divide the scores by sqrt(d_h)"),
                (F.scaled_dot_product_attention(q, k, v), "did you apply the mask? the padded keys still get weight"),
                (F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1.0), "did you divide the scores by sqrt(d_h)?"),
                (F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1 / d), "divide the scores by sqrt(d_h), not by d_h"),
                (scores.masked_fill(~keep, 0.0).softmax(-1) @ v,
                 "a masked score of 0 still gets weight exp(0) after the softmax: fill with -inf (or a very negative number)"),
                (scores.softmax(-1) * keep @ v, "you zeroed the weights after the softmax, so they no longer sum to 1: mask the scores before it"),
                *((scores.masked_fill(~keep.transpose(-2, -1), fill).softmax(-1) @ v,
                   "you masked the padded queries (rows), not the padded keys (columns): keep is [B, 1, 1, T] over the keys")
                  for fill in (float("-inf"), -1e9)),
                *((scores.masked_fill(~keep, fill).softmax(-2) @ v, "take the softmax over the keys (the last dimension), not the queries")
                  for fill in (float("-inf"), -1e9)),
            ], lambda g, w: torch.allclose(g, w, atol=1e-5, equal_nan=True))
            return False, f"differs from scaled_dot_product_attention by {float((got - want).abs().max()):.3g}{hint}"
    return True, "matches F.scaled_dot_product_attention, padding included"


@register(
    "04-params",
    4,
    "Write count_parameters(config) that returns the number of parameters of MaskedLM(config) from "
    "the sizes alone.",
)
def _check_params(answer) -> tuple[bool, str]:
    import torch

    from .model import EncoderConfig, MaskedLM

    configs = [
        EncoderConfig(vocab_size=8000, max_len=64, d_model=128, n_layers=2, n_heads=4, d_ff=512),
        EncoderConfig(vocab_size=1000, max_len=32, d_model=64, n_layers=3, n_heads=2, d_ff=100, norm="post"),
        EncoderConfig(vocab_size=30522, max_len=512, d_model=768, n_layers=12, n_heads=12, d_ff=3072, norm="post"),
    ]
    for c in configs:
        model = MaskedLM(c)
        want = model.num_parameters()
        got = _call(answer, c)
        if got != want:
            d = c.d_model
            norms = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters())
            biases = sum(m.bias.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)) + c.vocab_size
            hint = _hint(got, [
                (want + c.vocab_size * d, "the output layer reuses (ties) the token embedding matrix: count it once"),
                (want - c.max_len * d, "you left out the position embeddings (max_len × d_model)"),
                (want - norms, "you left out the LayerNorms (a weight and a bias of d_model each)"),
                (want - 2 * d, "you left out one LayerNorm: the one after the embeddings (post-LN) or after the last block (pre-LN)"),
                (want - biases, "you left out the biases (of every linear layer, and the output bias of vocab_size)"),
                (want - c.vocab_size, "you left out the output bias (one per vocabulary entry)"),
                (want - (d * d + d + 2 * d), "you left out the head's dense layer and LayerNorm"),
            ], lambda g, w: g == w)
            return False, f"for d_model={d}, n_layers={c.n_layers}, d_ff={c.d_ff}, V={c.vocab_size}, norm={c.norm!r}: you counted {got!r}, MaskedLM has {want:,}{hint}"
    return True, "exact for 3 configurations, BERT-base's shape among them"


@register(
    "04-causal",
    4,
    "Write causal_keep(T): a boolean [T, T] matrix, True where query i may attend to key j in a "
    "left-to-right model.",
)
def _check_causal(answer) -> tuple[bool, str]:
    import torch

    for t in (1, 4, 9):
        want = torch.ones(t, t, dtype=torch.bool).tril()
        got = _call(answer, t)
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool or got.shape != want.shape:
            return False, f"causal_keep({t}) should be a bool tensor of shape ({t}, {t}), got {got!r:.80}"
        if not torch.equal(got, want):
            hint = _hint(got, [
                (want.T, "that is the transpose: query i (row) sees keys j <= i (columns)"),
                (want.tril(-1), "the diagonal is missing: a query may attend to its own position"),
                (torch.ones_like(want), "every query sees every key: a left-to-right model must hide the future (j > i)"),
            ], torch.equal)
            return False, f"causal_keep({t}) returned {got.int().tolist()}, expected {want.int().tolist()}{hint}"
    return True, "right for T = 1, 4, 9"


# -- chapter 5 ------------------------------------------------------------------------------


@register(
    "05-schedule",
    5,
    "Write lr_factor(step, warmup, total): (step + 1) / warmup during the warm-up, then a linear "
    "decay that reaches 0 at step total.",
)
def _check_schedule(answer) -> tuple[bool, str]:
    from .training import TrainConfig, _lr_lambda

    for warmup, total in ((10, 100), (1, 7), (50, 60)):
        want = _lr_lambda(TrainConfig(max_steps=total, warmup_steps=warmup))
        for step in sorted({0, warmup - 1, warmup, (warmup + total) // 2, total - 1, total}):
            got = _call(answer, step, warmup, total)
            if not isinstance(got, (int, float)) or abs(got - want(step)) > 1e-9:
                hint = _hint(got, [
                    (step / warmup, "the warm-up starts at 1 / warmup, not 0: use (step + 1) / warmup"),
                    (1.0, "no warm-up: over the first warmup steps the factor climbs from 1 / warmup to 1"),
                ] if step < warmup else [
                    ((step + 1) / warmup, "the peak is 1.0 at step warmup: the warm-up covers steps 0 to warmup - 1"),
                    (1.0, "after the warm-up the factor must fall linearly to 0 at step total"),
                    (1 - step / total, "the decay starts at step warmup: 1 - (step - warmup) / (total - warmup)"),
                    (1 - (step - warmup) / total, "divide by the decay's length, total - warmup, so that it reaches 0 at step total"),
                ], lambda g, w: abs(g - w) < 1e-9)
                return False, f"lr_factor({step}, {warmup}, {total}) returned {got!r}, expected {want(step):.4f}{hint}"
    return True, "right during warm-up, at the peak, in the decay and at the end"


@register(
    "05-no-decay",
    5,
    "Write no_decay_names(model): the sorted names of the parameters that get no weight decay "
    "(biases and LayerNorm parameters: those with fewer than two dimensions).",
)
def _check_no_decay(answer) -> tuple[bool, str]:
    from .model import EncoderConfig, MaskedLM

    for norm in ("pre", "post"):
        model = MaskedLM(EncoderConfig(vocab_size=50, max_len=8, d_model=16, n_layers=2, n_heads=2, d_ff=32, norm=norm))
        want = sorted(n for n, p in model.named_parameters() if p.dim() < 2)
        got = _as_list(_call(answer, model))
        if got != want:
            shape = {n: p.dim() for n, p in model.named_parameters()}
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            parts = []
            if missing:
                hint = " (LayerNorm weights are 1-D too)" if any(n.endswith("weight") for n in missing) else ""
                parts.append(f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''}{hint}")
            if extra:
                hint = " (weight matrices and embeddings, 2-D, do get weight decay)" if any(shape.get(n, 0) >= 2 for n in extra) else ""
                parts.append(f"should not list {extra[:4]}{' ...' if len(extra) > 4 else ''}{hint}")
            if not parts:
                parts.append("the right names, but the list must be sorted" if sorted(got) == want else "each name once")
            return False, f"norm={norm!r}: " + "; ".join(parts)
    return True, "right for a pre-LN and a post-LN model"


@register(
    "05-mfu",
    5,
    "Write mfu(flops_per_token, tokens_per_second, peak_flops): the share of the device's peak "
    "that the model's own FLOPs reach.",
)
def _check_mfu(answer) -> tuple[bool, str]:
    import math

    cases = [((2e9, 150_000, 989e12), 2e9 * 150_000 / 989e12), ((1.2e7, 1e4, 6.5e13), 1.2e7 * 1e4 / 6.5e13)]
    for args, want in cases:
        got = _call(answer, *args)
        if not isinstance(got, (int, float)) or abs(got - want) > 1e-12:
            _, tokens, peak = args
            hint = _hint(got, [
                (tokens / peak, "multiply tokens/s by flops_per_token: MFU compares FLOP/s with FLOP/s"),
                (100 * want, "return a share (0.303), not a percent"),
                (1 / want, "that is peak / achieved: MFU is achieved FLOP/s / peak FLOP/s"),
                (3 * want, "flops_per_token already counts the training step (forward and backward): do not multiply it by 3"),
                (6 * want, "flops_per_token already counts the training step: do not multiply it by 6"),
            ], lambda g, w: math.isclose(g, w, rel_tol=1e-9))
            return False, f"mfu{args} returned {got!r}, expected {want:.4f}{hint}"
    return True, "right (and 2 GFLOP/token at 150k tokens/s on an H100 is an MFU of 30.3%)"


# -- chapter 7 ------------------------------------------------------------------------------


@register(
    "07-overlap",
    7,
    "Write overlap(counts_a, counts_b, k, stop_words): the share of the k most frequent words of "
    "each Counter, stop words left out, that the two have in common (|top_a ∩ top_b| / k).",
)
def _check_overlap(answer) -> tuple[bool, str]:
    from collections import Counter

    from .corpus.stats import top_words, vocabulary_overlap

    stop = frozenset({"the", "of", "a"})
    a = Counter({"the": 100, "of": 90, "tensor": 50, "gradient": 40, "list": 30, "dict": 20, "string": 10, "a": 5})
    b = Counter({"the": 120, "of": 100, "a": 80, "array": 60, "axis": 45, "dtype": 35, "tensor": 25, "gradient": 15})
    cases = [((a, b, 2), "the top 2"), ((a, b, 4), "the top 4"), ((a, a, 3), "a corpus with itself")]
    for (ca, cb, k), what in cases:
        want = vocabulary_overlap(ca, cb, k, stop_words=stop)
        got = _call(answer, ca, cb, k, stop)
        if not isinstance(got, (int, float)) or abs(got - want) > 1e-12:
            top_a, top_b = set(top_words(ca, k, stop_words=stop)), set(top_words(cb, k, stop_words=stop))
            hint = _hint(got, [
                (len({w for w, _ in ca.most_common(k)} & {w for w, _ in cb.most_common(k)}) / k,
                 "stop words ('the', 'of', 'a') must be left out before taking the top k"),
                (want * k, "return a share: the number of common words divided by k"),
                (len(top_a & top_b) / len(top_a | top_b), "divide by k, not by the size of the union (that is the Jaccard index)"),
            ], lambda g, w: abs(g - w) < 1e-12)
            return False, f"{what}: overlap returned {got!r}, expected {want:.3f}{hint}"
    return True, "right: the top-k content words, stop words left out, shared share of k"


@register(
    "07-new-embedding",
    7,
    "Write new_rows(embedding, pieces): for each new token, the mean of the embedding rows of the "
    "pieces the old tokenizer cut it into; a tensor [len(pieces), d].",
)
def _check_new_embedding(answer) -> tuple[bool, str]:
    import torch

    emb = torch.arange(12, dtype=torch.float32).reshape(6, 2) ** 1.5
    for pieces in ([[1, 2]], [[0, 3, 5], [4, 4], [2, 1]]):
        want = torch.stack([emb[p].mean(0) for p in pieces])
        got = _call(answer, emb, pieces)
        if not torch.equal(emb, torch.arange(12, dtype=torch.float32).reshape(6, 2) ** 1.5):
            return False, "new_rows changed the embedding matrix it was given; old rows must stay as they are"
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return False, f"new_rows(emb, {pieces}) should be a tensor of shape {tuple(want.shape)}, got {getattr(got, 'shape', type(got).__name__)}"
        if not torch.allclose(got, want):
            hint = _hint(got, [
                (torch.stack([emb[p].sum(0) for p in pieces]), "you summed the pieces' rows; take their mean"),
                (torch.stack([emb[p[0]] for p in pieces]), "you took the first piece only; average all pieces"),
            ], torch.allclose)
            return False, f"new_rows(emb, {pieces}) returned {got.tolist()}, expected {want.tolist()}{hint}"
    return True, "right: each new row is the mean of its pieces, and the old rows are untouched"


def _reference_early_stop(losses, patience, equal_improves=False):
    best, best_step, bad = float("inf"), None, 0
    for step, loss in losses:
        if loss < best or (equal_improves and loss == best):
            best, best_step, bad = loss, step, 0
        else:
            bad += 1
            if bad >= patience:
                return best_step, step
    return best_step, None


@register(
    "07-early-stop",
    7,
    "Write early_stop(losses, patience): losses is a list of (step, validation loss); return "
    "(the step whose weights to keep, the step at which training stops, or None if it never stops).",
)
def _check_early_stop(answer) -> tuple[bool, str]:
    cases = [
        ([(0, 3.0), (100, 2.5), (200, 2.4), (300, 2.45), (400, 2.41), (500, 2.42)], 3),
        ([(0, 3.0), (100, 2.5), (200, 2.6), (300, 2.4), (400, 2.7)], 2),
        ([(0, 3.0), (100, 2.9), (200, 2.8)], 1),
        ([(0, 3.0), (100, 3.0), (200, 2.9)], 1),
    ]
    for losses, patience in cases:
        want = _reference_early_stop(losses, patience)
        got = _call(answer, losses, patience)
        got = tuple(got) if isinstance(got, (tuple, list)) else got
        if got != want:
            hint = _hint(got, [
                (_reference_early_stop(losses, patience, equal_improves=True), "an equal loss is no improvement: only a lower loss resets the count"),
                (_reference_early_stop(losses, patience + 1),
                 "that stops one evaluation too late: stop as soon as the count of evaluations without improvement reaches patience"),
            ], lambda g, w: g == w)
            if not hint and isinstance(got, tuple) and len(got) == 2:
                hint = (" – keep the weights of the best evaluation, not of the last" if got[0] == losses[-1][0]
                        else " – count the evaluations without improvement since the best one" if got[1] != want[1] else "")
            return False, f"early_stop({losses}, patience={patience}) returned {got!r}, expected {want}{hint}"
    return True, "right: the best step is kept, and training stops after `patience` evaluations without improvement"


# -- chapter 8 ------------------------------------------------------------------------------


@register(
    "08-macro-f1",
    8,
    "Write macro_f1(y_true, y_pred, num_labels): the unweighted mean over all classes of the "
    "per-class F1 (a class never predicted and never true counts as F1 = 0).",
)
def _check_macro_f1(answer) -> tuple[bool, str]:
    import random

    from .finetuning import _f1, classification_metrics

    rng = random.Random(8)
    cases = [([0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 0, 0], 3), ([0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1], 3),
             ([0, 0, 1, 1], [0, 1, 1, 1], 3)]  # class 2 neither true nor predicted: it still counts, as 0
    cases += [([rng.randrange(4) for _ in range(40)], [rng.randrange(4) for _ in range(40)], 4) for _ in range(3)]
    for y_true, y_pred, c in cases:
        want = classification_metrics(y_true, y_pred, c)
        got = _call(answer, y_true, y_pred, c, hints={ZeroDivisionError: (
            "a class never predicted (or never true) has 0/0 precision (or recall): count its F1 as 2·tp / (2·tp + fp + fn), 0 when all are 0")})
        if not isinstance(got, (int, float)) or abs(got - want["macro_f1"]) > 1e-9:
            pairs = list(zip(y_true, y_pred))
            f1 = [_f1(sum(t == k and p == k for t, p in pairs), sum(t != k and p == k for t, p in pairs),
                      sum(t == k and p != k for t, p in pairs)) for k in range(c)]
            hint = _hint(got, [
                (want["accuracy"], "that is the accuracy (micro-F1); average the F1 of each class instead"),
                (want["macro_f1"] * c / len(set(y_true) | set(y_pred)),
                 f"average over all {c} classes; a class never true and never predicted counts as F1 = 0"),
                (sum(f * y_true.count(k) for k, f in enumerate(f1)) / len(y_true),
                 "you weighted each class by its number of true examples (weighted F1); macro-F1 gives every class the same weight"),
            ], lambda g, w: abs(g - w) < 1e-9)
            return False, f"macro_f1({y_true[:6]}..., {y_pred[:6]}..., {c}) returned {got!r}, expected {want['macro_f1']:.4f}{hint}"
    return True, "right, including a classifier that always answers the majority class"


@register(
    "08-first-piece",
    8,
    "Write piece_labels(word_ids, word_labels): one label per piece – the word's label at the first "
    "piece of each word, -100 at its other pieces and where word_ids is None ([CLS], [SEP], padding).",
)
def _check_first_piece(answer) -> tuple[bool, str]:
    cases = [
        ([None, 0, 1, 1, 2, None], [0, 1, 0], [-100, 0, 1, -100, 0, -100]),
        ([None, 0, 0, 0, 1, None, None], [1, 0], [-100, 1, -100, -100, 0, -100, -100]),
        ([None, 0, 1, 2, None], [1, 1, 0], [-100, 1, 1, 0, -100]),
    ]
    for word_ids, labels, want in cases:
        got = _as_list(_call(answer, word_ids, labels))
        if got != want:
            hint = _hint(got, [
                ([-100 if w is None else labels[w] for w in word_ids], "only the first piece of a word carries its label; the others get -100"),
                ([-100 if w is None or w == after else labels[w] for w, after in zip(word_ids, word_ids[1:] + [None])],
                 "label the first piece of each word, not the last"),
            ], lambda g, w: g == w)
            if not hint and len(got) != len(want):
                hint = f" – one label per piece: {len(word_ids)} of them, as many as word_ids"
            elif not hint and any(w is None and g != -100 for w, g in zip(word_ids, got)):
                hint = " – [CLS], [SEP] and padding (word id None) get -100"
            return False, f"piece_labels({word_ids}, {labels}) returned {got}, expected {want}{hint}"
    return True, "right: a label per word, at its first piece"


@register(
    "08-span-f1",
    8,
    "Write span_f1(gold, pred): gold and pred are lists of label sequences (1 = code); a span is a "
    "maximal run of 1s; F1 over exactly matching spans.",
)
def _check_span_f1(answer) -> tuple[bool, str]:
    from .finetuning import tagging_metrics

    cases = [
        ([[0, 1, 1, 0, 1]], [[0, 1, 1, 0, 1]]),
        ([[0, 1, 1, 0, 1]], [[0, 1, 1, 1, 1]]),
        ([[1, 1, 0, 0], [0, 1, 0, 1]], [[1, 0, 0, 0], [0, 1, 0, 1]]),
        ([[0, 0, 1]], [[0, 0, 0]]),
        ([[1, 0, 1, 0, 1]], [[1, 0, 0, 0, 0]]),  # precision 1, recall 1/3
    ]
    for gold, pred in cases:
        want = tagging_metrics(gold, pred)
        got = _call(answer, gold, pred, hints={ZeroDivisionError: (
            "with no predicted span, or no span right, precision, recall and F1 are 0: guard the divisions (0/0)")})
        if not isinstance(got, (int, float)) or abs(got - want["span_f1"]) > 1e-9:
            hint = _hint(got, [
                (want["token_f1"], "that is the word-level F1; a span counts only if its first and last word both match"),
                (want["span_precision"], "that is the span precision; F1 = 2PR / (P + R) needs the recall too"),
                (want["span_recall"], "that is the span recall; F1 = 2PR / (P + R) needs the precision too"),
            ], lambda g, w: abs(g - w) < 1e-9)
            return False, f"span_f1({gold}, {pred}) returned {got!r}, expected {want['span_f1']:.4f}{hint}"
    return True, "right: a span one word too long or too short earns nothing"


# -- chapter 6 ------------------------------------------------------------------------------


@register(
    "06-corrupt",
    6,
    "Write corrupt(input_ids, selected, p_mask, p_random, mask_id, vocab_size, generator): a new "
    "tensor where each selected position becomes mask_id with probability p_mask, a random "
    "non-special id (ids 0-4 are special) with probability p_random, and stays as it is otherwise; "
    "unselected positions and input_ids untouched.",
)
def _check_corrupt(answer) -> tuple[bool, str]:
    import torch

    mask_id, vocab = 4, 1000
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (200, 60), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    selected = torch.rand(ids.shape, generator=g) < 0.5
    selected[:, 0] = selected[:, -1] = False
    for p_mask, p_random in ((0.8, 0.1), (1.0, 0.0), (0.8, 0.0), (0.0, 0.2), (0.0, 1.0)):
        p_keep = 1 - p_mask - p_random
        before = ids.clone()
        got = _call(answer, ids, selected, p_mask, p_random, mask_id, vocab, torch.Generator().manual_seed(1))
        where = f"corrupt(..., p_mask={p_mask}, p_random={p_random})"
        if not torch.equal(ids, before):
            return False, f"{where} modified input_ids; corrupt a copy (input_ids.clone())"
        if not isinstance(got, torch.Tensor) or got.shape != ids.shape:
            return False, f"{where} should return a tensor of shape {tuple(ids.shape)}, got {got!r:.80}"
        changed_outside = int(((got != ids) & ~selected).sum())
        if changed_outside:
            return False, (f"{where} changed {changed_outside} positions that were not selected "
                           f"(the [CLS]/[SEP] or the context): only selected positions are corrupted")
        fate_mask = (got == mask_id) & selected
        fate_keep = (got == ids) & selected
        fate_random = selected & ~fate_mask & ~fate_keep
        if (got[fate_random] < 5).any():
            return False, f"{where} drew a special id ({sorted(set(got[fate_random][got[fate_random] < 5].tolist()))}) as a random token; draw from 5 … vocab_size - 1"
        n = int(selected.sum())
        shares = {"[MASK]": int(fate_mask.sum()) / n, "random": int(fate_random.sum()) / n, "unchanged": int(fate_keep.sum()) / n}
        want = {"[MASK]": p_mask, "random": p_random, "unchanged": p_keep}
        off = {k: (shares[k], want[k]) for k in want if abs(shares[k] - want[k]) > 0.03}
        if off:
            seen = ", ".join(f"{k} {shares[k]:.0%}" for k in shares)
            hint = ""
            if p_keep > 0 and shares["unchanged"] < 0.03 and shares["random"] > p_random + 0.03:
                hint = " – every position that is not [MASK] got a random token: the keep share (1 - p_mask - p_random) stays as it is"
            elif p_random > 0 and shares["random"] < 0.03:
                hint = " – no random token at all: draw one with probability p_random"
            elif abs(shares["[MASK]"] - p_mask * p_mask) < 0.03 or abs(shares["random"] - (1 - p_mask) * p_random) < 0.03:
                hint = " – draw one uniform number per position and compare it with p_mask and p_mask + p_random; do not draw the random share from what is left"
            return False, f"{where}: of {n} selected positions {seen}; expected {p_mask:.0%}/{p_random:.0%}/{p_keep:.0%}{hint}"
    return True, "the shares of [MASK], random and unchanged match on 5 splits; nothing else touched"


@register(
    "06-sem",
    6,
    "Write mean_and_sem(values): the mean over seeds and its standard error, the sample standard "
    "deviation (n - 1) divided by sqrt(n); with a single value the standard error is unknown: nan.",
)
def _check_sem(answer) -> tuple[bool, str]:
    import math
    import statistics

    cases = [[0.5, 0.7, 0.6], [3.21, 3.18, 3.40, 3.05], [1.0, 1.0], [0.1, 0.9], [2.5]]
    for values in cases:
        got = _call(answer, list(values))
        try:
            mean, sem = (float(x) for x in got)
        except (TypeError, ValueError):
            return False, f"mean_and_sem({values}) should return a pair (mean, sem), got {got!r:.80}"
        want_mean = statistics.fmean(values)
        if abs(mean - want_mean) > 1e-9:
            return False, f"mean_and_sem({values}) gave the mean {mean}, expected {want_mean}"
        if len(values) == 1:
            if not math.isnan(sem):
                return False, f"mean_and_sem({values}) gave the standard error {sem}; one seed says nothing about the spread: return nan"
            continue
        n, sd = len(values), statistics.stdev(values)
        want = sd / math.sqrt(n)
        if abs(sem - want) > 1e-9:
            hint = _hint(sem, [
                (statistics.pstdev(values) / math.sqrt(n), "you divided by n; the sample standard deviation divides by n - 1"),
                (sd, "that is the standard deviation; the standard error divides it by sqrt(n)"),
                (sd / n, "divide by sqrt(n), not by n"),
                (statistics.pstdev(values), "that is the population standard deviation; the standard error is stdev (n - 1) / sqrt(n)"),
            ], lambda g, w: abs(g - w) < 1e-9)
            return False, f"mean_and_sem({values}) gave the standard error {sem:.6f}, expected {want:.6f}{hint}"
    return True, f"right on {len(cases)} sets of values, including a single seed"


@register(
    "06-times-seen",
    6,
    "Write times_seen(epochs, copies): with static masking, copy c of a sequence's masks is used in "
    "the epochs e with e % copies == c; return the list of how many epochs use each copy.",
)
def _check_times_seen(answer) -> tuple[bool, str]:
    cases = [(40, 10), (10, 3), (3, 5), (1, 1), (7, 7), (12, 5)]
    for epochs, copies in cases:
        want = [len(range(c, epochs, copies)) for c in range(copies)]
        got = _call(answer, epochs, copies)
        try:
            got = [int(x) for x in got]
        except (TypeError, ValueError):
            return False, f"times_seen({epochs}, {copies}) should return a list of {copies} ints, got {got!r:.80}"
        if got != want:
            hint = _hint(got, [
                ([epochs // copies] * copies, "the epochs left over when copies does not divide epochs go to the first copies"),
                ([-(-epochs // copies)] * copies, "not every copy gets the rounded-up count: the first epochs % copies copies get one more"),
                ([epochs] * copies, "each epoch uses one copy only"),
            ], lambda g, w: g == w)
            if not hint and sum(got) != epochs:
                hint = f" – the counts must add up to the {epochs} epochs"
            return False, f"times_seen({epochs}, {copies}) returned {got}, expected {want}{hint}"
    return True, "right, e.g. RoBERTa's 40 epochs with 10 copies: each mask seen 4 times"


# -- chapter 9 ------------------------------------------------------------------------------


@register(
    "09-remask",
    9,
    "Write remask_counts(n, iterations): Mask-Predict's schedule, the number of the n generated "
    "pieces masked again after iteration t = 1 … T: floor(n · (T − t) / T).",
)
def _check_remask(answer) -> tuple[bool, str]:
    import math

    from .generation import remask_schedule

    cases = [((n, T), remask_schedule(n, T)) for n, T in ((10, 4), (7, 3), (12, 10), (5, 1), (1, 3), (0, 2), (30, 7))]
    for (n, T), want in cases:
        got = _call(answer, n, T)
        try:
            got = [int(x) for x in got]
        except (TypeError, ValueError):
            return False, f"remask_counts({n}, {T}) should return a list of {T} ints, got {got!r:.80}"
        if got != want:
            hint = _hint(got, [
                ([n * (T - t) // T for t in range(T)], "the list starts after the first iteration (t = 1), and ends with 0 after the last"),
                ([round(n * (T - t) / T) for t in range(1, T + 1)], "round down (floor), as Mask-Predict does, not to the nearest"),
                ([math.ceil(n * (T - t) / T) for t in range(1, T + 1)], "round down (floor), not up"),
                ([n * t // T for t in range(1, T + 1)], "the count falls with t: n · (T − t) / T, not n · t / T"),
            ], lambda g, w: g == w)
            return False, f"remask_counts({n}, {T}) returned {got}, expected {want}{hint}"
    return True, f"right on {len(cases)} (n, T) pairs"


@register(
    "09-next-token",
    9,
    "Write causal_labels(input_ids, attention_mask) for a left-to-right model: at position t the id "
    "at t + 1, and -100 at the last position and wherever position t + 1 is padding.",
)
def _check_next_token(answer) -> tuple[bool, str]:
    import torch

    from .masking import next_token_labels

    ids = torch.tensor([[2, 11, 12, 13, 3, 0, 0], [2, 21, 22, 23, 24, 25, 3], [2, 31, 3, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    want = next_token_labels(ids, mask)
    before = ids.clone()
    got = _call(answer, ids, mask)
    if not torch.equal(ids, before):
        return False, "your function modified input_ids; build the labels in a new tensor"
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return False, f"return a tensor of shape {tuple(want.shape)} (one label per position), got {got!r:.80}"
    if torch.equal(got, want):
        return True, "right: the next id everywhere it exists, -100 at the end and before padding"
    shifted = torch.full_like(ids, -100)
    shifted[:, :-1] = ids[:, 1:]
    right_shift = torch.full_like(ids, -100)
    right_shift[:, 1:] = ids[:, :-1]
    hint = _hint(got, [
        (ids, "those are the inputs themselves: a causal model predicts the NEXT id, so shift left by one"),
        (torch.where(mask.bool(), ids, torch.full_like(ids, -100)), "those are the inputs themselves: shift left by one"),
        (right_shift, "that shifts the wrong way: position t is labelled with the id at t + 1, not t - 1"),
        (shifted, "positions followed by padding must get -100, not the [PAD] id"),
    ], lambda g, w: torch.equal(g, w))
    return False, f"for input_ids {ids.tolist()} expected {want.tolist()}, got {got.tolist()}{hint}"


@register(
    "09-pll",
    9,
    "Write pll(model, ids, mask_id): the pseudo-log-likelihood of one sequence [CLS] … [SEP] (a list "
    "of ids): mask each piece between [CLS] and [SEP] in turn, and add up the log-probability the "
    "model gives the true piece there (model(batch).logits is [B, T, V]).",
)
def _check_pll(answer) -> tuple[bool, str]:
    import torch

    from .model import EncoderConfig, MaskedLM
    from .scoring import pll_of_ids

    torch.manual_seed(0)
    model = MaskedLM(EncoderConfig(vocab_size=40, max_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0)).eval()
    with torch.no_grad():  # a model with confident, context-dependent predictions
        model.encoder.tok_emb.weight.mul_(40)
    mask_id = 4
    sequences = [[2, 10, 11, 12, 3], [2, 20, 21, 22, 23, 24, 25, 3], [2, 30, 3]]
    for ids in sequences:
        want = pll_of_ids(model, [ids], mask_id=mask_id, pad_id=0)[0]
        got = _as_number(_call(answer, model, list(ids), mask_id))
        if abs(got - want) > 1e-4:
            with torch.no_grad():
                logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
                inner = [logp[t, ids[t]].item() for t in range(1, len(ids) - 1)]
                everywhere = [logp[t, ids[t]].item() for t in range(len(ids))]
                masked_all = []
                for t in range(len(ids)):
                    x = torch.tensor([ids])
                    x[0, t] = mask_id
                    masked_all.append(model(x).logits[0, t].log_softmax(-1)[ids[t]].item())
            n = len(ids) - 2
            hint = _hint(got, [
                (sum(inner), "nothing was masked: the model saw the piece it had to predict; mask position t before scoring it"),
                (sum(everywhere), "nothing was masked, and [CLS]/[SEP] were scored too"),
                (sum(masked_all), "[CLS] and [SEP] are not scored: only the pieces between them"),
                (want / n, "that is the mean; the PLL is the sum over the pieces"),
                (-want, "the sign is flipped: a PLL is a sum of log-probabilities, at most 0"),
            ], lambda g, w: abs(g - w) < 1e-4)
            return False, f"pll(model, {ids}) returned {got:.5f}, expected {want:.5f}{hint}"
    return True, f"agrees with pseudo_log_likelihood on {len(sequences)} sequences"
