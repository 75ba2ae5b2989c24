"""Chapter 7, domain-adaptive pretraining: the checkers of its exercises."""

from __future__ import annotations

import copy
import math
from collections import Counter

from .registry import AnswerError, register, call_answer, name_mistake, judge_choice, judge_prediction

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


@register(
    "07-overlap",
    7,
    "Write overlap(counts_a, counts_b, k, stop_words): the share of the k most frequent words of "
    "each Counter, stop words left out, that the two have in common (|top_a ∩ top_b| / k).",
)
def _check_overlap(answer) -> tuple[bool, str]:
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


# -- predict, interpret, extend ---------------------------------------------------------------------


def blend_weights(general, adapted, alpha: float):
    """A new model whose every weight is ``(1 - alpha) * general + alpha * adapted`` (the reference
    of exercise 7.6; the two models, of one configuration, are left as they are)."""
    import torch

    if general.config.to_dict() != adapted.config.to_dict():
        raise ValueError("blend needs two models of the same configuration (the same vocabulary and sizes)")
    blended = copy.deepcopy(general)
    ours, theirs = general.state_dict(), adapted.state_dict()
    with torch.no_grad():
        blended.load_state_dict({k: (1 - alpha) * v + alpha * theirs[k] if v.is_floating_point() else v.clone()
                                 for k, v in ours.items()})
    return blended


@register(
    "07-uniform-bits",
    7,
    "Predict, then run: a model that knows nothing gives each piece of the vocabulary the same probability. What "
    "bits per character would it score on the hidden words of section 7.8, read with the general tokenizer?",
)
def _check_uniform_bits(answer, *, scored, tokenizer) -> tuple[bool, str]:
    bits_per_piece = math.log2(tokenizer.vocab_size)
    measured = scored.pieces * bits_per_piece / scored.characters
    chars_per_word = scored.characters / scored.words
    return judge_prediction(answer, measured, within=0.1, what="bits per character", why=(
        f"With all {tokenizer.vocab_size:,} pieces equally likely, every piece costs log2 {tokenizer.vocab_size:,} ≈ "
        f"{bits_per_piece:.1f} bits, whichever it is. The hidden words average {scored.pieces_per_word:.2f} pieces and "
        f"{chars_per_word:.2f} characters, so a character costs {scored.pieces_per_word:.2f} × {bits_per_piece:.1f} / "
        f"{chars_per_word:.2f} bits. How far a trained model is below this line is what it has learned about those words."))


@register(
    "07-interpret-kept",
    7,
    "Interpret: on a small domain corpus at a bold rate, early stopping kept the weights of an early evaluation "
    "(section 7.4), and fine-tuning then found the kept and the last weights alike on the domain's tasks. What "
    "follows? (a) stopping early made fine-tuning better on every task; (b) the last weights are better for the "
    "domain's tasks, because they trained on the domain for longer; (c) on the domain's tasks the two are level – "
    "every paired difference is within its seed-to-seed spread – and what stopping early saved is the general "
    "text's loss and the compute of the skipped steps; (d) five seeds are too few to show any difference, so the "
    "benchmark says nothing.",
)
def _check_interpret_kept(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "the paired differences go both ways – with 10 labels per class on the topic task the last weights are "
             "ahead on most seeds – and each is smaller than its spread over the seeds",
        "b": "the last weights saw the same few hundred documents again and again: their domain validation loss is no "
             "better than the kept weights', and downstream the differences go both ways, each inside its spread",
        "c": "the domain's validation loss was flat after its best step, and fine-tuning agreed that the extra steps "
             "bought nothing on the domain; what they cost shows on the general text's loss, which kept climbing",
        "d": "five paired seeds can show a clear difference: on the same seeds, section 7.3's DAPT is clearly ahead of "
             "both the kept and the last weights – by more than the spread – on the topic task with 10 labels per class",
    }, right="c")


def _losses(model, batches) -> dict:
    import torch

    from ...training import evaluate

    return {name: evaluate(model, b, torch.device("cpu"))["mask_loss"] for name, b in batches.items()}


@register(
    "07-blend",
    7,
    "Extend: write blend(general, adapted, alpha): a new MaskedLM whose every weight is (1 − alpha) · the general "
    "model's + alpha · the adapted model's, both models left as they are. The checker compares the blend's "
    "[MASK] losses on the domain's and the general validation text with those of the package's blend.",
)
def _check_blend(answer, *, general, adapted, tokenizer, domain_texts, general_texts, config) -> tuple[bool, str]:
    import torch

    from ...model import MaskedLM
    from ...training import eval_batches

    originals = {"general": (general, {k: v.clone() for k, v in general.state_dict().items()}),
                 "adapted": (adapted, {k: v.clone() for k, v in adapted.state_dict().items()})}

    def same_weights(state, want) -> bool:
        return set(state) == set(want) and all(state[k].shape == v.shape and torch.allclose(state[k].float(), v.float(), atol=1e-6)
                                               for k, v in want.items())

    def blended(alpha):
        got = call_answer(answer, general, adapted, alpha)
        for name, (model, state) in originals.items():
            if not same_weights(model.state_dict(), state):
                raise AnswerError(f"blend(general, adapted, {alpha}) changed the {name} model's weights; build a new model "
                                  f"(copy.deepcopy(general), then load the blended weights) and leave both as they are")
        if not isinstance(got, MaskedLM):
            raise AnswerError(f"blend should return a MaskedLM (copy.deepcopy(general), then load the blended weights), "
                              f"got {type(got).__name__}")
        if got is general or got is adapted:
            raise AnswerError("blend returned one of the two models it was given; return a new one")
        return got

    got = blended(0.25)
    want = blend_weights(general, adapted, 0.25).state_dict()
    state = got.state_dict()
    if not same_weights(state, want):
        if set(state) != set(want) or any(state[k].shape != v.shape for k, v in want.items()):
            return False, "blend(general, adapted, 0.25) has other weights than the two models (names or shapes): start from copy.deepcopy(general)"
        first = next(k for k, v in want.items() if not torch.allclose(state[k].float(), v.float(), atol=1e-6))
        hint = name_mistake(state, [
            (blend_weights(general, adapted, 0.75).state_dict(), "swapped: alpha is the adapted model's share, (1 − alpha) · general + alpha · adapted"),
            (originals["general"][1], "those are the general model's weights: mix in alpha of the adapted model's"),
            (originals["adapted"][1], "those are the adapted model's weights: keep (1 − alpha) of the general model's"),
        ], same_weights)
        return False, f"blend(general, adapted, 0.25) does not hold 0.75 · general + 0.25 · adapted (first difference in {first}){hint}"
    for alpha, name in ((0.0, "general"), (1.0, "adapted")):
        if not same_weights(blended(alpha).state_dict(), originals[name][1]):
            return False, f"blend(general, adapted, {alpha:g}) must give the {name} model's weights exactly"
    batches = {"domain": eval_batches(tokenizer, domain_texts, config), "general": eval_batches(tokenizer, general_texts, config)}
    half, reference = _losses(blended(0.5), batches), _losses(blend_weights(general, adapted, 0.5), batches)
    for name in batches:
        if abs(half[name] - reference[name]) > 0.01:  # the measurement is not printed: it is what the blend should score
            return False, (f"at alpha 0.5 your blend's [MASK] loss on the {name} validation text, {half[name]:.3f}, is more "
                           f"than 0.01 nats from the package's blend's")
    ends = {"general": _losses(general, batches), "adapted": _losses(adapted, batches)}
    g, a = ends["general"], ends["adapted"]
    message = (f"halfway (alpha 0.5), the [MASK] loss is {half['domain']:.2f} on the domain's text (general model "
               f"{g['domain']:.2f}, adapted {a['domain']:.2f}) and {half['general']:.2f} on the general text (general model "
               f"{g['general']:.2f}, adapted {a['general']:.2f})")
    gain, forgot = g["domain"] - a["domain"], a["general"] - g["general"]
    if gain > 0.05 and forgot > 0.05:
        kept = (g["domain"] - half["domain"]) / gain
        undone = (a["general"] - half["general"]) / forgot
        if 0 < kept and 0 < undone:
            message += (f": the blend keeps {kept:.0%} of the adapted model's gain on the domain and undoes {undone:.0%} of "
                        f"its rise on the general text – one way to trade what DAPT learns against what it forgets")
    return True, message
