"""Chapter 8, fine-tuning: the checkers of its exercises."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

from .registry import register, call_answer, name_mistake, as_list, judge_choice, judge_prediction

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


@register(
    "08-macro-f1",
    8,
    "Write macro_f1(y_true, y_pred, num_labels): the unweighted mean over all classes of the "
    "per-class F1 (a class never predicted and never true counts as F1 = 0).",
)
def _check_macro_f1(answer) -> tuple[bool, str]:
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


# -- predict, interpret, extend ---------------------------------------------------------------------


def majority_floor(task) -> dict:
    """Test accuracy and macro-F1 of a classifier that always answers the class with the most
    paragraphs in ``task``'s train split."""
    from ...finetuning import classification_metrics

    majority = Counter(ex.label for ex in task.train).most_common(1)[0][0]
    y_true = [ex.label for ex in task.test]
    return {"label": majority, **classification_metrics(y_true, [majority] * len(y_true), task.num_labels)}


def count_cosine_scores(queries, documents):
    """The reference of exercise 8.7: cosine similarities [queries, documents] of word-count vectors,
    words ``re.findall(r"\\w+", text.lower())``."""
    return _variant_scores(queries, documents, lambda text: re.findall(r"\w+", text.lower()))


def _variant_scores(queries, documents, words, normalise=True, binary=False):
    """Cosine similarities [queries, documents] of the word-count vectors of ``words(text)``: the
    reference (:func:`count_cosine_scores`) and, for the hints, the known variants of count_cosine
    (no normalisation, or each word counted once with ``binary``)."""
    def vector(text):
        c = Counter(words(text))
        return Counter(dict.fromkeys(c, 1)) if binary else c

    def norm(v):
        return (math.sqrt(sum(n * n for n in v.values())) or 1.0) if normalise else 1.0

    qs, ds = [vector(q) for q in queries], [vector(d) for d in documents]
    return [[sum(n * d[w] for w, n in q.items()) / (norm(q) * norm(d)) for d in ds] for q in qs]


@register(
    "08-majority-floor",
    8,
    "Predict, then run: a classifier that always answers the class with the most paragraphs in the train split of "
    "torch-subpackage – what macro-F1 does it score on the test split?",
)
def _check_majority_floor(answer, *, task) -> tuple[bool, str]:
    floor = majority_floor(task)
    share = sum(ex.label == floor["label"] for ex in task.test) / len(task.test)
    return judge_prediction(answer, floor["macro_f1"], within=0.015, relative=False, what="a macro-F1 between 0 and 1", why=(
        f"Only the class it always answers, '{task.label_names[floor['label']]}', gets an F1 above 0: its recall is 1 and its "
        f"precision is its share of the test paragraphs, {share:.3f}, so its F1 is 2 · {share:.3f} / (1 + {share:.3f}). "
        f"The other {task.num_labels - 1} classes are never predicted and score 0, and macro-F1 divides by all "
        f"{task.num_labels}. Its accuracy is the share itself – which is why the chapter reports macro-F1: every "
        f"encoder of section 8.4 is far above this floor."))


@register(
    "08-interpret-paired",
    8,
    "Interpret: in section 8.4, the ranges mean ± standard deviation of DAPT and of the general model on the topic "
    "task with 50 labels per class overlap, yet the table of paired differences calls DAPT − general clear. How can "
    "both be right? (a) the paired table uses other runs than the table of means; (b) a seed fixes the labelled "
    "subsample, the head's initialisation and the order for every starting point alike, so much of each score's "
    "spread is that seed's luck, shared by both – the paired difference subtracts it seed by seed and varies less "
    "than either score; (c) 'clear' means significant at the 1% level, which overlapping ranges cannot be; (d) the "
    "paired table leaves out the worst seed of each starting point.",
)
def _check_interpret_paired(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "both tables read the same five test scores per starting point, from the same benchmark file; only the "
             "arithmetic differs – a mean and spread of each, or of their seed-by-seed difference",
        "b": "a hard subsample is hard for every starting point, so the two scores rise and fall together; the "
             "difference on each seed cancels that shared luck, and its spread is smaller than either score's – "
             "DAPT is ahead on every seed",
        "c": "'clear' only means the paired mean is larger than its standard deviation – a paired t statistic above "
             "2.2 with five seeds (p ≈ 0.09, two-sided); and overlapping ranges of two scores say nothing about the "
             "spread of their difference",
        "d": "all five seeds enter both tables; nothing is left out",
    }, right="b")


@register(
    "08-count-cosine",
    8,
    "Extend: write count_cosine(queries, documents): the [queries, documents] matrix of cosine similarities between "
    "word-count vectors (words: re.findall(r\"\\w+\", text.lower())). The checker ranks the test documents for every "
    "query with it (rank_metrics) and compares its MRR with the package's measurement.",
)
def _check_count_cosine(answer, *, queries, documents) -> tuple[bool, str]:
    import torch

    from ...retrieval import bm25_scores, rank_metrics

    queries, documents = list(queries), list(documents)
    few = queries[:5]
    scores = call_answer(answer, few, few)
    try:
        scores = torch.as_tensor(scores, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False, f"return a [queries, documents] matrix of numbers (a list of lists or a tensor), got {type(scores).__name__}"
    if tuple(scores.shape) != (len(few), len(few)):
        return False, f"count_cosine(5 queries, the same 5 texts) returned shape {tuple(scores.shape)}, expected (5, 5): one row per query, one column per document"
    if not torch.allclose(scores.diagonal(), torch.ones(len(few), dtype=torch.float64), atol=1e-6):
        how = ("divide the dot product of the two count vectors by both vectors' lengths" if (scores.diagonal() > 1).any()
               else "count the words of each text and take the cosine of the two count vectors")
        return False, f"a text scored against itself must get a cosine of 1, got {[round(float(x), 3) for x in scores.diagonal()]}: {how}"
    if (scores < -1e-9).any() or (scores > 1 + 1e-6).any():
        return False, "word counts are never negative, so their cosines lie between 0 and 1; some of yours do not"
    got_scores = torch.as_tensor(call_answer(answer, queries, documents), dtype=torch.float64)
    if tuple(got_scores.shape) != (len(queries), len(documents)):
        return False, f"count_cosine(queries, documents) returned shape {tuple(got_scores.shape)}, expected ({len(queries)}, {len(documents)})"
    got = rank_metrics(got_scores)
    want = rank_metrics(count_cosine_scores(queries, documents))
    if abs(got["mrr"] - want["mrr"]) > 0.01:  # the measurement is not printed: it is what the function should find
        side = "high" if got["mrr"] > want["mrr"] else "low"
        hint = name_mistake(got["mrr"], [
            (rank_metrics(_variant_scores(queries, documents, lambda t: t.lower().split()))["mrr"],
             "split words with re.findall(r\"\\w+\", text.lower()): str.split() keeps punctuation on the words"),
            (rank_metrics(_variant_scores(queries, documents, lambda t: re.findall(r"\w+", t)))["mrr"],
             "lower-case the text first: 'Tensor' and 'tensor' are one word"),
            (rank_metrics(_variant_scores(queries, documents, lambda t: re.findall(r"\w+", t.lower()), binary=True))["mrr"],
             "count how often each word occurs, not only whether it does"),
        ], lambda g, w: abs(g - w) < 1e-9)
        return False, f"the MRR of your scores, {got['mrr']:.3f}, is too {side} (more than 0.01 from the package's measurement){hint}"
    bm25 = rank_metrics(bm25_scores(queries, documents))
    how = ("weighs a rare shared word above a common one (IDF), lets a word's count saturate and corrects for the "
           "document's length, where a cosine of counts lets 'the' and 'of' count like any other word")
    verdict = (f"BM25 ranks better: it {how}" if bm25["mrr"] > got["mrr"] else
               f"here word counts alone rank as well as BM25, which {how}")
    once = rank_metrics(_variant_scores(queries, documents, lambda t: re.findall(r"\w+", t.lower()), binary=True))["mrr"]
    repeats = (f"counting each word once, whether it occurs and not how often, gives MRR {once:.3f}: "
               + ("repeated common words weigh less that way" if once > got["mrr"] else "no better"))
    return True, (f"word counts alone: MRR {got['mrr']:.3f}, recall@1 {got['recall@1']:.3f}, recall@10 {got['recall@10']:.3f}; "
                  f"BM25 on the same pairs: MRR {bm25['mrr']:.3f}. {verdict}; {repeats}")
