"""Chapter 3, the masked-LM loss: the checkers of its exercises."""

from __future__ import annotations

from .registry import register, call_answer, name_mistake, as_number


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
    import math

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


# -- chapter 4 ------------------------------------------------------------------------------
