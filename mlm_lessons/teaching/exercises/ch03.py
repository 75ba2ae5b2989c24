"""Chapter 3, the masked-LM loss: the checkers of its exercises."""

from __future__ import annotations

import math

from .registry import register, call_answer, name_mistake, as_number, judge_choice, judge_prediction

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


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
    import torch
    import torch.nn.functional as F

    from ...objective import masked_lm_loss

    def same(got, wrong):
        return math.isclose(got, float(wrong), rel_tol=1e-5, abs_tol=1e-6)

    for logits, labels in _loss_cases():
        want = masked_lm_loss(logits, labels).item()
        value = as_number(call_answer(answer, logits, labels))
        if not same(value, want):
            labelled, index = labels != -100, labels.clamp(min=0)[..., None]
            nll = -F.log_softmax(logits, -1).gather(-1, index).squeeze(-1)
            everywhere = "looks like you averaged over all positions, including those labelled -100: divide by the number of labelled positions"
            hint = name_mistake(value, [
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
    value = as_number(call_answer(answer, torch.randn(2, 3, 5), empty))
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
    from ...objective import masked_accuracy

    cases = []
    for logits, labels in _loss_cases():
        logits = logits.clone()
        labelled = (labels != -100).nonzero().tolist()
        for b, t in labelled[::2]:  # make every other labelled position a right prediction
            logits[b, t, labels[b, t]] += 20.0
        cases.append((logits, labels))
    for logits, labels in cases:
        got = as_number(call_answer(answer, logits, labels))
        want = masked_accuracy(logits, labels)
        if abs(got - want) > 1e-9:
            right, labelled = logits.argmax(-1) == labels, labels != -100
            hint = name_mistake(got, [
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
    import torch

    from ...objective import unigram_baseline

    cases = [torch.tensor([5, 5, 5, 5]), torch.tensor([0, 3, 1]), torch.tensor([100, 10, 1, 0, 0, 7])]
    for counts in cases:
        got = as_number(call_answer(answer, counts.clone()))
        want = unigram_baseline(counts)
        if got != got:
            return False, f"counts {counts.tolist()} gave nan: leave out the zero counts (0 log 0 = 0)"
        if abs(got - want) > 1e-6:
            hint = name_mistake(got, [
                (want / math.log(2), "that is in bits (log2): use the natural log for nats"),
                (-want, "the sign is flipped: the entropy is -Σ p log p, and never negative"),
            ], lambda g, w: abs(g - w) < 1e-6)
            return False, f"counts {counts.tolist()}: you computed {got:.6f}, expected {want:.6f}{hint}"
    return True, f"all {len(cases)} cases right"


@register(
    "03-predict-flat",
    3,
    "Predict, then run: divide the random logits of section 3.1 by 10 (a softmax temperature of 10). "
    "What is the masked-LM loss on the same labels?",
)
def _check_predict_flat(answer, *, logits, labels) -> tuple[bool, str]:
    from ...objective import masked_lm_loss

    measured = float(masked_lm_loss(logits / 10, labels))
    return judge_prediction(answer, measured, within=0.05, relative=False, what="a loss in nats", why=(
        f"Divided by 10, every logit is close to 0, and the softmax of nearly equal logits is nearly uniform: "
        f"the loss moves to log V = {math.log(logits.shape[-1]):.3f}, the uniform baseline, whatever the labels. "
        f"It is not the loss divided by 10: the loss is minus a log-probability, and the softmax turns small logits "
        f"into probabilities close to 1/V."))


@register(
    "03-interpret-mixed",
    3,
    "Interpret: on the mixed metric (all selected positions), a model scores a loss below the unigram's but above "
    "the best context-free loss of section 3.5. What does that show? (a) it has learned to use the context; "
    "(b) nothing yet about context: a model that reads no neighbour would score lower; (c) it is below log V, so "
    "it has learned what pretraining is for; (d) nothing, because the unigram should come from the other split.",
)
def _check_interpret_mixed(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "beating the unigram on the mixed metric needs no context: at a kept position the visible token is the "
             "answer, and a model that copies it when that pays beats the unigram on this metric without reading a "
             "single neighbour (section 3.5)",
        "b": "the best context-free model – token frequencies, plus copying the visible token when that pays – "
             "scores lower on this metric, so all the model shows could come without context; score it at the "
             "[MASK] positions, where the context-free optimum is the unigram",
        "c": "counting tokens alone, the unigram, is already far below log V: beating the uniform baseline shows "
             "only that the model learned which tokens are frequent",
        "d": "whichever split the frequencies come from (section 3.5 prints both), the baseline that matters for the "
             "mixed metric is the best context-free loss, and the model does not beat it",
    }, right="b")


def mixed_gap(tokenizer, texts, counts, masking) -> float:
    """The unigram's loss minus the best context-free loss on the mixed metric (all selected
    positions), on ``texts`` masked once with ``masking`` (512 sequences of 64 pieces, as in
    section 3.5): the reference of exercise 3.6."""
    from ...objective import context_free_baselines
    from ...training import TrainConfig, eval_batches

    batches = eval_batches(tokenizer, texts, TrainConfig(max_length=64, eval_sequences=512, masking=masking))
    out = context_free_baselines(batches, counts, masking, tokenizer.special_ids)
    return out["unigram_loss"] - out["loss"]


@register(
    "03-mixed-gap",
    3,
    "Extend: write mixed_gap(tokenizer, texts, counts, masking) that masks texts once with masking (eval_batches, "
    "TrainConfig(max_length=64, eval_sequences=512, masking=masking)) and returns, on the mixed metric, the "
    "unigram's loss minus the best context-free loss (mlm.context_free_baselines).",
)
def _check_mixed_gap(answer, *, tokenizer, texts, counts) -> tuple[bool, str]:
    from ...masking import MaskingConfig

    usual = MaskingConfig()  # 80% [MASK], 10% random, 10% kept
    got = as_number(call_answer(answer, tokenizer, texts, counts, usual))
    want = mixed_gap(tokenizer, texts, counts, usual)
    if abs(got - want) > 0.02:  # the measurement is not printed: it is what the function should find
        side = "high" if got > want else "low"
        hint = name_mistake(got, [
            (-want, "the sign is flipped: the gap is the unigram's loss minus the context-free loss"),
        ], lambda g, w: abs(g - w) < 0.02) or (
            " – the gap is unigram_loss − loss of the dict context_free_baselines returns (both over all selected positions)")
        return False, f"with BERT's 80/10/10 your gap, {got:.3f}, is too {side} (more than 0.02 from the package's measurement){hint}"
    nothing_kept = MaskingConfig(p_mask=0.8, p_random=0.2, p_keep=0.0)
    zero = as_number(call_answer(answer, tokenizer, texts, counts, nothing_kept))
    if abs(zero) > 1e-6:
        hint = (" – give context_free_baselines the masking the batches were made with" if zero < 0 else
                " – mask the texts with the masking you are given, not BERT's")
        return False, (f"with 80% [MASK], 20% random and nothing kept your gap is {zero:.3f}, but then a visible token is "
                       f"never the answer, copying never pays and the best context-free model is the unigram: the gap "
                       f"must be 0{hint}")
    more_kept = MaskingConfig(p_mask=0.5, p_random=0.1, p_keep=0.4)
    more = as_number(call_answer(answer, tokenizer, texts, counts, more_kept))
    if more <= got:
        return False, (f"with 40% of the selected tokens kept your gap, {more:.3f}, is not larger than with 10% ({got:.3f}), "
                       f"but the more tokens are kept, the more often copying the visible token is right – mask the texts "
                       f"with the masking you are given, and give context_free_baselines the same one")
    want_more = mixed_gap(tokenizer, texts, counts, more_kept)
    if abs(more - want_more) > 0.02:
        side = "high" if more > want_more else "low"
        return False, (f"with 50% [MASK], 10% random and 40% kept your gap, {more:.3f}, is too {side} (more than 0.02 from "
                       f"the package's measurement) – mask the texts with the masking you are given, and give "
                       f"context_free_baselines the same one")
    return True, (f"the mixed metric's gift to a model that reads no context: {want:.2f} nats with 80/10/10, none when "
                  f"nothing is kept, {want_more:.2f} with 40% kept – it grows with the keep share, which is why the book "
                  f"scores the [MASK] positions")
