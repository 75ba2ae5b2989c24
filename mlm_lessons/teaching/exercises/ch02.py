"""Chapter 2, masking: the checkers of its exercises."""

from __future__ import annotations

from .registry import register, call_answer, name_mistake, first_mismatch


@register(
    "02-select",
    2,
    "Write how_many(n, ratio) that returns how many of n eligible positions BERT's exact "
    "selection picks.",
)
def _check_select(answer) -> tuple[bool, str]:
    import math

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


# -- chapter 3 ------------------------------------------------------------------------------
