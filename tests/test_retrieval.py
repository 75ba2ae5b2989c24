"""Retrieval: the summary task, pooled vectors, rank metrics, BM25 and contrastive fine-tuning."""

from __future__ import annotations

import dataclasses
import math
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mlm_lessons as mlm
from mlm_lessons.corpus import Corpus, Document
from mlm_lessons.model import EncoderConfig, MaskedLM, language_model
from mlm_lessons.retrieval import (
    ContrastiveConfig,
    DualEncoder,
    RetrievalPair,
    RetrievalTask,
    bm25_scores,
    contrastive_finetune,
    embed,
    rank_metrics,
    retrieval_metrics,
    summary_task,
)

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import WORDS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def word_tok():
    return mlm.tokenizer_from_vocab(WORDS + ["."])


def tiny_mlm(tok, *, causal=False, seed=0) -> MaskedLM:
    """A small random model that records ``tok``'s fingerprint."""
    torch.manual_seed(seed)
    model = language_model(EncoderConfig(vocab_size=tok.vocab_size, max_len=32, d_model=32, n_layers=1, n_heads=2, d_ff=64,
                                         dropout=0.0, causal=causal))
    model.check_vocabulary(tok)
    return model


# -- rank metrics ------------------------------------------------------------------------------------


def brute_force_ranks(scores: np.ndarray) -> list[int]:
    ranks = []
    for q, row in enumerate(scores):
        order = sorted(range(len(row)), key=lambda d: (-row[d], d == q))  # ties: the right one after the others
        ranks.append(order.index(q) + 1)
    return ranks


@pytest.mark.parametrize("seed", range(5))
def test_rank_metrics_match_a_brute_force_ranking(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(12, 12)).astype(float)  # many ties
    ranks = brute_force_ranks(scores)
    got = rank_metrics(scores, ks=(1, 3, 10))
    for k in (1, 3, 10):
        assert got[f"recall@{k}"] == pytest.approx(sum(r <= k for r in ranks) / 12)
    assert got["mrr"] == pytest.approx(sum(1 / r for r in ranks) / 12)


def test_rank_metrics_edge_cases():
    assert rank_metrics(torch.eye(5)) == {"recall@1": 1.0, "recall@10": 1.0, "mrr": 1.0}
    constant = rank_metrics(torch.zeros(4, 4), ks=(1, 4))  # ties count against the right answer
    assert constant["recall@1"] == 0.0 and constant["recall@4"] == 1.0 and constant["mrr"] == pytest.approx(0.25)
    reversed_ = rank_metrics(-torch.eye(3), ks=(1,))
    assert reversed_["recall@1"] == 0.0 and reversed_["mrr"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="square"):
        rank_metrics(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        rank_metrics(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))


# -- BM25 --------------------------------------------------------------------------------------------


def okapi(query: list[str], docs: list[list[str]], k1=1.5, b=0.75) -> list[float]:
    """BM25 as Robertson and Zaragoza write it (every idf here is positive)."""
    n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    df = Counter(w for d in docs for w in set(d))
    out = []
    for d in docs:
        tf = Counter(d)
        out.append(sum(math.log((n - df[w] + 0.5) / (df[w] + 0.5)) * tf[w] * (k1 + 1) / (tf[w] + k1 * (1 - b + b * len(d) / avgdl))
                       for w in query if w in tf))
    return out


def test_bm25_matches_the_formula_and_ignores_case_and_punctuation():
    docs = ["Gradient of a tensor.", "The weight of a layer", "Returns a new module", "bias and size", "input, output; shape",
            "a tensor with the same size"]
    words = [d.lower().replace(".", " ").replace(",", " ").replace(";", " ").split() for d in docs]
    scores = bm25_scores(["TENSOR gradient!", "layer weight"], docs)
    assert scores.shape == (2, 6) and scores.dtype == torch.float64
    for i, q in enumerate((["tensor", "gradient"], ["layer", "weight"])):
        np.testing.assert_allclose(scores[i].numpy(), okapi(q, words), rtol=1e-9, atol=1e-12)
    assert int(scores[0].argmax()) == 0 and int(scores[1].argmax()) == 1
    with pytest.raises(ValueError, match="at least one query"):
        bm25_scores([], docs)


# -- the summary task --------------------------------------------------------------------------------


def doc(text, name):
    return Document(text=text, source="s", module="torch.nn", name=name, kind="function")


def test_summary_task_pairs_split_and_filters():
    train = [doc("Adds two tensors of the same shape.\n\nThe result has the shape of the inputs and its dtype.", "add"),
             doc("Shared summary that repeats itself here.\n\nA body that test documents copy word for word.", "x")]
    valid = [doc("Returns the mean of every element given.\n\nReduces over all dimensions unless dim is given to it.", "mean"),
             doc("Too short.\n\nA body long enough to count as a document here.", "short")]
    test = [doc("Computes the norm of a vector or matrix.\n\nThe order is chosen by ord; the default is the two norm.", "norm"),
            doc("Shared summary that repeats itself here.\n\nA different body of words which nothing else has said.", "leak"),
            doc("One paragraph only, with no body at all to retrieve.", "lonely"),
            doc("Same words in two summaries of this split.\n\nFirst body of the pair of twins in the test split.", "t1"),
            doc("Same words in two summaries of this split.\n\nSecond body of the pair of twins in the test split.", "t2")]
    task = summary_task(Corpus("toy", train, valid, test))
    assert [p.source for p in task.train] == ["torch.nn.add", "torch.nn.x"]
    assert task.train[0] == RetrievalPair("Adds two tensors of the same shape.",
                                          "The result has the shape of the inputs and its dtype.", "torch.nn.add")
    assert [p.source for p in task.valid] == ["torch.nn.mean"]  # "Too short." has 2 words
    assert [p.source for p in task.test] == ["torch.nn.norm"]  # leaked summary, no body, twin summaries: dropped
    assert task.name == "toy-summaries" and [r["pairs"] for r in task.stats()] == [2, 1, 1]
    with pytest.raises(ValueError, match="min_query_words"):
        summary_task(Corpus("toy", train, valid, test), min_query_words=0)
    with pytest.raises(ValueError, match="unknown split"):
        task.split("dev")


@pytest.mark.slow
def test_summary_task_on_pytorch_docs_never_leaks(corpora):
    task = summary_task(corpora["pytorch-docs"])
    assert len(task.test) >= 50 and len(task.valid) >= 50 and len(task.train) >= 1000  # 98 test pairs with torch 2.4's docs
    train_text = "\x00".join(corpora["pytorch-docs"].texts("train"))
    for split in ("valid", "test"):
        pairs = task.split(split)
        assert not any(p.query in train_text or p.target in train_text for p in pairs)
        assert len({p.query for p in pairs}) == len(pairs) == len({p.target for p in pairs})


# -- vectors -----------------------------------------------------------------------------------------


def test_embed_mean_pooling_by_hand_and_padding_free(word_tok):
    model = tiny_mlm(word_tok)
    texts = ["the tensor of a layer .", "weight", "returns a new module with the same size and shape ."]
    vectors = embed(model, word_tok, texts)
    assert vectors.shape == (3, 32)
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(3))
    for i, text in enumerate(texts):  # alone (no padding) = in the padded batch
        enc = word_tok.encode_batch([text])
        with torch.no_grad():
            hidden = model.eval().encoder(enc.input_ids, enc.attention_mask)[0]
        torch.testing.assert_close(vectors[i], F.normalize(hidden.mean(0), dim=0), atol=1e-5, rtol=1e-5)
    cls = embed(model, word_tok, texts, pooling="cls")
    assert not torch.allclose(cls, vectors)


def test_embed_last_pooling_reads_the_last_real_token(word_tok):
    model = tiny_mlm(word_tok, causal=True)
    texts = ["the tensor .", "a layer of the module with a weight ."]
    vectors = embed(model, word_tok, texts, pooling="last")
    enc = word_tok.encode_batch(texts[:1])
    with torch.no_grad():
        hidden = model.eval().encoder(enc.input_ids, enc.attention_mask)[0]
    torch.testing.assert_close(vectors[0], F.normalize(hidden[-1], dim=0), atol=1e-5, rtol=1e-5)


def test_embed_errors(word_tok):
    model = tiny_mlm(word_tok)
    with pytest.raises(ValueError, match="pooling must be one of"):
        embed(model, word_tok, ["the"], pooling="max")
    with pytest.raises(ValueError, match="no texts"):
        embed(model, word_tok, [])
    with pytest.raises(ValueError, match="max_len=32"):  # longer than the model takes: refused, not clamped
        embed(model, word_tok, ["the"], max_length=64)
    with pytest.raises(ValueError, match=r"\.encoder"):
        embed(torch.nn.Linear(2, 2), word_tok, ["the"])
    other = mlm.tokenizer_from_vocab(list(reversed(WORDS + ["."])))
    with pytest.raises(ValueError):
        embed(model, other, ["the"])


# -- contrastive fine-tuning -------------------------------------------------------------------------


def test_dual_encoder_loss_is_symmetric_infonce(word_tok):
    model = DualEncoder(tiny_mlm(word_tok), temperature=0.1)
    enc = word_tok.encode_batch(["the tensor", "a layer .", "weight", "tensor gradient", "the layer", "bias"])
    out = model.eval()(enc.input_ids, enc.attention_mask, torch.arange(3))
    v = embed(model, word_tok, ["the tensor", "a layer .", "weight", "tensor gradient", "the layer", "bias"])
    logits = v[:3] @ v[3:].T / 0.1
    expected = (F.cross_entropy(logits, torch.arange(3)) + F.cross_entropy(logits.T, torch.arange(3))) / 2
    torch.testing.assert_close(out.loss, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="B queries then B documents"):
        model(enc.input_ids[:5], enc.attention_mask[:5])
    with pytest.raises(ValueError, match="temperature"):
        DualEncoder(tiny_mlm(word_tok), temperature=0)
    with pytest.raises(ValueError, match="MaskedLM"):
        DualEncoder(torch.nn.Linear(2, 2))


def toy_retrieval(seed=0, n_train=96, n_eval=24) -> RetrievalTask:
    """A query names two words; its document is a longer text that holds both, among others."""
    rng = random.Random(seed)

    def pairs(n):
        out = []
        for _ in range(n):
            a, b = rng.sample(WORDS, 2)
            filler = [rng.choice(WORDS) for _ in range(6)]
            out.append(RetrievalPair(f"{a} {b}", " ".join(filler[:3] + [a] + filler[3:] + [b]), "s"))
        return out

    return RetrievalTask("toy", pairs(n_train), pairs(n_eval), pairs(n_eval))


def test_contrastive_finetune_learns_and_is_reproducible(word_tok):
    task = toy_retrieval()
    base = tiny_mlm(word_tok, seed=1)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    config = ContrastiveConfig(lr=3e-3, batch_size=16, max_steps=60, eval_every=20, patience=5, temperature=0.1,
                               max_length=16, device="cpu")
    result = contrastive_finetune(base, word_tok, task, config)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())  # the pretrained model is untouched
    assert [h["step"] for h in result.history] == [0, 20, 40, 60]
    start, best = result.history[0]["valid_mrr"], max(h["valid_mrr"] for h in result.history)
    assert result.valid["mrr"] == best > start + 0.1, result.history
    assert retrieval_metrics(result.model, word_tok, task.valid, max_length=16) == pytest.approx(result.valid)
    again = contrastive_finetune(base, word_tok, task, config)
    assert again.history == result.history and again.test == result.test
    other = contrastive_finetune(base, word_tok, task, dataclasses.replace(config, seed=1))  # another order of the pairs
    assert other.history[0] == result.history[0] and other.history[1:] != result.history[1:]


def test_contrastive_config_and_task_errors(word_tok):
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        ContrastiveConfig(batch_size=1)
    with pytest.raises(ValueError, match="pooling"):
        ContrastiveConfig(pooling="max")
    with pytest.raises(ValueError, match="lr must be > 0"):
        ContrastiveConfig(lr=0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        ContrastiveConfig(temperature=0)
    small = RetrievalTask("toy", toy_retrieval().train[:4], toy_retrieval().valid, [])
    with pytest.raises(ValueError, match="at least batch_size=32"):
        contrastive_finetune(tiny_mlm(word_tok), word_tok, small)
