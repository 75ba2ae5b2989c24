"""Fine-tuning tasks labelled from provenance: sub-package labels, code-span labels, leakage, subsampling."""

from __future__ import annotations

import random

import pytest

import mlm_lessons as mlm
from mlm_lessons.corpus import Corpus, Document
from mlm_lessons.tasks import (
    ClassificationExample,
    TaggingExample,
    TaskData,
    code_span_task,
    load_task,
    paragraphs,
    spans_of,
    subpackage_of,
    subpackage_task,
    words_with_offsets,
)


def doc(raw: str, module: str, name: str = "Foo", kind: str = "class") -> Document:
    """A document whose text and code spans come from the real cleaner."""
    text, spans = mlm.clean_docstring(raw)
    return Document(text=text, source="t", module=module, name=name, kind=kind, code_spans=tuple(spans))


# -- labels ------------------------------------------------------------------------------------------


def test_subpackage_of():
    assert subpackage_of("torch.nn.modules.linear") == "nn"
    assert subpackage_of("torch.optim.sgd") == "optim"
    assert subpackage_of("torch.distributed") == "distributed"
    assert subpackage_of("torch.linalg") is None  # not one of the classes
    assert subpackage_of("torch.linalg", classes=("nn", "linalg")) == "linalg"
    assert subpackage_of("torch.nn.functional", classes=("optim", "fx")) is None
    assert subpackage_of("numpy.linalg") is None
    assert subpackage_of("nn.modules") is None
    assert subpackage_of("torch") is None
    assert subpackage_of("torchvision.nn") is None


def test_paragraphs_move_code_spans_to_paragraph_offsets():
    raw = (
        "Short summary.\n\n"
        "First para with ``x`` here and more words after it.\n\n"
        "Second para mentions :attr:`weight` and :func:`torch.matmul` for the product of inputs."
    )
    d = doc(raw, "torch.nn.x")
    assert [d.text[a:b] for a, b in d.code_spans] == ["x", "weight", "torch.matmul"]
    paras = paragraphs(d)
    assert [p for p, _ in paras] == [
        "First para with x here and more words after it.",
        "Second para mentions weight and torch.matmul for the product of inputs.",
    ]  # "Short summary." has fewer than 8 words
    assert [[p[a:b] for a, b in spans] for p, spans in paras] == [["x"], ["weight", "torch.matmul"]]
    assert paras[0][1] == ((16, 17),)
    assert [p for p, _ in paragraphs(d, min_words=1)][0] == "Short summary."


def test_paragraphs_strip_and_clip():
    text = "one two three\n\n  padded paragraph with some code inside it here  \n\nlast words of the text"
    a = text.index("code")
    cross = (text.index("it here"), text.index("words") + len("words"))  # runs over the paragraph boundary
    d = Document(text=text, source="t", module="torch.nn.x", name="Foo", kind="class", code_spans=((a, a + 4), cross))
    paras = paragraphs(d, min_words=3)
    p, spans = paras[1]
    assert p == "padded paragraph with some code inside it here"
    assert [p[x:y] for x, y in spans] == ["code", "it here"]  # clipped at the paragraph's end
    last, last_spans = paras[2]
    assert [last[x:y] for x, y in last_spans] == ["last words"]  # clipped at its start
    assert paras[0] == ("one two three", ())


def test_words_with_offsets():
    words = words_with_offsets("see torch.nn.Linear(x), ok")
    assert [w for w, _ in words] == ["see", "torch", ".", "nn", ".", "Linear", "(", "x", ")", ",", "ok"]
    assert all("see torch.nn.Linear(x), ok"[s:e] == w for w, (s, e) in words)


# -- a hand-made corpus -------------------------------------------------------------------------------

NN_1 = "Applies a linear transformation to the incoming data of the layer."
NN_REPEAT = "This paragraph is repeated in two documents of the nn package."
OPT_1 = "Implements stochastic gradient descent with momentum for the given parameters."
SHARED = "This paragraph is shared by two different sub packages and so ambiguous."
LINALG = "Computes the matrix norm of the given input tensor along a dimension."
NN_VALID = "Applies a convolution over an input signal composed of several planes."
OPT_VALID = "Implements the Adam algorithm with decoupled weight decay for the parameters."
NN_TEST = "Applies batch normalization over a four dimensional input of this module."
OPT_TEST = "Decays the learning rate of each parameter group by gamma every epoch."


def small_corpus(test_optim: bool = True) -> Corpus:
    train = [
        doc(f"{NN_1}\n\n{NN_REPEAT}\n\nToo short.", "torch.nn.modules.linear", "Linear"),
        doc(f"{NN_REPEAT}\n\n{SHARED}", "torch.nn.modules.conv", "Conv1d"),
        doc(f"{OPT_1}\n\n{SHARED}", "torch.optim.sgd", "SGD"),
        doc(LINALG, "torch.linalg", "norm", "function"),
        doc("Returns the numpy array of the given shape filled with ones here.", "numpy.core", "ones", "function"),
    ]
    valid = [
        doc(f"{NN_VALID}\n\n{NN_1}", "torch.nn.modules.conv", "Conv2d"),  # NN_1 is in train: leakage
        doc(OPT_VALID, "torch.optim.adamw", "AdamW"),
    ]
    test = [doc(NN_TEST, "torch.nn.modules.batchnorm", "BatchNorm2d")]
    if test_optim:
        test.append(doc(f"{OPT_TEST}\n\n{OPT_TEST} Again.", "torch.optim.lr_scheduler", "StepLR"))
    return Corpus("tiny", train, valid, test)


def test_subpackage_task_on_a_hand_made_corpus():
    task = subpackage_task(small_corpus(), classes=("nn", "optim"))
    assert task.kind == "classification" and task.label_names == ("nn", "optim") and task.num_labels == 2
    as_tuples = lambda split: [(ex.text, ex.label, ex.source) for ex in task.split(split)]
    assert as_tuples("train") == [
        (NN_1, 0, "torch.nn.modules.linear.Linear"),
        (NN_REPEAT, 0, "torch.nn.modules.linear.Linear"),  # kept once, not again for Conv1d
        (OPT_1, 1, "torch.optim.sgd.SGD"),
    ]  # SHARED (nn and optim) dropped; linalg and numpy are not classes
    assert as_tuples("valid") == [(NN_VALID, 0, "torch.nn.modules.conv.Conv2d"), (OPT_VALID, 1, "torch.optim.adamw.AdamW")]
    assert [ex.text for ex in task.test] == [NN_TEST, OPT_TEST, f"{OPT_TEST} Again."]
    assert task.label_counts("train") == {"nn": 2, "optim": 1}
    assert task.stats()[1] == {"split": "valid", "examples": 2, "nn": 1, "optim": 1}


def test_subpackage_task_with_linalg_as_a_class():
    task = subpackage_task(
        Corpus("t", [doc(LINALG, "torch.linalg", "norm", "function"), doc(NN_1, "torch.nn.x")],
               [doc(NN_VALID, "torch.nn.y"), doc(OPT_VALID, "torch.linalg", "inv")],
               [doc(NN_TEST, "torch.nn.z"), doc(OPT_TEST, "torch.linalg", "det")]),
        classes=("linalg", "nn"),
    )
    assert [(ex.text, ex.label) for ex in task.train] == [(LINALG, 0), (NN_1, 1)]


def test_subpackage_task_errors():
    with pytest.raises(ValueError, match="class 'optim' has no example in the test split"):
        subpackage_task(small_corpus(test_optim=False), classes=("nn", "optim"))
    with pytest.raises(ValueError, match="at least two classes"):
        subpackage_task(small_corpus(), classes=("nn",))
    with pytest.raises(ValueError, match="at least two classes"):
        subpackage_task(small_corpus(), classes=("nn", "nn"))
    with pytest.raises(ValueError, match="unknown task 'pos'"):
        load_task("pos", small_corpus())


def test_code_span_task_labels_exactly_the_code_words():
    train = [doc(
        "Applies the layer ``torch.nn.Linear`` to the :attr:`input` tensor and returns it.\n\n"
        "A paragraph without any code at all in its many words.",
        "torch.nn.modules.linear", "Linear",
    )]
    valid = [doc("Calls :func:`torch.matmul` on ``a, b`` and then adds the bias term.", "torch.nn.x", "Bar")]
    test = [doc(f"{NN_TEST}\n\n{'Applies the layer ``torch.nn.Linear`` to the :attr:`input` tensor and returns it.'}",
                "torch.nn.y", "Baz")]
    task = code_span_task(Corpus("t", train, valid, test))
    assert task.kind == "tagging" and task.label_names == ("prose", "code")
    [ex] = task.train
    assert isinstance(ex, TaggingExample) and ex.source == "torch.nn.modules.linear.Linear"
    assert list(zip(ex.words, ex.labels)) == [
        ("Applies", 0), ("the", 0), ("layer", 0), ("torch", 1), (".", 1), ("nn", 1), (".", 1), ("Linear", 1),
        ("to", 0), ("the", 0), ("input", 1), ("tensor", 0), ("and", 0), ("returns", 0), ("it", 0), (".", 0),
    ]
    assert ex.text == "Applies the layer torch . nn . Linear to the input tensor and returns it ."
    [v] = task.valid
    assert [w for w, y in zip(v.words, v.labels) if y] == ["torch", ".", "matmul", "a", ",", "b"]
    assert spans_of(v.labels) == {(1, 4), (5, 8)}
    assert task.test == []  # the code paragraph is a train paragraph, NN_TEST has no code
    assert task.label_counts("train") == {"prose": 10, "code": 6}
    everything = code_span_task(Corpus("t", train, valid, test), only_with_code=False)
    assert len(everything.train) == 2 and set(everything.train[1].labels) == {0}
    assert [ex.words[:3] for ex in everything.test] == [("Applies", "batch", "normalization")]


def test_load_task_on_a_given_corpus():
    from mlm_lessons.tasks import SUBPACKAGES

    def split(tag):
        return [doc(f"Paragraph number {i} of the {tag} split documents sub package {sub} here.", f"torch.{sub}.m", f"C{i}")
                for i, sub in enumerate(SUBPACKAGES)]

    corpus = Corpus("t", split("train"), split("valid"), split("test"))
    task = load_task("torch-subpackage", corpus)
    assert task.label_names == SUBPACKAGES
    assert [ex.label for ex in task.test] == list(range(len(SUBPACKAGES)))
    tagging = load_task("code-spans", corpus)
    assert tagging.kind == "tagging" and tagging.train == []  # no paragraph holds code


# -- subsampling ---------------------------------------------------------------------------------------


def classification_data(n0=10, n1=3, n2=0) -> TaskData:
    train = [ClassificationExample(f"text {c} {i}", c, "s") for c, n in ((0, n0), (1, n1), (2, n2)) for i in range(n)]
    random.Random(0).shuffle(train)
    return TaskData("t", "classification", ("a", "b", "c"), train, ["v"], ["t"])


def test_subsample_classification():
    task = classification_data()
    small = task.subsample(5, seed=1)
    assert small.label_counts("train") == {"a": 5, "b": 3, "c": 0}
    assert small.valid is task.valid and small.test is task.test
    assert [task.train.index(ex) for ex in small.train] == sorted(task.train.index(ex) for ex in small.train)
    assert small.subsample(None) is small
    assert task.subsample(5, seed=1).train == small.train  # deterministic per seed
    assert any(task.subsample(5, seed=s).train != small.train for s in range(2, 6))
    assert task.subsample(100).label_counts("train") == task.label_counts("train")
    assert task.label_counts("train") == {"a": 10, "b": 3, "c": 0}


def test_subsample_tagging():
    train = [TaggingExample(("w", str(i)), (i % 2, 0), "s") for i in range(20)]
    task = TaskData("t", "tagging", ("prose", "code"), train, [], [])
    small = task.subsample(3, seed=0)
    assert len(small.train) == 6 and all(ex in train for ex in small.train)
    assert small.train == task.subsample(3, seed=0).train


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_subsample_rejects(bad):
    with pytest.raises(ValueError, match="per_class must be a positive int"):
        classification_data().subsample(bad)


def test_split_name_checked():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        classification_data().split("dev")


# -- the real tasks -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_subpackage_task_has_no_leakage_and_right_labels(corpora):
    corpus = corpora["pytorch-docs"]
    task = load_task("torch-subpackage", corpus)
    train_text = "\x00".join(corpus.texts("train"))  # what DAPT trains on
    for split in ("valid", "test"):
        leaked = [ex for ex in task.split(split) if ex.text in train_text]
        assert not leaked, f"{len(leaked)} {split} paragraphs occur in train documents, e.g. {leaked[0]}"
    for ex in task.train + task.valid + task.test:
        module = ex.source.rsplit(".", 1)[0]
        assert task.label_names[ex.label] == subpackage_of(module)
    assert all(n > 0 for split in ("train", "valid", "test") for n in task.label_counts(split).values())


@pytest.mark.slow
def test_real_code_span_task_labels_come_from_the_markup(corpora):
    corpus = corpora["pytorch-docs"]
    task = load_task("code-spans", corpus)
    by_source: dict[str, list[Document]] = {}
    for d in corpus.test:
        by_source.setdefault(f"{d.module}.{d.name}", []).append(d)
    sample = random.Random(0).sample(task.test, 50)
    checked = 0
    for ex in sample:
        docs = by_source[ex.source]
        code = "".join("".join(w.split()) for d in docs for w in d.code_words())
        assert any(ex.labels), ex  # only paragraphs with code
        for a, b in spans_of(ex.labels):
            assert "".join(ex.words[a:b]) in code, (ex.words[a:b], ex.source)
            checked += 1
    assert checked >= 50
