"""Chapter 6, masking experiments: the checkers of its exercises."""

from __future__ import annotations

import math
import statistics

from .registry import masked_batch, register, call_answer, name_mistake, as_number, judge_choice, judge_prediction

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


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
        got = call_answer(answer, ids, selected, p_mask, p_random, mask_id, vocab, torch.Generator().manual_seed(1))
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
    cases = [[0.5, 0.7, 0.6], [3.21, 3.18, 3.40, 3.05], [1.0, 1.0], [0.1, 0.9], [2.5]]
    for values in cases:
        got = call_answer(answer, list(values))
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
            hint = name_mistake(sem, [
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
        got = call_answer(answer, epochs, copies)
        try:
            got = [int(x) for x in got]
        except (TypeError, ValueError):
            return False, f"times_seen({epochs}, {copies}) should return a list of {copies} ints, got {got!r:.80}"
        if got != want:
            hint = name_mistake(got, [
                ([epochs // copies] * copies, "the epochs left over when copies does not divide epochs go to the first copies"),
                ([-(-epochs // copies)] * copies, "not every copy gets the rounded-up count: the first epochs % copies copies get one more"),
                ([epochs] * copies, "each epoch uses one copy only"),
            ], lambda g, w: g == w)
            if not hint and sum(got) != epochs:
                hint = f" – the counts must add up to the {epochs} epochs"
            return False, f"times_seen({epochs}, {copies}) returned {got}, expected {want}{hint}"
    return True, "right, e.g. RoBERTa's 40 epochs with 10 copies: each mask seen 4 times"


def mean_run_length(tokenizer, texts, config, *, seed: int = 0, max_length: int = 64) -> float:
    """The mean number of words in a run of consecutive selected words, when ``config`` masks
    ``tokenizer.encode_batch(texts)`` (the reference of exercise 6.6)."""
    batch, out = masked_batch(tokenizer, texts, config, seed=seed, max_length=max_length)
    runs = []
    for b, words in enumerate(batch.word_ids):
        chosen = sorted({w for t, w in enumerate(words) if w is not None and out.selected[b, t]})
        for i, w in enumerate(chosen):
            if i == 0 or w != chosen[i - 1] + 1:
                runs.append(0)
            runs[-1] += 1
    return sum(runs) / len(runs)


@register(
    "06-predict-span-length",
    6,
    "Predict, then run: SpanBERT draws a span's length in words from a geometric distribution with "
    "p = 0.2, restricted to 1 ... 10 words. What is the mean length?",
)
def _check_predict_span_length(answer) -> tuple[bool, str]:
    weights = [0.2 * 0.8 ** (k - 1) for k in range(1, 11)]
    mean = sum(k * w for k, w in zip(range(1, 11), weights)) / sum(weights)
    return judge_prediction(answer, mean, within=0.25, relative=False, digits=2, what="a number of words", why=(
        "Without the limit, a geometric distribution with p = 0.2 has mean 1/p = 5 words. Restricting it to at most "
        "10 words drops the long spans and spreads their probability over the short ones, which brings the mean "
        "down to SpanBERT's 3.8."))


@register(
    "06-run-length",
    6,
    "Extend: write mean_run_length(tokenizer, texts, config, seed): mask tokenizer.encode_batch(texts, max_length=64) "
    "with config (mlm.mask_tokens_explained, torch.Generator().manual_seed(seed), the batch's word_ids) and return the "
    "mean number of words in a run of consecutive selected words.",
)
def _check_run_length(answer, *, tokenizer, texts) -> tuple[bool, str]:
    from ...masking import MaskingConfig

    got = {}
    for name, config in (("whole words", MaskingConfig(whole_word=True, span_p=1.0)), ("spans", MaskingConfig(whole_word=True, span_p=0.2))):
        for seed in (0, 1):
            want = mean_run_length(tokenizer, texts, config, seed=seed)
            value = as_number(call_answer(answer, tokenizer, texts, config, seed))
            if value < 1:
                return False, f"a run holds at least one word; your mean is {value:.3g} for {name} (seed {seed})"
            if abs(value - want) > 0.1 * want:  # the reference is not printed: it is what the function should find
                side = "long" if value > want else "short"
                hint = (" – count words, not pieces: a word of three pieces is one word of a run" if side == "long" else
                        " – a run continues while the next word index is selected too; do not start a new run at every word")
                return False, f"for {name} (seed {seed}) your mean run, {value:.2f} words, is too {side} (more than 10% off){hint}"
            got[name] = value
    return True, (f"runs of selected words: {got['whole words']:.2f} words with whole-word masking (neighbouring words chosen by "
                  f"chance), {got['spans']:.2f} with SpanBERT's spans – shorter than the spans' 3.8, because spans are cut "
                  f"at the end of a row and at words that would overflow the budget")


@register(
    "06-interpret-spans",
    6,
    "Interpret: in section 6.7 the models trained with spans end with a higher [MASK] loss than single pieces "
    "on both fixed masks, on every seed, yet are level downstream. What explains it best? (a) spans are a worse "
    "objective, and a span model would never catch up; (b) a span hides a word's neighbours too, so each prediction "
    "has less context nearby: after the same steps the span models are less far along a harder task, and the fixed "
    "masks leave neighbours in view, the easier task the others practised; (c) the span models masked fewer pieces; (d) each "
    "model was scored on masks drawn with its own seed.",
)
def _check_interpret_spans(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "the study stops after 1,000 steps and cannot say what happens later – SpanBERT trained to convergence "
             "and found spans as good as or better than single pieces on most tasks",
        "b": "the span models trained on a harder task – less context next to each hidden piece – and after the same "
             "steps they are less far along it, while the fixed masks test the easier one",
        "c": "the budgets are equal: the table's first column shows the same share of pieces masked for the three",
        "d": "every model is scored on the same fixed masks, drawn once with seed 0 – that is what makes the column "
             "comparable",
    }, right="b")
