"""Fine-tuning: the heads, word-to-piece label alignment, metrics, prediction and the training loop."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import mlm_lessons as mlm
from mlm_lessons.finetuning import (
    ClassifierOutput,
    FinetuneConfig,
    SequenceClassifier,
    TokenClassifier,
    build_model,
    classification_metrics,
    encode_classification,
    encode_tagging,
    evaluate_task,
    finetune,
    predict,
    tagging_metrics,
)
from mlm_lessons.model import EncoderConfig, MaskedLM
from mlm_lessons.tasks import ClassificationExample, TaggingExample, TaskData, spans_of

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import WORDS  # noqa: E402

TINY = dict(max_len=32, d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0)
PIECES = ["auto", "##grad", "computes", "the", "gradient", "x", "."]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(vocab_size: int = 50, **kw) -> EncoderConfig:
    return EncoderConfig(vocab_size=vocab_size, **{**TINY, **kw})


def batch(b=3, t=10, vocab=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (b, t), generator=g)
    ids[:, 0] = 2
    mask = torch.ones(b, t, dtype=torch.long)
    ids[1, 6:], mask[1, 6:] = 0, 0
    return ids, mask


# -- metrics ------------------------------------------------------------------------------------------


def test_spans_of():
    assert spans_of([]) == set()
    assert spans_of([0, 0]) == set()
    assert spans_of([1, 1]) == {(0, 2)}
    assert spans_of([0, 1, 1, 0, 1]) == {(1, 3), (4, 5)}
    assert spans_of((1, 0, 1, 1, 1, 0, 0, 1)) == {(0, 1), (2, 5), (7, 8)}


def test_tagging_metrics_by_hand():
    gold = [[0, 1, 1, 0, 1, 0], [1, 0, 0], [0, 0, 1, 1]]
    pred = [[0, 1, 1, 1, 1, 0], [1, 0, 0], [0, 1, 1, 1]]
    # words: tp = 3 + 1 + 2 = 6, fp = 1 + 0 + 1 = 2, fn = 0; correct = 5 + 3 + 3 = 11 of 13
    # spans: gold {(1,3),(4,5)} {(0,1)} {(2,4)}: 4; predicted {(1,5)} {(0,1)} {(1,4)}: 3, of which only (0,1) is exact
    m = tagging_metrics(gold, pred)
    assert m["word_accuracy"] == pytest.approx(11 / 13)
    assert m["token_precision"] == pytest.approx(6 / 8) and m["token_recall"] == pytest.approx(1.0)
    assert m["token_f1"] == pytest.approx(2 * 6 / (2 * 6 + 2))
    assert m["span_precision"] == pytest.approx(1 / 3) and m["span_recall"] == pytest.approx(1 / 4)
    assert m["span_f1"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 3))


def test_tagging_metrics_span_must_match_exactly():
    one_word_too_long = tagging_metrics([[0, 1, 1, 0]], [[0, 1, 1, 1]])
    assert one_word_too_long["span_f1"] == 0.0 and one_word_too_long["token_recall"] == 1.0
    exact = tagging_metrics([[0, 1, 1, 0]], [[0, 1, 1, 0]])
    assert exact["span_f1"] == 1.0 and exact["word_accuracy"] == 1.0
    nothing = tagging_metrics([[0, 0]], [[0, 0]])
    assert nothing["span_f1"] == 0.0 and nothing["token_precision"] == 0.0 and nothing["word_accuracy"] == 1.0


def test_tagging_metrics_errors():
    with pytest.raises(ValueError, match="one prediction per example"):
        tagging_metrics([[0, 1]], [[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="at least one"):
        tagging_metrics([], [])
    with pytest.raises(ValueError, match="2 gold labels but 3 predictions"):
        tagging_metrics([[0, 1]], [[0, 1, 1]])


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(seed)
    num_labels = rng.choice([2, 3, 5])
    n = rng.randint(5, 60)
    y_true = [rng.randrange(num_labels) for _ in range(n)]
    y_pred = [rng.randrange(num_labels - 1 if seed == 0 else num_labels) for _ in range(n)]  # seed 0: a class never predicted
    m = classification_metrics(y_true, y_pred, num_labels)
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(
        metrics.f1_score(y_true, y_pred, average="macro", labels=list(range(num_labels)), zero_division=0))


def test_classification_metrics_by_hand_and_errors():
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], num_labels=3)
    # F1(0) = 2/3, F1(1) = 4/5, F1(2) = 0 (absent): the mean over all three classes
    assert m == pytest.approx({"accuracy": 0.75, "macro_f1": (2 / 3 + 4 / 5 + 0) / 3})
    with pytest.raises(ValueError, match="as many predictions as labels"):
        classification_metrics([0, 1], [0], 2)
    with pytest.raises(ValueError, match="at least one"):
        classification_metrics([], [], 2)


# -- the heads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sequence_classifier_shapes_and_loss(pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(tiny_config(), 4, pooling=pooling).eval()
    ids, mask = batch()
    out = model(ids, mask)
    assert isinstance(out, ClassifierOutput) and out.loss is None and out.logits.shape == (3, 4)
    labels = torch.tensor([0, 3, 1])
    loss = model(ids, mask, labels).loss
    assert loss.item() == pytest.approx(F.cross_entropy(out.logits, labels).item(), abs=1e-6)
    with pytest.raises(ValueError, match="labels must be"):
        model(ids, mask, labels[:2])


def test_mean_pooling_ignores_padding():
    torch.manual_seed(0)
    model = SequenceClassifier(tiny_config(), 3, pooling="mean").eval()
    ids = torch.tensor([[2, 7, 8, 9, 3]])
    short = model(ids, torch.ones_like(ids)).logits
    padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    padded_mask = torch.cat([torch.ones_like(ids), torch.zeros(1, 4, dtype=torch.long)], 1)
    padded = model(padded_ids, padded_mask).logits
    assert torch.allclose(short, padded, atol=1e-5)
    assert not torch.allclose(padded, model(padded_ids, torch.ones_like(padded_ids)).logits, atol=1e-5)
    cls = SequenceClassifier(tiny_config(), 3, pooling="cls").eval()
    cls.load_state_dict(model.state_dict())
    assert not torch.allclose(cls(ids).logits, short, atol=1e-5)  # the two poolings differ


def test_token_classifier_shapes_and_loss():
    torch.manual_seed(0)
    model = TokenClassifier(tiny_config(), 3).eval()
    ids, mask = batch()
    logits = model(ids, mask).logits
    assert logits.shape == (3, 10, 3)
    labels = torch.full((3, 10), -100)
    labels[0, 1], labels[0, 4], labels[1, 2], labels[2, 9] = 2, 0, 1, 1
    loss = model(ids, mask, labels).loss
    expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    nothing = model(ids, mask, torch.full((3, 10), -100)).loss
    assert nothing.item() == 0.0 and nothing.requires_grad
    with pytest.raises(ValueError, match="must match input_ids"):
        model(ids, mask, labels[:, :5])


def test_from_pretrained_copies_the_encoder_and_the_heads_transform():
    torch.manual_seed(0)
    mlm_model = MaskedLM(dataclasses.replace(tiny_config(), vocab_fingerprint="abc"))
    for kind, kwargs in ((SequenceClassifier, {"pooling": "mean"}), (TokenClassifier, {})):
        head = kind.from_pretrained(mlm_model, 3, **kwargs)
        theirs, ours = mlm_model.encoder.state_dict(), head.encoder.state_dict()
        assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in theirs)
        assert head.config.vocab_fingerprint == "abc" and head.num_labels == 3  # the vocabulary travels in the configuration
        # the head's transform comes along (as transformers loads ModernBERT's head.dense and head.norm); the
        # vocabulary projection's bias stays behind, and the classifier is new
        for name in ("head_dense", "head_ln"):
            mine, pretrained = getattr(head, name).state_dict(), getattr(mlm_model, name).state_dict()
            assert mine.keys() == pretrained.keys() and all(torch.equal(mine[k], pretrained[k]) for k in mine)
        assert "head_bias" not in head.state_dict() and head.classifier.weight.shape == (3, mlm_model.config.d_model)
        before = head.encoder.tok_emb.weight.detach().clone()
        with torch.no_grad():
            mlm_model.encoder.tok_emb.weight.add_(1.0)
        assert torch.equal(head.encoder.tok_emb.weight, before)
        qkv = mlm_model.encoder.blocks[0].attn.qkv.weight.detach().clone()
        with torch.no_grad():
            head.encoder.blocks[0].attn.qkv.weight.zero_()
        assert torch.equal(mlm_model.encoder.blocks[0].attn.qkv.weight, qkv) and qkv.abs().sum() > 0
        assert all(p.data_ptr() != q.data_ptr() for p in head.parameters() for q in mlm_model.parameters())
    with pytest.raises(ValueError, match="takes a MaskedLM"):
        SequenceClassifier.from_pretrained(TokenClassifier(tiny_config(), 2), 2)


@pytest.mark.parametrize("bad", [1, 0, True, 2.0])
def test_num_labels_checked(bad):
    with pytest.raises(ValueError, match="num_labels must be an int >= 2"):
        SequenceClassifier(tiny_config(), bad)
    with pytest.raises(ValueError, match="num_labels must be an int >= 2"):
        TokenClassifier(tiny_config(), bad)


def test_head_argument_errors():
    with pytest.raises(ValueError, match="pooling must be 'cls'"):
        SequenceClassifier(tiny_config(), 2, pooling="max")
    with pytest.raises(ValueError, match="dropout must be in"):
        TokenClassifier(tiny_config(), 2, dropout=1.0)


def test_build_model_picks_the_head():
    cls_task = TaskData("c", "classification", ("a", "b", "c"))
    tag_task = TaskData("t", "tagging", ("prose", "code"))
    torch.manual_seed(0)
    pretrained = MaskedLM(tiny_config())
    a = build_model(cls_task, pretrained, pooling="mean")
    assert type(a) is SequenceClassifier and a.num_labels == 3 and a.pooling == "mean"
    b = build_model(tag_task, pretrained)
    assert type(b) is TokenClassifier and b.num_labels == 2
    assert torch.equal(b.encoder.tok_emb.weight, pretrained.encoder.tok_emb.weight)
    scratch1, scratch2 = build_model(tag_task, tiny_config(), seed=3), build_model(tag_task, tiny_config(), seed=3)
    assert all(torch.equal(x, y) for x, y in zip(scratch1.parameters(), scratch2.parameters()))
    assert not torch.equal(scratch1.encoder.tok_emb.weight, pretrained.encoder.tok_emb.weight)
    assert not torch.equal(scratch1.encoder.tok_emb.weight, build_model(tag_task, tiny_config(), seed=4).encoder.tok_emb.weight)
    with pytest.raises(ValueError, match="unknown task kind 'ranking'"):
        build_model(TaskData("r", "ranking", ("a", "b")), tiny_config())
    with pytest.raises(ValueError, match="init must be a pretrained MaskedLM or an EncoderConfig"):
        build_model(cls_task, a)


# -- encoding -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def piece_tok():
    tok = mlm.tokenizer_from_vocab(PIECES)
    assert tok.tokenize("autograd computes") == ["auto", "##grad", "computes"]
    return tok


def test_encode_tagging_labels_the_first_piece(piece_tok):
    ex = TaggingExample(("Autograd", "computes", "the", "gradient", "x", "."), (1, 0, 0, 0, 1, 0), "s")
    [chunk] = encode_tagging(piece_tok, [ex], max_length=64)
    ids = {t: piece_tok.token_to_id(t) for t in PIECES}
    assert chunk["input_ids"] == [piece_tok.cls_id, ids["auto"], ids["##grad"], ids["computes"], ids["the"], ids["gradient"],
                                  ids["x"], ids["."], piece_tok.sep_id]
    assert chunk["labels"] == [-100, 1, -100, 0, 0, 0, 1, 0, -100]
    assert chunk["words"] == [0, 1, 2, 3, 4, 5] and chunk["example"] == 0


def test_encode_tagging_cuts_long_examples_at_word_boundaries(piece_tok):
    rng = random.Random(0)
    words = tuple(rng.choice(["autograd", "computes", "the", "gradient", "x", "."]) for _ in range(40))
    labels = tuple(int(w in ("autograd", "x")) for w in words)
    short = TaggingExample(("x", "the"), (1, 0), "s")
    examples = [TaggingExample(words, labels, "s"), short]
    for max_length in (3, 4, 7, 12):
        chunks = encode_tagging(piece_tok, examples, max_length=max_length)
        assert len(chunks) > 2
        assert all(len(c["input_ids"]) <= max_length and len(c["labels"]) == len(c["input_ids"]) for c in chunks)
        assert all(c["input_ids"][0] == piece_tok.cls_id and c["input_ids"][-1] == piece_tok.sep_id for c in chunks)
        assert all(c["labels"][0] == -100 and c["labels"][-1] == -100 for c in chunks)
        if max_length > 3:  # room for both pieces of "autograd": no chunk starts inside a word
            assert all(piece_tok.id_to_token(c["input_ids"][1]) != "##grad" for c in chunks)
        first = [w for c in chunks if c["example"] == 0 for w in c["words"]]
        assert first == list(range(len(words)))  # every word exactly once, in order
        assert [w for c in chunks if c["example"] == 1 for w in c["words"]] == [0, 1]
        for c in chunks:
            labelled = [y for y in c["labels"] if y != -100]
            assert labelled == [examples[c["example"]].labels[w] for w in c["words"]]
    with pytest.raises(ValueError, match="max_length must be an int >= 3"):
        encode_tagging(piece_tok, examples, max_length=2)


def test_encode_classification_truncates(piece_tok):
    examples = [ClassificationExample("autograd computes the gradient", 1, "s"), ClassificationExample("x", 0, "s")]
    enc = encode_classification(piece_tok, examples, max_length=4)
    assert enc[0] == {"input_ids": [2, 5, 6, 3], "label": 1}
    assert enc[1] == {"input_ids": [2, 10, 3], "label": 0}


class _IsX(nn.Module):
    """Predicts label 1 exactly at the pieces of one token id: a model whose output we know."""

    def __init__(self, token_id: int, num_labels: int = 2):
        super().__init__()
        self.token_id, self.num_labels = token_id, num_labels
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, labels=None):
        hit = (input_ids == self.token_id).float()
        logits = torch.stack([1 - hit, hit] + [torch.full_like(hit, -1.0)] * (self.num_labels - 2), -1)
        return ClassifierOutput(None, logits)


def test_predict_reassembles_words_in_order(piece_tok):
    rng = random.Random(1)
    examples = []
    for n in (30, 1, 7, 25):
        words = tuple(rng.choice(["autograd", "computes", "the", "gradient", "x", "."]) for _ in range(n))
        examples.append(TaggingExample(words, tuple(int(w == "x") for w in words), "s"))
    examples.append(TaggingExample(("x", "\x07", "x"), (1, 1, 1), "s"))  # the normaliser erases the middle word
    task = TaskData("t", "tagging", ("prose", "code"), [], [], examples)
    model = _IsX(piece_tok.token_to_id("x"))
    for max_length in (4, 9, 64):
        preds = predict(model, piece_tok, task, "test", max_length=max_length, batch_size=3)
        assert preds[:-1] == [list(ex.labels) for ex in examples[:-1]]
        assert preds[-1] == [1, 0, 1]  # an erased word has no piece: predicted 0
    m = evaluate_task(model, piece_tok, TaskData("t", "tagging", ("prose", "code"), [], [], examples[:-1]), "test", max_length=5)
    assert m["span_f1"] == 1.0 and m["word_accuracy"] == 1.0


def test_predict_with_a_biased_token_classifier(piece_tok):
    torch.manual_seed(0)
    model = TokenClassifier(tiny_config(vocab_size=piece_tok.vocab_size), 2)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 1.0]))
    examples = [TaggingExample(("autograd", "computes", "the", "gradient"), (0, 0, 0, 0), "s"),
                TaggingExample(("x",) * 11, (0,) * 11, "s")]
    task = TaskData("t", "tagging", ("prose", "code"), [], [], examples)
    model.train()
    assert predict(model, piece_tok, task, max_length=5) == [[1, 1, 1, 1], [1] * 11]
    assert model.training  # predict restores the mode


def test_predict_classification(piece_tok):
    examples = [ClassificationExample(t, 0, "s") for t in ("x the", "the gradient", "autograd x", "computes")]
    task = TaskData("c", "classification", ("a", "b", "c"), [], [], examples)

    class FirstIsX(_IsX):
        def forward(self, input_ids, attention_mask=None, labels=None):
            any_x = (input_ids == self.token_id).any(1).float()  # any x in the text -> 1, else 0
            return ClassifierOutput(None, torch.stack([torch.full_like(any_x, 0.5), any_x, torch.zeros_like(any_x)], -1))

    assert predict(FirstIsX(piece_tok.token_to_id("x"), 3), piece_tok, task, batch_size=2) == [1, 0, 1, 0]


# -- fine-tuning --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def word_tok():
    return mlm.tokenizer_from_vocab(WORDS + ["."])


A_WORDS, B_WORDS = WORDS[:10], WORDS[10:]


def classification_task(seed=0, n_train=64, n_valid=24) -> TaskData:
    """Class 0: texts of the first ten words; class 1: of the last ten."""
    rng = random.Random(seed)

    def examples(n):
        out = []
        for i in range(n):
            label = i % 2
            pool = B_WORDS if label else A_WORDS
            out.append(ClassificationExample(" ".join(rng.choice(pool) for _ in range(rng.randint(3, 8))), label, "s"))
        return out

    return TaskData("toy", "classification", ("a", "b"), examples(n_train), examples(n_valid), examples(n_valid))


def tagging_task(seed=0, n_train=48, n_valid=16) -> TaskData:
    """Label 1 for the words of the second half of the vocabulary."""
    rng = random.Random(seed)

    def examples(n):
        out = []
        for _ in range(n):
            words = tuple(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
            out.append(TaggingExample(words, tuple(int(w in B_WORDS) for w in words), "s"))
        return out

    return TaskData("toy-tags", "tagging", ("prose", "code"), examples(n_train), examples(n_valid), examples(n_valid))


def ft_config(**kw) -> FinetuneConfig:
    return FinetuneConfig(**{**dict(lr=3e-3, batch_size=16, max_steps=40, eval_every=10, patience=10, max_length=16,
                                     device="cpu", seed=0), **kw})


class _Recording(SequenceClassifier):
    """Keeps a copy of the weights each time the model is switched to eval mode (every evaluation)."""

    def train(self, mode: bool = True):
        if not mode:
            self.__dict__.setdefault("snapshots", []).append({k: v.detach().clone() for k, v in self.state_dict().items()})
        return super().train(mode)


def test_finetune_classification_learns(word_tok):
    task = classification_task()
    model = build_model(task, tiny_config(vocab_size=word_tok.vocab_size), seed=0)
    model.__class__ = _Recording
    result = finetune(model, word_tok, task, ft_config())
    assert result.model is model
    steps = [h["step"] for h in result.history]
    at_best, last = model.snapshots[steps.index(result.best_step)], model.snapshots[len(steps) - 1]
    final = model.state_dict()
    assert all(torch.equal(final[k], at_best[k]) for k in final)  # the best evaluation's weights, restored
    if result.best_step != steps[-1]:
        assert not all(torch.equal(final[k], last[k]) for k in final)
    assert [h["step"] for h in result.history] == [10, 20, 30, 40]
    assert all({"train_loss", "valid_accuracy", "valid_macro_f1", "epoch"} <= h.keys() for h in result.history)
    best = max(result.history, key=lambda h: h["valid_macro_f1"])
    assert result.best_step == best["step"] and result.valid["macro_f1"] == best["valid_macro_f1"]
    assert result.valid["accuracy"] > 0.75  # chance is 0.5
    # the model returned carries the best weights: re-evaluating gives the recorded validation metrics
    assert evaluate_task(result.model, word_tok, task, "valid", max_length=16) == pytest.approx(result.valid)
    assert result.test == pytest.approx(evaluate_task(result.model, word_tok, task, "test", max_length=16))
    assert not result.model.training and result.seconds > 0


def test_finetune_tagging_learns(word_tok):
    task = tagging_task()
    model = build_model(task, tiny_config(vocab_size=word_tok.vocab_size), seed=0)
    result = finetune(model, word_tok, task, ft_config(max_steps=30), evaluate_test=False)
    assert result.test is None and [h["step"] for h in result.history] == [10, 20, 30]
    assert result.valid["word_accuracy"] > 0.75 and "valid_span_f1" in result.history[-1]
    assert evaluate_task(result.model, word_tok, task, "valid", max_length=16) == pytest.approx(result.valid)


def test_finetune_is_reproducible_and_stops_early(word_tok):
    task = classification_task()
    runs = [finetune(build_model(task, tiny_config(vocab_size=word_tok.vocab_size), seed=0), word_tok, task,
                     ft_config(max_steps=20, eval_every=2, patience=1, lr=1e-9), evaluate_test=False) for _ in range(2)]
    assert runs[0].history == runs[1].history
    # with a learning rate of 1e-9 nothing improves: one evaluation without progress ends the run
    assert len(runs[0].history) == 2 and runs[0].best_step == 2


def test_seed_offset_moves_the_head_and_the_data_order(word_tok, monkeypatch):
    """MLM_LESSONS_SEED_OFFSET=k gives the run that seed + k gives; the label subsample is not moved."""
    task = classification_task()
    config = tiny_config(vocab_size=word_tok.vocab_size)

    def run(seed):
        return finetune(build_model(task, config, seed=seed), word_tok, task, ft_config(seed=seed, max_steps=20), evaluate_test=False)

    monkeypatch.delenv("MLM_LESSONS_SEED_OFFSET", raising=False)
    plain, next_seed = run(0), run(1)
    monkeypatch.setenv("MLM_LESSONS_SEED_OFFSET", "1")
    shifted = run(0)
    assert shifted.history == next_seed.history and shifted.history != plain.history
    assert all(torch.equal(a, b) for a, b in zip(shifted.model.state_dict().values(), next_seed.model.state_dict().values()))
    with_offset = task.subsample(5, seed=0).train
    monkeypatch.delenv("MLM_LESSONS_SEED_OFFSET")
    assert with_offset == task.subsample(5, seed=0).train


def test_finetune_errors(word_tok):
    task = classification_task()
    config = tiny_config(vocab_size=word_tok.vocab_size)
    single = TaskData("one", "classification", ("a", "b"), [ex for ex in task.train if ex.label == 0], task.valid, task.test)
    with pytest.raises(ValueError, match="hold a single label"):
        finetune(build_model(single, config), word_tok, single, ft_config())
    tag_single = tagging_task()
    tag_single.train = [TaggingExample(ex.words, (0,) * len(ex.words), ex.source) for ex in tag_single.train]
    with pytest.raises(ValueError, match="hold a single label"):
        finetune(build_model(tag_single, config), word_tok, tag_single, ft_config())
    with pytest.raises(ValueError, match="vocabulary"):
        finetune(build_model(task, tiny_config(vocab_size=word_tok.vocab_size + 1)), word_tok, task, ft_config())
    other = build_model(task, config.for_vocabulary(mlm.tokenizer_from_vocab(list(reversed(WORDS + ["."])))))
    with pytest.raises(ValueError, match="vocabulary"):
        finetune(other, word_tok, task, ft_config())
    with pytest.raises(ValueError, match="needs a SequenceClassifier, got TokenClassifier"):
        finetune(TokenClassifier(config, 2), word_tok, task, ft_config())
    with pytest.raises(ValueError, match="needs a TokenClassifier, got SequenceClassifier"):
        finetune(SequenceClassifier(config, 2), word_tok, tagging_task(), ft_config())
    with pytest.raises(ValueError, match="predicts 3 labels"):
        finetune(SequenceClassifier(config, 3), word_tok, task, ft_config())
    no_valid = TaskData("nv", "classification", ("a", "b"), task.train, [], task.test)
    with pytest.raises(ValueError, match="no validation examples"):
        finetune(build_model(no_valid, config), word_tok, no_valid, ft_config())
    with pytest.raises(ValueError, match="config must be a FinetuneConfig"):
        finetune(build_model(task, config), word_tok, task, {"lr": 1e-3})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": 0}, "lr must be > 0"),
        ({"lr": -1e-3}, "lr must be > 0"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"max_steps": 2.5}, "max_steps must be a positive int"),
        ({"patience": 0}, "patience must be a positive int"),
        ({"eval_every": 0}, "eval_every must be a positive int"),
        ({"max_length": 2}, "max_length must be >= 3"),
        ({"warmup_ratio": 1.0}, r"warmup_ratio must be in \[0, 1\)"),
        ({"weight_decay": -0.1}, "weight_decay must be >= 0"),
        ({"clip_norm": 0}, "clip_norm > 0"),
        ({"seed": -1}, "seed must be an int >= 0"),
    ],
)
def test_finetune_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**kwargs)


def test_finetune_config_defaults():
    c = FinetuneConfig()
    assert c.to_dict()["lr"] == 5e-4 and c.eval_every is None
    assert FinetuneConfig(eval_every=5).eval_every == 5
