"""Exercise checkers: right answers pass, wrong answers fail with a message that helps."""

from __future__ import annotations

import re
from collections import Counter

import pytest

import mlm_lessons as mlm
from mlm_lessons.exercises import exercises


def test_every_exercise_is_registered():
    assert [e.id for e in exercises(1)] == ["01-closer", "01-fragmentation", "01-leaks", "01-roles"]
    assert [e.id for e in exercises(2)] == ["02-labels", "02-rebalance", "02-select"]
    assert [e.id for e in exercises(3)] == ["03-accuracy", "03-loss", "03-unigram"]
    assert [e.id for e in exercises(4)] == ["04-attention", "04-causal", "04-params"]
    assert [e.id for e in exercises(5)] == ["05-mfu", "05-no-decay", "05-schedule"]
    assert [e.id for e in exercises(7)] == ["07-early-stop", "07-new-embedding", "07-overlap"]
    assert [e.id for e in exercises(8)] == ["08-first-piece", "08-macro-f1", "08-span-f1"]
    assert all(e.prompt for e in exercises())


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
    naive = mlm.check("01-roles", lambda t: re.sub(r":(\w+):`([^`]+)`", r"\2", t))
    assert not naive and "expected 'Linear'" in naive.message
    crashing = mlm.check("01-roles", lambda t: t.no_such_method())
    assert not crashing and "raised AttributeError" in crashing.message
    assert repr(crashing).startswith("✘ 01-roles:")
    assert not mlm.check("01-roles", "not a function")


def test_leaks():
    def leaks(corpus):
        sets = [{" ".join(d.text.split()).lower() for d in s} for s in (corpus.train, corpus.valid, corpus.test)]
        return sum(n > 1 for n in Counter(t for s in sets for t in s).values())

    assert mlm.check("01-leaks", leaks)
    exact_only = mlm.check("01-leaks", lambda c: len({d.text for d in c.train} & ({d.text for d in c.valid} | {d.text for d in c.test})))
    assert not exact_only and "case" in exact_only.message


def test_fragmentation(general_tok):
    def right(tok, words):
        n = [len(tok.tokenize(w)) for w in words]
        return sum(n) / len(n), sum(k > 1 for k in n) / len(n)

    assert mlm.check("01-fragmentation", right, tokenizer=general_tok)
    assert not mlm.check("01-fragmentation", lambda tok, words: (1.0, 0.0), tokenizer=general_tok)
    assert "return a pair" in mlm.check("01-fragmentation", lambda tok, words: 1.0, tokenizer=general_tok).message


def test_closer(general_tok, corpora):
    results = {a: bool(mlm.check("01-closer", a, tokenizer=general_tok, corpora=corpora)) for a in ("python-docs", "pytorch-docs")}
    assert sorted(results.values()) == [False, True]
    assert "answer 'python-docs' or 'pytorch-docs'" in mlm.check("01-closer", "numpy", tokenizer=general_tok, corpora=corpora).message


def test_unknown_exercise():
    with pytest.raises(ValueError, match="unknown exercise '99-x'; known: 01-closer"):
        mlm.check("99-x", None)


def test_chapter_two_checkers():
    import torch

    from mlm_lessons.widgets import rebalance

    assert mlm.check("02-select", mlm.num_to_select)
    no_floor = mlm.check("02-select", lambda n, r: round(r * n))
    assert not no_floor and "at least one position" in no_floor.message
    assert mlm.check("02-labels", lambda ids, sel: torch.where(sel, ids, torch.full_like(ids, -100)))

    def in_place(ids, sel):
        ids[~sel] = -100
        return ids

    assert "modified input_ids" in mlm.check("02-labels", in_place).message
    assert mlm.check("02-rebalance", rebalance)
    lopsided = mlm.check("02-rebalance", lambda s, c, v: {**{k: 0 for k in s}, c: v, [k for k in s if k != c][0]: 100 - v})
    assert not lopsided and "proportion" in lopsided.message


def test_chapter_three_checkers():
    import torch
    import torch.nn.functional as F

    from mlm_lessons.objective import masked_accuracy, masked_lm_loss, unigram_baseline

    assert mlm.check("03-loss", masked_lm_loss)
    plain = mlm.check("03-loss", lambda z, y: F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1)))
    assert not plain and "nan" in plain.message
    everywhere = mlm.check("03-loss", lambda z, y: F.cross_entropy(z.reshape(-1, z.shape[-1]), y.clamp(min=0).reshape(-1)))
    assert not everywhere and "expected" in everywhere.message
    assert mlm.check("03-accuracy", masked_accuracy)
    assert not mlm.check("03-accuracy", lambda z, y: (z.argmax(-1) == y).float().mean())
    assert mlm.check("03-unigram", unigram_baseline)
    assert "nan" in mlm.check("03-unigram", lambda c: -((c / c.sum()) * (c / c.sum()).log()).sum()).message
    assert not mlm.check("03-unigram", lambda c: torch.tensor(1.0))


def test_chapter_four_checkers():
    import math

    import torch
    import torch.nn.functional as F

    from mlm_lessons.model import MaskedLM

    assert mlm.check("04-attention", lambda q, k, v, keep: F.scaled_dot_product_attention(q, k, v, attn_mask=keep))
    unmasked = mlm.check("04-attention", lambda q, k, v, keep: F.scaled_dot_product_attention(q, k, v))
    assert not unmasked and "did you apply the mask" in unmasked.message
    unscaled = mlm.check("04-attention", lambda q, k, v, keep: (q @ k.transpose(-2, -1)).masked_fill(~keep, -math.inf).softmax(-1) @ v)
    assert not unscaled and "sqrt(d_h)" in unscaled.message
    assert mlm.check("04-params", lambda c: MaskedLM(c).num_parameters())
    untied = mlm.check("04-params", lambda c: MaskedLM(c).num_parameters() + c.vocab_size * c.d_model)
    assert not untied and "MaskedLM has" in untied.message
    assert mlm.check("04-causal", lambda t: torch.ones(t, t, dtype=torch.bool).tril())
    assert "transpose" in mlm.check("04-causal", lambda t: torch.ones(t, t, dtype=torch.bool).triu()).message


def test_chapter_five_checkers():
    from mlm_lessons.training import TrainConfig, _lr_lambda

    assert mlm.check("05-schedule", lambda s, w, t: _lr_lambda(TrainConfig(max_steps=t, warmup_steps=w))(s))
    assert not mlm.check("05-schedule", lambda s, w, t: min(1.0, (s + 1) / w))
    assert mlm.check("05-no-decay", lambda m: sorted(n for n, p in m.named_parameters() if p.dim() < 2))
    biases_only = mlm.check("05-no-decay", lambda m: sorted(n for n, p in m.named_parameters() if n.endswith("bias")))
    assert not biases_only and "missing" in biases_only.message and "ln1.weight" in biases_only.message
    assert mlm.check("05-mfu", lambda f, t, p: f * t / p)
    assert not mlm.check("05-mfu", lambda f, t, p: t / p)


# -- chapters 7 and 8 ----------------------------------------------------------------------


def test_overlap():
    from mlm_lessons.corpus.stats import top_words

    def right(a, b, k, stop):
        return len(set(top_words(a, k, stop_words=stop)) & set(top_words(b, k, stop_words=stop))) / k

    assert mlm.check("07-overlap", right)
    with_stop_words = mlm.check("07-overlap", lambda a, b, k, stop: len({w for w, _ in a.most_common(k)} & {w for w, _ in b.most_common(k)}) / k)
    assert not with_stop_words and "stop words" in with_stop_words.message
    a_count = mlm.check("07-overlap", lambda a, b, k, stop: len(set(top_words(a, k, stop_words=stop)) & set(top_words(b, k, stop_words=stop))))
    assert not a_count and "share" in a_count.message


def test_new_embedding():
    import torch

    assert mlm.check("07-new-embedding", lambda emb, pieces: torch.stack([emb[p].mean(0) for p in pieces]))
    summed = mlm.check("07-new-embedding", lambda emb, pieces: torch.stack([emb[p].sum(0) for p in pieces]))
    assert not summed and "mean" in summed.message
    first = mlm.check("07-new-embedding", lambda emb, pieces: torch.stack([emb[p[0]] for p in pieces]))
    assert not first and "first piece" in first.message

    def in_place(emb, pieces):
        emb.mul_(1.0001)
        return torch.stack([emb[p].mean(0) for p in pieces])

    changed = mlm.check("07-new-embedding", in_place)
    assert not changed


def test_early_stop():
    from mlm_lessons.exercises import _reference_early_stop

    assert mlm.check("07-early-stop", _reference_early_stop)
    last = mlm.check("07-early-stop", lambda losses, patience: (losses[-1][0], None))
    assert not last and "best evaluation, not of the last" in last.message
    ties = mlm.check("07-early-stop", lambda losses, patience: _reference_early_stop(losses, patience, equal_improves=True))
    assert not ties and "equal loss is no improvement" in ties.message


def test_macro_f1():
    from mlm_lessons.finetuning import classification_metrics

    assert mlm.check("08-macro-f1", lambda t, p, c: classification_metrics(t, p, c)["macro_f1"])
    accuracy = mlm.check("08-macro-f1", lambda t, p, c: classification_metrics(t, p, c)["accuracy"])
    assert not accuracy and "accuracy" in accuracy.message

    def present_classes_only(t, p, c):  # averages over the classes that occur, not over all c
        classes = sorted(set(t) | set(p))
        return classification_metrics(t, p, c)["macro_f1"] * c / len(classes)

    assert not mlm.check("08-macro-f1", present_classes_only)


def test_first_piece():
    def right(word_ids, labels):
        out, previous = [], None
        for w in word_ids:
            out.append(-100 if w is None or w == previous else labels[w])
            previous = w
        return out

    assert mlm.check("08-first-piece", right)
    every_piece = mlm.check("08-first-piece", lambda word_ids, labels: [-100 if w is None else labels[w] for w in word_ids])
    assert not every_piece and "first piece" in every_piece.message
    assert not mlm.check("08-first-piece", lambda word_ids, labels: [0 if w is None else labels[w] for w in word_ids])


def test_span_f1():
    from mlm_lessons.finetuning import tagging_metrics

    assert mlm.check("08-span-f1", lambda g, p: tagging_metrics(g, p)["span_f1"])
    token_level = mlm.check("08-span-f1", lambda g, p: tagging_metrics(g, p)["token_f1"])
    assert not token_level and "word-level" in token_level.message
    assert not mlm.check("08-span-f1", lambda g, p: tagging_metrics(g, p)["span_precision"])
