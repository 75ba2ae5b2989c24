"""Exercise checkers: right answers pass, wrong answers fail with a message that helps."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
import re
import sys

import pytest

import mlm_lessons as mlm
from mlm_lessons.teaching.exercises import exercises

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402


def test_every_exercise_is_registered():
    """The exercises the chapters check are exactly the registered ones, each in its chapter."""
    import json
    import re
    from pathlib import Path

    book = Path(__file__).resolve().parents[1] / "book"
    used = {}
    for path in sorted(book.glob("[01][0-9]_*.ipynb")):
        source = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        for exercise in re.findall(r'mlm\.check\("([0-9]{2}-[a-z0-9-]+)"', source):
            used[exercise] = int(path.name[:2])
    assert {e.id: e.chapter for e in exercises()} == used
    assert all(int(e.id[:2]) == e.chapter and e.prompt for e in exercises())
    for chapter in range(1, 11):
        assert len(exercises(chapter)) >= 3, f"chapter {chapter} has {len(exercises(chapter))} exercises"




def test_a_stub_is_not_written_yet():
    def stub(*args):
        raise NotImplementedError

    for exercise_id in ("01-roles", "03-loss", "08-span-f1"):
        result = mlm.check(exercise_id, stub)
        assert not result and result.message == "not written yet: replace `raise NotImplementedError` with your code"


def strip_roles(text):
    def content(m):
        body = m.group(2)
        titled = re.match(r"(.*?)\s*<[^<>]+>$", body)
        if titled:
            return titled.group(1)
        return body[1:].rsplit(".", 1)[-1] if body.startswith("~") else body

    return re.sub(r":(\w+):`([^`]+)`", content, text)


def test_roles():
    assert mlm.check("01-roles", strip_roles)
    rejected("01-roles", lambda t: re.sub(r":(\w+):`([^`]+)`", r"\2", t), "expected 'Linear' – a ~-prefixed target shows only its last part")
    rejected("01-roles", lambda t: re.sub(r":\w+:", "", t), "the backticks go too")

    def titles_kept(text):
        return re.sub(r":\w+:`(~?)([^`]+)`", lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)

    rejected("01-roles", titles_kept, "keep only the title, without the <target>")
    crashing = mlm.check("01-roles", lambda t: t.no_such_method())
    assert not crashing and "raised AttributeError" in crashing.message
    assert repr(crashing).startswith("✘ 01-roles:")
    assert not mlm.check("01-roles", "not a function")


def test_leaks():
    from itertools import combinations

    def texts(corpus):
        return [[" ".join(d.text.split()).lower() for d in s] for s in (corpus.train, corpus.valid, corpus.test)]

    def leaks(corpus):
        return sum(n > 1 for n in Counter(t for s in texts(corpus) for t in set(s)).values())

    assert mlm.check("01-leaks", leaks)
    rejected("01-leaks", lambda c: len({d.text for d in c.train} & ({d.text for d in c.valid} | {d.text for d in c.test})),
             "equal after lowercasing and collapsing spaces")
    rejected("01-leaks", lambda c: sum(len(set(a) & set(b)) for a, b in combinations(texts(c), 2)), "each text counts once")
    rejected("01-leaks", lambda c: sum(n > 1 for n in Counter(t for s in texts(c) for t in s).values()), "a duplicate inside one split is not a leak")


def test_fragmentation(general_tok):
    def right(tok, words, pieces=lambda tok, w: tok.tokenize(w), split=lambda n: n > 1):
        n = [len(pieces(tok, w)) for w in words]
        return sum(n) / len(n), sum(split(k) for k in n) / len(n)

    assert mlm.check("01-fragmentation", right, tokenizer=general_tok)
    rejected("01-fragmentation", lambda tok, words: right(tok, words, pieces=lambda tok, w: tok.encode(w)), "you counted [CLS] and [SEP]",
             tokenizer=general_tok)
    rejected("01-fragmentation", lambda tok, words: right(tok, words, split=lambda n: n >= 1), "(n > 1), not n >= 1", tokenizer=general_tok)
    rejected("01-fragmentation", lambda tok, words: right(tok, words)[::-1], "the wrong way round", tokenizer=general_tok)
    rejected("01-fragmentation", lambda tok, words: (1.0, 0.0), "you counted words, not pieces", tokenizer=general_tok)
    rejected("01-fragmentation", lambda tok, words: 1.0, "return a pair", tokenizer=general_tok)


def test_closer(general_tok, corpora):
    results = {a: mlm.check("01-closer", a, tokenizer=general_tok, corpora=corpora) for a in ("python-docs", "pytorch-docs")}
    assert sorted(map(bool, results.values())) == [False, True]
    wrong = next(r for r in results.values() if not r)
    assert "is closer to" in wrong.message and "than to" in wrong.message
    rejected("01-closer", "pytorch", "answer 'python-docs' or 'pytorch-docs', got 'pytorch'", tokenizer=general_tok, corpora=corpora)


def test_unknown_exercise():
    with pytest.raises(ValueError, match="unknown exercise '99-x'; known: 01-closer"):
        mlm.check("99-x", None)


def test_chapter_two_checkers():
    import math

    import torch

    from mlm_lessons.teaching.widgets import rebalance

    assert mlm.check("02-select", mlm.num_to_select)
    assert mlm.check("02-select", lambda n, r: 0 if n == 0 else max(1, round(r * n)))  # the notebook's solution
    rejected("02-select", lambda n, r: round(r * n), "at least one position is always selected")
    rejected("02-select", lambda n, r: max(1, round(r * n)), "no eligible position gets 0")
    rejected("02-select", lambda n, r: 0 if n == 0 else max(1, int(r * n)), "int() drops the fraction")
    rejected("02-select", lambda n, r: 0 if n == 0 else max(1, math.ceil(r * n)), "math.ceil() rounds up")
    rejected("02-select", lambda n, r: 0 if n == 0 else max(1, math.floor(r * n + 0.5)), "sends a half to the even neighbour")

    assert mlm.check("02-labels", lambda ids, sel: torch.where(sel, ids, torch.full_like(ids, -100)))

    def in_place(ids, sel):
        ids[~sel] = -100
        return ids

    rejected("02-labels", in_place, "modified input_ids")
    rejected("02-labels", lambda ids, sel: torch.where(sel, torch.full_like(ids, -100), ids), "swapped")
    rejected("02-labels", lambda ids, sel: torch.where(sel, ids, 0), "get -100 (the loss skips them), not 0")

    def rounds_both(shares, changed, value):
        a, b = (k for k in shares if k != changed)
        total = shares[a] + shares[b]
        return {changed: value, a: round((100 - value) * shares[a] / total), b: round((100 - value) * shares[b] / total)}

    def no_zero_case(shares, changed, value):
        a, b = (k for k in shares if k != changed)
        new_a = round((100 - value) * shares[a] / (shares[a] + shares[b]))
        return {changed: value, a: new_a, b: 100 - value - new_a}

    assert mlm.check("02-rebalance", rebalance)
    rejected("02-rebalance", lambda s, c, v: {**{k: 0 for k in s}, c: v, [k for k in s if k != c][0]: 100 - v}, "keep their proportion")
    rejected("02-rebalance", rounds_both, "sum to 101, not 100 – rounding both shares on their own")
    rejected("02-rebalance", no_zero_case, "when random and keep are both 0, split the rest equally")
    rejected("02-rebalance", lambda s, c, v: {**s, c: v}, "must change so that the three sum to 100")


def test_chapter_three_checkers():
    import math

    import torch
    import torch.nn.functional as F

    from mlm_lessons.objective import masked_accuracy, masked_lm_loss, unigram_baseline

    def my_masked_loss(logits, labels):  # the notebook's solution
        selected = labels != -100
        safe = torch.where(selected, labels, torch.zeros_like(labels))
        nll = -F.log_softmax(logits, -1).gather(-1, safe[..., None]).squeeze(-1)
        return (nll * selected).sum() / selected.sum().clamp(min=1)

    assert mlm.check("03-loss", masked_lm_loss) and mlm.check("03-loss", my_masked_loss)
    rejected("03-loss", lambda z, y: F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1)), "gave nan")
    rejected("03-loss", lambda z, y: F.cross_entropy(z.reshape(-1, z.shape[-1]), y.clamp(min=0).reshape(-1)),
             "looks like you averaged over all positions, including those labelled -100")
    rejected("03-loss", lambda z, y: masked_lm_loss(z, y, reduction="sum"), "that is the sum")
    rejected("03-loss", lambda z, y: masked_lm_loss(z, y, reduction="sequence"), "averaged within each sequence first")
    rejected("03-loss", lambda z, y: -my_masked_loss(z, y), "the sign is flipped")
    rejected("03-loss", lambda z, y: F.cross_entropy(z.transpose(1, 2), y, reduction="none"), "return one number, got a tensor of shape")

    assert mlm.check("03-accuracy", masked_accuracy)
    rejected("03-accuracy", lambda z, y: (z.argmax(-1) == y).float().mean(), "counted all positions, including those labelled -100")
    rejected("03-accuracy", lambda z, y: (z.argmax(-1) == y).sum(), "that is the number of right predictions")
    rejected("03-accuracy", lambda z, y: 1 - masked_accuracy(z, y), "that is the error rate")

    assert mlm.check("03-unigram", unigram_baseline)
    rejected("03-unigram", lambda c: -((c / c.sum()) * (c / c.sum()).log()).sum(), "gave nan: leave out the zero counts")
    rejected("03-unigram", lambda c: unigram_baseline(c) / math.log(2), "in bits (log2)")
    rejected("03-unigram", lambda c: -unigram_baseline(c), "the sign is flipped")


def test_chapter_four_checkers():
    import math

    import torch
    import torch.nn.functional as F

    from mlm_lessons.model import MaskedLM

    def scores(q, k):
        return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])

    assert mlm.check("04-attention", lambda q, k, v, keep: F.scaled_dot_product_attention(q, k, v, attn_mask=keep))
    assert mlm.check("04-attention", lambda q, k, v, keep: scores(q, k).masked_fill(~keep, -math.inf).softmax(-1) @ v)
    rejected("04-attention", lambda q, k, v, keep: F.scaled_dot_product_attention(q, k, v), "did you apply the mask")
    rejected("04-attention", lambda q, k, v, keep: (q @ k.transpose(-2, -1)).masked_fill(~keep, -math.inf).softmax(-1) @ v, "sqrt(d_h)")
    rejected("04-attention", lambda q, k, v, keep: scores(q, k).masked_fill(~keep, 0.0).softmax(-1) @ v, "fill with -inf")
    rejected("04-attention", lambda q, k, v, keep: scores(q, k).softmax(-1) * keep @ v, "you zeroed the weights after the softmax")
    rejected("04-attention", lambda q, k, v, keep: scores(q, k).masked_fill(~keep, -1e9).softmax(-2) @ v, "the softmax over the keys")

    def count_parameters(c, position=True, norms=True, tied=True):  # the notebook's solution, with switches for mistakes
        d, f = c.d_model, c.d_ff
        embeddings = c.vocab_size * d + position * c.max_len * d
        block = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + norms * 2 * (2 * d)
        head = (d * d + d) + norms * 2 * d + c.vocab_size + (not tied) * c.vocab_size * d
        return embeddings + c.n_layers * block + norms * 2 * d + head

    assert mlm.check("04-params", lambda c: MaskedLM(c).num_parameters()) and mlm.check("04-params", count_parameters)
    rejected("04-params", lambda c: count_parameters(c, tied=False), "MaskedLM has 1,453,760 – the output layer reuses (ties) the token embedding")
    rejected("04-params", lambda c: count_parameters(c, position=False), "you left out the position embeddings")
    rejected("04-params", lambda c: count_parameters(c, norms=False), "you left out the LayerNorms")

    assert mlm.check("04-causal", lambda t: torch.ones(t, t, dtype=torch.bool).tril())
    rejected("04-causal", lambda t: torch.ones(t, t, dtype=torch.bool).triu(), "that is the transpose")
    rejected("04-causal", lambda t: torch.ones(t, t, dtype=torch.bool).tril(-1), "a query may attend to its own position")
    rejected("04-causal", lambda t: torch.ones(t, t, dtype=torch.bool), "must hide the future")


def test_chapter_five_checkers():
    from mlm_lessons.engine import lr_factor

    def decay(s, w, t):
        return max(0.0, 1 - (s - w) / (t - w))

    assert mlm.check("05-schedule", lambda s, w, t: lr_factor(s, warmup_steps=w, total_steps=t))
    assert mlm.check("05-schedule", lambda s, w, t: (s + 1) / w if s < w else decay(s, w, t))  # the notebook's solution
    rejected("05-schedule", lambda s, w, t: min(1.0, (s + 1) / w), "returned 1.0, expected 0.5000 – after the warm-up the factor must fall linearly")
    rejected("05-schedule", lambda s, w, t: s / w if s < w else decay(s, w, t), "the warm-up starts at 1 / warmup, not 0")
    rejected("05-schedule", lambda s, w, t: (s + 1) / w if s <= w else decay(s, w, t), "the peak is 1.0 at step warmup")
    rejected("05-schedule", lambda s, w, t: (s + 1) / w if s < w else 1 - s / t, "the decay starts at step warmup")
    rejected("05-schedule", lambda s, w, t: (s + 1) / w if s < w else 1 - (s - w) / t, "divide by the decay's length, total - warmup")

    assert mlm.check("05-no-decay", lambda m: sorted(n for n, p in m.named_parameters() if p.dim() < 2))
    rejected("05-no-decay", lambda m: sorted(n for n, p in m.named_parameters() if n.endswith("bias")),
             "missing ['encoder.blocks.0.ln1.weight', 'encoder.blocks.0.ln2.weight', 'encoder.blocks.1.ln1.weight', 'encoder.blocks.1.ln2.weight'] ... (LayerNorm weights are 1-D too)")
    rejected("05-no-decay", lambda m: sorted(n for n, p in m.named_parameters() if p.dim() < 2 or "emb" in n),
             "should not list ['encoder.pos_emb.weight', 'encoder.tok_emb.weight'] (weight matrices and embeddings, 2-D, do get")
    rejected("05-no-decay", lambda m: [n for n, p in m.named_parameters() if p.dim() < 2], "the right names, but the list must be sorted")
    rejected("05-no-decay", lambda m: None, "return a list, got None")

    assert mlm.check("05-mfu", lambda f, t, p: f * t / p)
    rejected("05-mfu", lambda f, t, p: t / p, "multiply tokens/s by flops_per_token")
    rejected("05-mfu", lambda f, t, p: 100 * f * t / p, "not a percent")
    rejected("05-mfu", lambda f, t, p: p / (f * t), "MFU is achieved FLOP/s / peak FLOP/s")
    rejected("05-mfu", lambda f, t, p: 3 * f * t / p, "do not multiply it by 3")


# -- chapters 7 and 8 ----------------------------------------------------------------------


def test_overlap():
    from mlm_lessons.corpus.stats import top_words

    def right(a, b, k, stop):
        return len(set(top_words(a, k, stop_words=stop)) & set(top_words(b, k, stop_words=stop))) / k

    def jaccard(a, b, k, stop):
        top_a, top_b = set(top_words(a, k, stop_words=stop)), set(top_words(b, k, stop_words=stop))
        return len(top_a & top_b) / len(top_a | top_b)

    assert mlm.check("07-overlap", right)
    rejected("07-overlap", lambda a, b, k, stop: len({w for w, _ in a.most_common(k)} & {w for w, _ in b.most_common(k)}) / k,
             "stop words ('the', 'of', 'a') must be left out")
    rejected("07-overlap", lambda a, b, k, stop: right(a, b, k, stop) * k, "return a share")
    rejected("07-overlap", jaccard, "not by the size of the union")


def test_new_embedding():
    import torch

    assert mlm.check("07-new-embedding", lambda emb, pieces: torch.stack([emb[p].mean(0) for p in pieces]))
    rejected("07-new-embedding", lambda emb, pieces: torch.stack([emb[p].sum(0) for p in pieces]), "you summed the pieces' rows; take their mean")
    rejected("07-new-embedding", lambda emb, pieces: torch.stack([emb[p[0]] for p in pieces]), "you took the first piece only")

    def in_place(emb, pieces):
        emb.mul_(1.0001)
        return torch.stack([emb[p].mean(0) for p in pieces])

    rejected("07-new-embedding", in_place, "changed the embedding matrix it was given")


def test_early_stop():
    from mlm_lessons.teaching.exercises.ch07 import reference_early_stop

    def never_reset(losses, patience):  # counts every evaluation without improvement, not those since the best
        best, best_step, bad = float("inf"), None, 0
        for step, loss in losses:
            if loss < best:
                best, best_step = loss, step
            else:
                bad += 1
                if bad >= patience:
                    return best_step, step
        return best_step, None

    assert mlm.check("07-early-stop", reference_early_stop)
    rejected("07-early-stop", lambda losses, patience: (losses[-1][0], None), "keep the weights of the best evaluation, not of the last")
    rejected("07-early-stop", lambda losses, patience: reference_early_stop(losses, patience, equal_improves=True),
             "an equal loss is no improvement")
    rejected("07-early-stop", lambda losses, patience: reference_early_stop(losses, patience + 1), "stops one evaluation too late")
    rejected("07-early-stop", never_reset, "returned (300, 400), expected (300, None) – count the evaluations without improvement since the best")


def test_macro_f1():
    from mlm_lessons.finetuning import classification_metrics

    def f1_per_class(y_true, y_pred, num_labels, guarded=True):  # the notebook's solution, before the mean
        scores = []
        for c in range(num_labels):
            tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
            predicted, true = sum(p == c for p in y_pred), sum(t == c for t in y_true)
            if guarded:
                scores.append(2 * tp / (predicted + true) if predicted + true else 0.0)
            else:  # precision and recall first: 0/0 for a class never predicted
                precision, recall = tp / predicted, tp / true
                scores.append(2 * precision * recall / (precision + recall))
        return scores

    assert mlm.check("08-macro-f1", lambda t, p, c: classification_metrics(t, p, c)["macro_f1"])
    assert mlm.check("08-macro-f1", lambda t, p, c: sum(f1_per_class(t, p, c)) / c)
    rejected("08-macro-f1", lambda t, p, c: classification_metrics(t, p, c)["accuracy"], "that is the accuracy (micro-F1)")
    rejected("08-macro-f1", lambda t, p, c: sum(f1_per_class(t, p, c)) / len(set(t) | set(p)),
             "average over all 3 classes; a class never true and never predicted counts as F1 = 0")
    rejected("08-macro-f1", lambda t, p, c: sum(f * t.count(k) for k, f in enumerate(f1_per_class(t, p, c))) / len(t),
             "macro-F1 gives every class the same weight")
    rejected("08-macro-f1", lambda t, p, c: sum(f1_per_class(t, p, c, guarded=False)) / c, "a class never predicted (or never true) has 0/0")


def test_first_piece():
    def right(word_ids, labels):
        out, previous = [], None
        for w in word_ids:
            out.append(-100 if w is None or w == previous else labels[w])
            previous = w
        return out

    assert mlm.check("08-first-piece", right)
    rejected("08-first-piece", lambda word_ids, labels: [-100 if w is None else labels[w] for w in word_ids],
             "only the first piece of a word carries its label")
    rejected("08-first-piece", lambda word_ids, labels: [0 if w is None else x for w, x in zip(word_ids, right(word_ids, labels))],
             "[CLS], [SEP] and padding (word id None) get -100")
    rejected("08-first-piece", lambda word_ids, labels: right(word_ids[::-1], labels)[::-1], "the first piece of each word, not the last")
    rejected("08-first-piece", lambda word_ids, labels: labels, "one label per piece: 6 of them")


def test_span_f1():
    from mlm_lessons.finetuning import spans_of, tagging_metrics

    def unguarded(gold, pred):  # precision and recall first, without a guard against 0/0
        tp = n_pred = n_gold = 0
        for g, p in zip(gold, pred):
            gs, ps = spans_of(g), spans_of(p)
            tp, n_pred, n_gold = tp + len(gs & ps), n_pred + len(ps), n_gold + len(gs)
        precision, recall = tp / n_pred, tp / n_gold
        return 2 * precision * recall / (precision + recall)

    assert mlm.check("08-span-f1", lambda g, p: tagging_metrics(g, p)["span_f1"])
    rejected("08-span-f1", lambda g, p: tagging_metrics(g, p)["token_f1"], "that is the word-level F1")
    rejected("08-span-f1", lambda g, p: tagging_metrics(g, p)["span_precision"], "that is the span precision")
    rejected("08-span-f1", unguarded, "guard the divisions (0/0)")


def test_mrr():
    def mrr(scores, tie_counts_against=True, start=1, reciprocal=True):
        n, total = len(scores), 0.0
        for q, row in enumerate(scores):
            above = sum(row[d] > row[q] or (tie_counts_against and row[d] == row[q]) for d in range(n) if d != q)
            rank = start + above
            total += 1 / rank if reciprocal else rank
        return total / n

    assert mlm.check("08-mrr", mrr)
    rejected("08-mrr", lambda s: mrr(s, tie_counts_against=False), "ties with the right one")
    rejected("08-mrr", lambda s: mrr(s, reciprocal=False), "that is the mean rank")
    rejected("08-mrr", lambda s: mrr(s, start=0), "ranks start at 1")


def _corrupt(ids, selected, p_mask, p_random, mask_id, vocab_size, generator, *, low=5, keep=True, everywhere=False):
    import torch

    out = ids.clone()
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(low, vocab_size, ids.shape, generator=generator)
    chosen = torch.ones_like(selected) if everywhere else selected
    out[chosen & (u < p_mask)] = mask_id
    rnd = chosen & (u >= p_mask) & ((u < p_mask + p_random) if keep else True)
    out[rnd] = random_ids[rnd]
    return out


def test_chapter_six_checkers():
    import functools
    import math
    import statistics

    assert mlm.check("06-corrupt", _corrupt)
    rejected("06-corrupt", functools.partial(_corrupt, keep=False), "the keep share (1 - p_mask - p_random) stays as it is")
    rejected("06-corrupt", functools.partial(_corrupt, low=0), "drew a special id")
    rejected("06-corrupt", functools.partial(_corrupt, everywhere=True), "positions that were not selected")

    def in_place(ids, *args):
        ids[0, 1] = 4
        return ids

    rejected("06-corrupt", in_place, "modified input_ids")

    def sem(values):
        n = len(values)
        return statistics.fmean(values), statistics.stdev(values) / math.sqrt(n) if n > 1 else math.nan

    assert mlm.check("06-sem", sem)
    rejected("06-sem", lambda v: (statistics.fmean(v), statistics.pstdev(v) / math.sqrt(len(v))), "you divided by n")
    rejected("06-sem", lambda v: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else math.nan), "divides it by sqrt(n)")
    rejected("06-sem", lambda v: (statistics.fmean(v), statistics.stdev(v) / len(v) if len(v) > 1 else math.nan), "not by n")
    rejected("06-sem", lambda v: (statistics.fmean(v), statistics.stdev(v) / math.sqrt(len(v)) if len(v) > 1 else 0.0), "return nan")

    assert mlm.check("06-times-seen", lambda e, k: [len(range(c, e, k)) for c in range(k)])
    rejected("06-times-seen", lambda e, k: [e // k] * k, "left over")
    rejected("06-times-seen", lambda e, k: [-(-e // k)] * k, "rounded-up")
    rejected("06-times-seen", lambda e, k: [e] * k, "one copy only")


def test_chapter_nine_checkers():
    import math

    import torch

    from mlm_lessons.generation import remask_schedule
    from mlm_lessons.masking import next_token_labels

    assert mlm.check("09-remask", remask_schedule)
    rejected("09-remask", lambda n, T: [n * (T - t) // T for t in range(T)], "starts after the first iteration")
    rejected("09-remask", lambda n, T: [round(n * (T - t) / T) for t in range(1, T + 1)], "not to the nearest")
    rejected("09-remask", lambda n, T: [math.ceil(n * (T - t) / T) for t in range(1, T + 1)], "not up")

    assert mlm.check("09-next-token", next_token_labels)
    rejected("09-next-token", lambda ids, mask: ids.clone(), "predicts the NEXT id")

    def pad_kept(ids, mask):
        labels = torch.full_like(ids, -100)
        labels[:, :-1] = ids[:, 1:]
        return labels

    def backwards(ids, mask):
        labels = torch.full_like(ids, -100)
        labels[:, 1:] = ids[:, :-1]
        return labels

    rejected("09-next-token", pad_kept, "not the [PAD] id")
    rejected("09-next-token", backwards, "shifts the wrong way")

    def scored(model, ids, mask_id, positions, masked=True, mean=False):
        total = 0.0
        for t in positions(len(ids)):
            x = torch.tensor([ids])
            if masked:
                x[0, t] = mask_id
            with torch.no_grad():
                total += model(x).logits[0, t].log_softmax(-1)[ids[t]].item()
        return total / (len(ids) - 2) if mean else total

    inner = lambda n: range(1, n - 1)  # noqa: E731
    assert mlm.check("09-pll", lambda m, ids, k: scored(m, ids, k, inner))
    rejected("09-pll", lambda m, ids, k: scored(m, ids, k, inner, masked=False), "nothing was masked")
    rejected("09-pll", lambda m, ids, k: scored(m, ids, k, range), "[CLS] and [SEP] are not scored")
    rejected("09-pll", lambda m, ids, k: scored(m, ids, k, inner, mean=True), "that is the mean")


def test_chapter_ten_checkers():
    import numpy as np

    # right answers written out by hand, not with the package's forward-backward
    def middle_word(start, transition, emission, left, right, *, use_right=True, normalise=True):
        s1 = (start * emission[:, left]) @ transition  # P(s_1, x_0)
        weight = s1 * (transition @ emission[:, right]) if use_right else s1
        p = weight @ emission
        return p / p.sum() if normalise else p

    assert mlm.check("10-middle-word", middle_word)
    rejected("10-middle-word", lambda *a: middle_word(*a, use_right=False), "the right word was left out")
    rejected("10-middle-word", lambda *a: middle_word(*a, normalise=False), "divide by the sum")
    rejected("10-middle-word", lambda s, t, e, l, r: s @ t @ e, "neither neighbour")
    rejected("10-middle-word", lambda s, t, e, l, r: [0.5, 0.5], "of shape")

    def left_only(start, transition, emission, x, *, update=True):
        out, state = [], start
        for i, word in enumerate(x):
            if i:
                state = state @ transition
            out.append(state @ emission)
            if update:
                state = state * emission[:, word]
                state = state / state.sum()
        return np.array(out)

    assert mlm.check("10-left-only", left_only)
    rejected("10-left-only", lambda *a: left_only(*a, update=False), "update the state distribution")

    def topic_posterior(prior, start, transition, x, *, logs=True, use_prior=True, use_start=True):
        if logs:
            w = np.log(prior) * use_prior + np.log(start[:, x[0]]) * use_start
            w = w + sum(np.log(transition[:, a, b]) for a, b in zip(x, x[1:]))
            w = np.exp(w - w.max())
        else:
            w = prior * start[:, x[0]] * np.prod([transition[:, a, b] for a, b in zip(x, x[1:])], axis=0)
        return w / w.sum()

    assert mlm.check("10-topic-posterior", topic_posterior)
    rejected("10-topic-posterior", lambda *a: topic_posterior(*a, use_prior=False), "prior P(z) is missing")
    rejected("10-topic-posterior", lambda *a: topic_posterior(*a, use_start=False), "start[z, x_0] is missing")
    with np.errstate(all="ignore"):
        rejected("10-topic-posterior", lambda *a: topic_posterior(*a, logs=False), "underflows")


def test_predictions_and_choices_reveal_nothing_before_an_answer():
    from mlm_lessons.teaching.exercises.registry import AnswerError, judge_choice, judge_prediction

    for empty in (None, ...):
        ok, message = judge_prediction(empty, 0.4321, within=0.1, why="because")
        assert not ok and "0.43" not in message and "because" not in message and "write your answer first" in message
        ok, message = judge_choice(empty, {"a": "reason a", "b": "reason b"}, right="b")
        assert not ok and "reason a" not in message and "reason b" not in message and "one of a, b" in message
    assert judge_prediction(0.45, 0.4321, within=0.1, why="because")[0]
    ok, message = judge_prediction(0.3, 0.4321, within=0.1, why="because")
    assert not ok and "too low by 0.132" in message and message.endswith("because")
    assert judge_prediction(7, 9.0, within=2.5, relative=False, why="")[0]
    with pytest.raises(AnswerError, match="predict a number, got True"):
        judge_prediction(True, 1.0, within=0.1, why="")
    ok, message = judge_choice("(A)", {"a": "reason a", "b": "reason b"}, right="b")
    assert not ok and message == "not (a): reason a" and "(b)" not in message
    assert judge_choice(" b ", {"a": "reason a", "b": "reason b"}, right="b") == (True, "(b) – reason b")
    with pytest.raises(AnswerError, match="answer one of a, b, got 'z'"):
        judge_choice("z", {"a": "", "b": ""}, right="b")
    with pytest.raises(ValueError, match="the right choice 'c' is not among the options"):
        judge_choice("a", {"a": "", "b": ""}, right="c")


def test_chapter_two_new_kinds(general_tok, corpora):
    from mlm_lessons.teaching.exercises.ch02 import partly_hidden_share

    texts = corpora["python-docs"].texts("valid")[:128]
    assert mlm.check("02-predict-pieces", 0.15, tokenizer=general_tok, texts=texts)
    rejected("02-predict-pieces", 0.3, "too high", tokenizer=general_tok, texts=texts)
    rejected("02-predict-pieces", None, "write your answer first", tokenizer=general_tok, texts=texts)
    assert mlm.check("02-interpret-nsp", "b")
    for wrong in "acd":
        result = mlm.check("02-interpret-nsp", wrong)
        assert not result and "(b)" not in result.message
    assert mlm.check("02-partly-hidden", lambda tok, t, config, seed: partly_hidden_share(tok, t, config, seed=seed),
                     tokenizer=general_tok, texts=texts)
    rejected("02-partly-hidden", lambda *a: 0.0, "too low", tokenizer=general_tok, texts=texts)
    rejected("02-partly-hidden", lambda tok, t, config, seed: 0.5 if config.whole_word else partly_hidden_share(tok, t, config, seed=seed),
             "must be 0", tokenizer=general_tok, texts=texts)
    result = mlm.check("02-partly-hidden", lambda *a: 0.5, tokenizer=general_tok, texts=texts)
    want = partly_hidden_share(general_tok, texts, mlm.MaskingConfig(), seed=0)
    assert not result and f"{want:.3f}" not in result.message, "a wrong attempt is not told the number to find"
