"""Chapter 7, domain-adaptive pretraining: the checkers of its exercises."""

from __future__ import annotations

from .registry import register, call_answer, name_mistake


@register(
    "07-overlap",
    7,
    "Write overlap(counts_a, counts_b, k, stop_words): the share of the k most frequent words of "
    "each Counter, stop words left out, that the two have in common (|top_a ∩ top_b| / k).",
)
def _check_overlap(answer) -> tuple[bool, str]:
    from collections import Counter

    from ...corpus.stats import top_words, vocabulary_overlap

    stop = frozenset({"the", "of", "a"})
    a = Counter({"the": 100, "of": 90, "tensor": 50, "gradient": 40, "list": 30, "dict": 20, "string": 10, "a": 5})
    b = Counter({"the": 120, "of": 100, "a": 80, "array": 60, "axis": 45, "dtype": 35, "tensor": 25, "gradient": 15})
    cases = [((a, b, 2), "the top 2"), ((a, b, 4), "the top 4"), ((a, a, 3), "a corpus with itself")]
    for (ca, cb, k), what in cases:
        want = vocabulary_overlap(ca, cb, k, stop_words=stop)
        got = call_answer(answer, ca, cb, k, stop)
        if not isinstance(got, (int, float)) or abs(got - want) > 1e-12:
            top_a, top_b = set(top_words(ca, k, stop_words=stop)), set(top_words(cb, k, stop_words=stop))
            hint = name_mistake(got, [
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
        got = call_answer(answer, emb, pieces)
        if not torch.equal(emb, torch.arange(12, dtype=torch.float32).reshape(6, 2) ** 1.5):
            return False, "new_rows changed the embedding matrix it was given; old rows must stay as they are"
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return False, f"new_rows(emb, {pieces}) should be a tensor of shape {tuple(want.shape)}, got {getattr(got, 'shape', type(got).__name__)}"
        if not torch.allclose(got, want):
            hint = name_mistake(got, [
                (torch.stack([emb[p].sum(0) for p in pieces]), "you summed the pieces' rows; take their mean"),
                (torch.stack([emb[p[0]] for p in pieces]), "you took the first piece only; average all pieces"),
            ], torch.allclose)
            return False, f"new_rows(emb, {pieces}) returned {got.tolist()}, expected {want.tolist()}{hint}"
    return True, "right: each new row is the mean of its pieces, and the old rows are untouched"


def reference_early_stop(losses, patience, equal_improves=False):
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
        want = reference_early_stop(losses, patience)
        got = call_answer(answer, losses, patience)
        got = tuple(got) if isinstance(got, (tuple, list)) else got
        if got != want:
            hint = name_mistake(got, [
                (reference_early_stop(losses, patience, equal_improves=True), "an equal loss is no improvement: only a lower loss resets the count"),
                (reference_early_stop(losses, patience + 1),
                 "that stops one evaluation too late: stop as soon as the count of evaluations without improvement reaches patience"),
            ], lambda g, w: g == w)
            if not hint and isinstance(got, tuple) and len(got) == 2:
                hint = (" – keep the weights of the best evaluation, not of the last" if got[0] == losses[-1][0]
                        else " – count the evaluations without improvement since the best one" if got[1] != want[1] else "")
            return False, f"early_stop({losses}, patience={patience}) returned {got!r}, expected {want}{hint}"
    return True, "right: the best step is kept, and training stops after `patience` evaluations without improvement"


# -- chapter 8 ------------------------------------------------------------------------------
