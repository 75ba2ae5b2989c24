"""Chapter 8, fine-tuning: the checkers of its exercises."""

from __future__ import annotations

from .registry import register, call_answer, name_mistake, as_list


@register(
    "08-macro-f1",
    8,
    "Write macro_f1(y_true, y_pred, num_labels): the unweighted mean over all classes of the "
    "per-class F1 (a class never predicted and never true counts as F1 = 0).",
)
def _check_macro_f1(answer) -> tuple[bool, str]:
    import random

    from ...finetuning import classification_metrics, f1_score

    rng = random.Random(8)
    cases = [([0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 0, 0], 3), ([0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1], 3),
             ([0, 0, 1, 1], [0, 1, 1, 1], 3)]  # class 2 neither true nor predicted: it still counts, as 0
    cases += [([rng.randrange(4) for _ in range(40)], [rng.randrange(4) for _ in range(40)], 4) for _ in range(3)]
    for y_true, y_pred, c in cases:
        want = classification_metrics(y_true, y_pred, c)
        got = call_answer(answer, y_true, y_pred, c, hints={ZeroDivisionError: (
            "a class never predicted (or never true) has 0/0 precision (or recall): count its F1 as 2·tp / (2·tp + fp + fn), 0 when all are 0")})
        if not isinstance(got, (int, float)) or abs(got - want["macro_f1"]) > 1e-9:
            pairs = list(zip(y_true, y_pred))
            f1 = [f1_score(sum(t == k and p == k for t, p in pairs), sum(t != k and p == k for t, p in pairs),
                      sum(t == k and p != k for t, p in pairs)) for k in range(c)]
            hint = name_mistake(got, [
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
        got = as_list(call_answer(answer, word_ids, labels))
        if got != want:
            hint = name_mistake(got, [
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
    from ...finetuning import tagging_metrics

    cases = [
        ([[0, 1, 1, 0, 1]], [[0, 1, 1, 0, 1]]),
        ([[0, 1, 1, 0, 1]], [[0, 1, 1, 1, 1]]),
        ([[1, 1, 0, 0], [0, 1, 0, 1]], [[1, 0, 0, 0], [0, 1, 0, 1]]),
        ([[0, 0, 1]], [[0, 0, 0]]),
        ([[1, 0, 1, 0, 1]], [[1, 0, 0, 0, 0]]),  # precision 1, recall 1/3
    ]
    for gold, pred in cases:
        want = tagging_metrics(gold, pred)
        got = call_answer(answer, gold, pred, hints={ZeroDivisionError: (
            "with no predicted span, or no span right, precision, recall and F1 are 0: guard the divisions (0/0)")})
        if not isinstance(got, (int, float)) or abs(got - want["span_f1"]) > 1e-9:
            hint = name_mistake(got, [
                (want["token_f1"], "that is the word-level F1; a span counts only if its first and last word both match"),
                (want["span_precision"], "that is the span precision; F1 = 2PR / (P + R) needs the recall too"),
                (want["span_recall"], "that is the span recall; F1 = 2PR / (P + R) needs the precision too"),
            ], lambda g, w: abs(g - w) < 1e-9)
            return False, f"span_f1({gold}, {pred}) returned {got!r}, expected {want['span_f1']:.4f}{hint}"
    return True, "right: a span one word too long or too short earns nothing"



@register(
    "08-mrr",
    8,
    "Write mean_reciprocal_rank(scores): scores[q][d] is query q's score for document d, and query q's "
    "one right document is d = q. A query's rank is 1 + the number of other documents scoring at least as "
    "high as the right one (a tie counts against it); return the mean of 1 / rank over the queries.",
)
def _check_mrr(answer) -> tuple[bool, str]:
    import random

    from ...retrieval import rank_metrics

    rng = random.Random(8)
    cases = [[[3.0, 1.0], [0.5, 2.0]], [[1.0, 2.0, 0.0], [2.0, 1.0, 3.0], [0.0, 0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]]
    cases += [[[float(rng.randrange(3)) for _ in range(5)] for _ in range(5)] for _ in range(3)]
    for scores in cases:
        want = rank_metrics(scores)["mrr"]
        got = call_answer(answer, scores, hints={ZeroDivisionError: "ranks start at 1, not 0: the top document's rank is 1"})
        if not isinstance(got, (int, float)) or abs(got - want) > 1e-9:
            n = len(scores)
            above = [sum(row[d] > row[q] for d in range(n) if d != q) for q, row in enumerate(scores)]
            ties = [sum(row[d] == row[q] for d in range(n) if d != q) for q, row in enumerate(scores)]
            hint = name_mistake(got, [
                (sum(1 / (1 + a) for a in above) / n, "a document that ties with the right one counts as ranked above it"),
                (sum(1 + a + t for a, t in zip(above, ties)) / n, "that is the mean rank; average 1 / rank instead"),
                (sum(1 / (a + t) if a + t else 1.0 for a, t in zip(above, ties)) / n, "ranks start at 1, not 0"),
            ], lambda g, w: abs(g - w) < 1e-9)
            return False, f"mean_reciprocal_rank({scores}) returned {got!r}, expected {want:.4f}{hint}"
    return True, "right, ties included: a scorer that gives every document the same score earns 1 / (number of documents)"

# -- chapter 6 ------------------------------------------------------------------------------
