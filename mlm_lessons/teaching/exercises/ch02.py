"""Chapter 2, masking: the checkers of its exercises."""

from __future__ import annotations

import math

from .registry import masked_batch, register, call_answer, name_mistake, first_mismatch, judge_choice, judge_prediction, as_number

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


@register(
    "02-select",
    2,
    "Write how_many(n, ratio) that returns how many of n eligible positions BERT's exact "
    "selection picks.",
)
def _check_select(answer) -> tuple[bool, str]:
    from ...masking import num_to_select

    cases = [((n, r), num_to_select(n, r)) for r in (0.15, 0.25, 0.5, 0.01, 1.0) for n in (0, 1, 2, 3, 6, 10, 14, 30, 127)]

    def describe(args, got, want):
        n, ratio = args
        x = ratio * n
        if n == 0:
            hint = " – a sequence with no eligible position gets 0"
        elif want == 1 and got == 0:
            hint = " – at least one position is always selected"
        else:
            hint = name_mistake(got, [
                (max(1, math.floor(x + 0.5)), "Python's round() sends a half to the even neighbour (round(4.5) == 4): use round(), not int(x + 0.5)"),
                (max(1, int(x)), "int() drops the fraction: round to the nearest with round(ratio * n)"),
                (max(1, math.ceil(x)), "math.ceil() rounds up: round to the nearest with round(ratio * n)"),
                (x, "return a whole number of positions: round(ratio * n)"),
            ], lambda g, w: g == w)
        return f"how_many({n}, {ratio}) returned {got!r}, expected {want}{hint}"

    return first_mismatch(answer, cases, describe) or (True, f"all {len(cases)} cases right")


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
        got = call_answer(answer, ids, selected)
        want = torch.where(selected, before, torch.full_like(before, -100))
        if not torch.equal(ids, before):
            return False, "your function modified input_ids; work on a copy (torch.where or .clone())"
        if not isinstance(got, torch.Tensor):
            return False, f"return a tensor of shape {tuple(want.shape)} (torch.where gives one), got {type(got).__name__}"
        if got.shape != want.shape or not torch.equal(got, want):
            hint = name_mistake(got, [
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
        got = call_answer(answer, dict(shares), changed, value,
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


def selected_piece_share(tokenizer, texts, config, *, seed: int = 0, max_length: int = 64) -> float:
    """The share of the real pieces of ``texts`` (encoded as one batch) that ``config`` selects."""
    import torch

    batch, out = masked_batch(tokenizer, texts, config, seed=seed, max_length=max_length)
    real = ~torch.isin(batch.input_ids, torch.tensor(sorted(tokenizer.special_ids)))
    return int(out.selected.sum()) / int(real.sum())


def partly_hidden_share(tokenizer, texts, config, *, seed: int = 0, max_length: int = 64) -> float:
    """Of the selected pieces that belong to words of two pieces or more, the share whose word keeps
    at least one piece unselected (the reference of exercise 2.6)."""
    batch, out = masked_batch(tokenizer, texts, config, seed=seed, max_length=max_length)
    partly = total = 0
    for b, words in enumerate(batch.word_ids):
        pieces: dict[int, list[bool]] = {}
        for t, w in enumerate(words):
            if w is not None:
                pieces.setdefault(w, []).append(bool(out.selected[b, t]))
        for flags in pieces.values():
            if len(flags) > 1 and any(flags):
                total += sum(flags)
                partly += sum(flags) if not all(flags) else 0
    return partly / total if total else 0.0


@register(
    "02-predict-pieces",
    2,
    "Predict, then run: whole-word masking selects 15% of the *words* of each sequence. What share of "
    "the *pieces* does that select, on 256 validation sequences?",
)
def _check_predict_pieces(answer, *, tokenizer, texts) -> tuple[bool, str]:
    from ...masking import MaskingConfig

    measured = selected_piece_share(tokenizer, texts, MaskingConfig(whole_word=True))
    return judge_prediction(answer, measured, within=0.01, relative=False, what="a share between 0 and 1", why=(
        "Each word is chosen with the same probability whatever its length, so on average a chosen word has as "
        "many pieces as any word: the share of pieces is about the share of words. Rounding a short sequence's "
        "count up to at least one word adds a little."))


@register(
    "02-interpret-nsp",
    2,
    "Interpret: word overlap alone gets most held-out NSP pairs right (section 2.8). What does that show? "
    "(a) NSP never helps any task; (b) a model can do well on NSP by noticing that two sentences share a topic, "
    "so NSP accuracy says little about whether it learned how sentences follow each other; (c) a better "
    "threshold would make the overlap rule right on every pair; (d) NotNext pairs are much more common than "
    "IsNext pairs in our data.",
)
def _check_interpret_nsp(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "too strong: the rule shows the task is easy by topic, not that it never helps – BERT's own ablation "
             "found it helped, with its two-segment inputs",
        "b": "NotNext sentences come from other documents, usually about something else, so shared words give them "
             "away; ALBERT replaced NSP by sentence order for that reason",
        "c": "the threshold is already the most accurate one on the training pairs, and the printed training accuracy "
             "is far from 100%: many consecutive sentences share no word",
        "d": "the printed share of IsNext pairs is about a half, as BERT's sampling makes it; guessing the larger "
             "class gets about 50%",
    }, right="b")


@register(
    "02-partly-hidden",
    2,
    "Extend: write partly_hidden_share(tokenizer, texts, config, seed): mask tokenizer.encode_batch(texts, "
    "max_length=64) with config (mlm.mask_tokens_explained, torch.Generator().manual_seed(seed), the batch's "
    "word_ids) and return, of the selected pieces that belong to words of two pieces or more, the share whose "
    "word keeps at least one piece unselected.",
)
def _check_partly_hidden(answer, *, tokenizer, texts) -> tuple[bool, str]:
    from ...masking import MaskingConfig

    pieces, words = MaskingConfig(), MaskingConfig(whole_word=True)
    for seed in (0, 1):
        want = partly_hidden_share(tokenizer, texts, pieces, seed=seed)
        got = as_number(call_answer(answer, tokenizer, texts, pieces, seed))
        if not 0 <= got <= 1:
            return False, f"a share lies between 0 and 1, got {got:.3g} with single-piece masking (seed {seed})"
        if abs(got - want) > 0.03:  # the measurement is not printed: it is what the function should find
            side = "high" if got > want else "low"
            hint = (" – a selected piece counts when its word has another piece that is not selected" if got == 0 else
                    " – the denominator is the selected pieces of words with two pieces or more, not all selected pieces"
                    if side == "low" else " – a piece counts only when its own word keeps a piece unselected")
            return False, f"with single-piece masking (seed {seed}) your share, {got:.3f}, is too {side} (more than 0.03 from the package's measurement){hint}"
    whole = as_number(call_answer(answer, tokenizer, texts, words, 0))
    if whole != 0:
        return False, (f"with whole-word masking your share is {whole:.3f}, but whole-word masking selects every piece "
                       f"of a chosen word: no selected word keeps a piece visible, so the share must be 0")
    return True, (f"with single-piece masking about {want:.0%} of the pieces it hides in words of several pieces keep "
                  f"part of their word visible; with whole-word masking none do – chapter 6 asks whether that matters")
