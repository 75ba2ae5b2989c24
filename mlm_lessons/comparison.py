"""Fair comparisons of starting points for fine-tuning, and the baseline that says what "good" is.

- :func:`choose_lr` – the learning rate of one initialisation, chosen on the **validation** split
  (mean over seeds), with a flag when the best value sits at the edge of the grid;
- :func:`lr_protocol` – the whole protocol for any run: a grid of rates on every seed, widened
  while the best sits at its edge, the rate chosen on validation;
- :func:`paired` – a difference A − B over the same seeds (same head initialisation, same label
  subsample, same order): its mean, the standard deviation of the paired differences, the t
  statistic and how many seeds A won; ``clear`` when the mean exceeds that spread;
- :func:`bag_of_words` – scikit-learn's logistic regression on word counts (a paragraph's, for
  classification; a word's own and its neighbours', for tagging), its ``C`` chosen on the
  validation split: what word identity alone achieves on a task;
- :func:`linear_probe` – the same logistic regression, trained to convergence, on a frozen
  encoder's pooled vectors (standardised): what the representation holds, with no fine-tuning;
- :func:`token_probe` – the same for token labeling, on the encoder's state at each word's first piece.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable, Mapping, Sequence

import torch

from .finetuning import build_model, finetune, main_metric, task_metrics
from .masking import pad_examples
from .model import check_vocabulary, evaluating
from .retrieval import embed
from .tasks import SequenceClassification, TaskData, TokenLabeling, encode_tagging, first_pieces

__all__ = ["choose_lr", "lr_protocol", "finetune_with_protocol", "PairedDifference", "paired", "bag_of_words", "linear_probe", "token_probe", "mean_std", "BOW_CS"]

#: The inverse regularisation strengths :func:`bag_of_words` chooses from.
BOW_CS = (0.01, 0.1, 1.0, 10.0, 100.0)


def choose_lr(valid_scores: Mapping[float, Sequence[float]]) -> tuple[float, bool]:
    """``(best learning rate, at_edge)`` from ``{lr: validation scores over seeds}``: the highest
    mean score (ties: the smaller rate). ``at_edge`` says the best is the grid's smallest or largest
    rate, so the grid should be widened before the choice is trusted."""
    if len(valid_scores) < 2:
        raise ValueError(f"choose_lr needs at least two learning rates to choose from, got {list(valid_scores)}")
    for lr, scores in valid_scores.items():
        if not lr > 0 or not len(scores):
            raise ValueError(f"every learning rate must be > 0 with at least one score, got {lr!r}: {scores!r}")
    grid = sorted(valid_scores)
    best = max(grid, key=lambda lr: (statistics.mean(valid_scores[lr]), -lr))
    return best, best in (grid[0], grid[-1])


def lr_protocol(run: Callable[[float, int], Mapping], lrs: Sequence[float], seeds: Sequence[int], *,
                widen: int = 2, factor: float = 2.0) -> dict:
    """The rate-choosing protocol of chapter 8, for any ``run(lr, seed) -> {"valid": score, ...}``.

    Every rate of ``lrs`` runs on every seed; :func:`choose_lr` picks the rate with the best mean
    validation score; while the best is at an edge of the grid, the grid grows by one rate on that
    side (``factor`` times larger or smaller), at most ``widen`` times. Returns ``{"lr": chosen,
    "at_edge": whether it still is, "runs": {lr: [run's result per seed]}}``.
    """
    if len(lrs) < 2:
        raise ValueError(f"lrs needs at least two learning rates, got {list(lrs)}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if not factor > 1:
        raise ValueError(f"factor must be > 1 (the step by which the grid widens), got {factor!r}")
    grid, runs = sorted(lrs), {}
    for attempt in range(widen + 1):
        for lr in grid:
            if lr not in runs:
                runs[lr] = [dict(run(lr, seed)) for seed in seeds]
        best, edge = choose_lr({lr: [r["valid"] for r in rows] for lr, rows in runs.items()})
        if not edge or attempt == widen:
            break
        grid.append(best * factor if best == max(grid) else best / factor)
        grid.sort()
    return {"lr": best, "at_edge": edge, "runs": dict(sorted(runs.items()))}


def finetune_with_protocol(task: TaskData, init, tokenizer, config, *, per_class: int | None, lrs: Sequence[float],
                           seeds: Sequence[int], pooling: str = "mean") -> dict:
    """Fine-tune from ``init`` under :func:`lr_protocol`: for each rate and seed, ``per_class`` labels
    drawn with the seed (``None``: all), a head initialised with it, ``config`` with that rate and
    seed. ``init`` is what :func:`~mlm_lessons.finetuning.build_model` takes (a model or an
    ``EncoderConfig``), or a function of the seed returning one (a pretraining run per seed).

    Returns ``{"metric", "lr", "at_edge", "grid": {str(lr): [{"valid", "test", "best_step", "test_metrics"}
    per seed]}}``: ``valid`` and ``test`` the task's main metric (:func:`~mlm_lessons.finetuning.main_metric`),
    ``test_metrics`` every test metric.
    """
    metric = main_metric(task)

    def run(lr: float, seed: int) -> dict:
        part = task.subsample(per_class, seed=seed)
        start = init(seed) if callable(init) and not isinstance(init, torch.nn.Module) else init
        result = finetune(build_model(part, start, pooling=pooling, seed=seed), tokenizer, part,
                          dataclasses.replace(config, lr=lr, seed=seed))
        return {"valid": result.valid[metric], "test": result.test[metric], "best_step": result.best_step,
                "test_metrics": result.test}

    chosen = lr_protocol(run, lrs, seeds)
    return {"metric": metric, "lr": chosen["lr"], "at_edge": chosen["at_edge"],
            "grid": {str(lr): rows for lr, rows in chosen["runs"].items()}}


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``"0.512 ± 0.021"``: the mean and sample standard deviation (0 for one value)."""
    values = list(values)
    if not values:
        raise ValueError("mean_std needs at least one value")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


@dataclass(frozen=True)
class PairedDifference:
    """A − B over ``n`` paired seeds."""

    mean: float
    std: float  # sample standard deviation of the paired differences
    n: int
    wins: int  # seeds where A > B

    @property
    def t(self) -> float:
        """The paired t statistic, mean ÷ (std / √n) (infinite when every difference is the same and not 0)."""
        if self.std == 0:
            return 0.0 if self.mean == 0 else math.copysign(math.inf, self.mean)
        return self.mean / (self.std / math.sqrt(self.n))

    @property
    def p_value(self) -> float:
        """The two-sided p-value of the paired t-test (H0: the mean difference is 0), with n − 1
        degrees of freedom – what ``scipy.stats.ttest_rel`` reports. With five seeds a p-value
        below 0.05 needs a t of about 2.8."""
        t = self.t
        if math.isinf(t):
            return 0.0
        if t == 0:
            return 1.0
        df = self.n - 1
        return _regularized_beta(df / (df + t * t), df / 2, 0.5)

    @property
    def clear(self) -> bool:
        """A is ahead by more than the seed-to-seed spread of the difference (mean > std): with n seeds a
        paired t above √n – a screen, not a test (with 3 seeds p ≈ 0.23, with 5 p ≈ 0.09); the chapters
        print :attr:`p_value` beside it."""
        return self.mean > self.std

    def __str__(self) -> str:
        p = self.p_value
        return f"{self.mean:+.3f} ± {self.std:.3f} (higher on {self.wins} of {self.n} seeds, {'p < 0.001' if p < 0.001 else f'p = {p:.3f}'})"


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, by its continued fraction (the modified
    Lentz method of Numerical Recipes' ``betacf``); the t distribution's two-sided tail is
    I_{df/(df+t²)}(df/2, 1/2)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the continued fraction converges fast on this side only
        return 1.0 - _regularized_beta(1.0 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300

    def guard(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, 400):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d, c = 1.0 / guard(1.0 + even * d), guard(1.0 + even / c)
        h *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d, c = 1.0 / guard(1.0 + odd * d), guard(1.0 + odd / c)
        h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return front * h


def paired(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """The paired difference A − B of scores measured on the same seeds, in the same order."""
    a, b = list(a), list(b)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired comparison needs the same seeds on both sides, at least two; got {len(a)} and {len(b)}")
    d = [x - y for x, y in zip(a, b)]
    return PairedDifference(statistics.mean(d), statistics.stdev(d), len(d), sum(x > 0 for x in d))


# -- logistic regression (scikit-learn, an optional dependency imported only here) ------------------------


def _sklearn(what: str) -> SimpleNamespace:
    """The scikit-learn classes the baselines and probes use, or an ImportError naming ``what``."""
    try:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
    except ImportError as error:  # pragma: no cover - the requirements install it
        raise ImportError(f"{what} needs scikit-learn: pip install scikit-learn") from error
    return SimpleNamespace(DictVectorizer=DictVectorizer, CountVectorizer=CountVectorizer,
                           LogisticRegression=LogisticRegression, StandardScaler=StandardScaler)


def _check_Cs(Cs: Sequence[float]) -> None:
    if not Cs or any(not c > 0 for c in Cs):
        raise ValueError(f"Cs must be positive regularisation strengths, got {Cs!r}")


def _check_labels(task: TaskData, labels, what: str = "examples") -> None:
    if len(set(labels)) < 2:
        raise ValueError(f"the training {what} of {task.name!r} hold a single label; a classifier needs at least two")


def _choose_C(sk: SimpleNamespace, task: TaskData, Cs: Sequence[float], x, y, score: Callable, *, max_iter: int,
              seed: int) -> dict:
    """Logistic regression fitted on ``(x, y)`` for every ``C`` of ``Cs``; the first with the best
    validation score by the task's main metric is kept. ``score(clf, split)``: the split's metrics.
    Returns ``{"C", "valid", "test"}``."""
    metric = main_metric(task)
    best = None
    for c in Cs:
        clf = sk.LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(x, y)
        valid = score(clf, "valid")
        if best is None or valid[metric] > best[1][metric]:
            best = (c, valid, clf)
    c, valid, clf = best
    return {"C": c, "valid": valid, "test": score(clf, "test")}


# -- the bag-of-words baseline --------------------------------------------------------------------------


def _word_features(words: Sequence[str], i: int, window: int) -> dict:
    feats = {f"w={words[i].lower()}": 1}
    for k in range(1, window + 1):
        feats[f"l{k}={words[i - k].lower() if i - k >= 0 else '<s>'}"] = 1
        feats[f"r{k}={words[i + k].lower() if i + k < len(words) else '</s>'}"] = 1
    return feats


class _ParagraphCounts:
    """Classification: one row per paragraph, its word counts (unigrams) – or, with a tokenizer, its piece counts."""

    reads_pieces = True  # takes bag_of_words' tokenizer=

    def __init__(self, sk: SimpleNamespace, task: TaskData, window: int, tokenizer):
        self.task = task
        self.vectorizer = (sk.CountVectorizer(lowercase=True, token_pattern=r"(?u)\b\w+\b") if tokenizer is None
                           else sk.CountVectorizer(analyzer=tokenizer.tokenize))

    def rows(self, split: str) -> list:
        return [ex.text for ex in self.task.split(split)]

    def labels(self) -> list:
        return [ex.label for ex in self.task.train]

    def unpack(self, split: str, flat: list) -> list:
        return list(flat)


class _WordWindows:
    """Tagging: one row per word, the word itself and the ``window`` words on each side."""

    reads_pieces = False

    def __init__(self, sk: SimpleNamespace, task: TaskData, window: int, tokenizer):
        self.task, self.window = task, window
        self.vectorizer = sk.DictVectorizer()

    def rows(self, split: str) -> list:
        return [_word_features(ex.words, i, self.window) for ex in self.task.split(split) for i in range(len(ex.words))]

    def labels(self) -> list:
        return [y for ex in self.task.train for y in ex.labels]

    def unpack(self, split: str, flat: list) -> list:
        out, k = [], 0
        for ex in self.task.split(split):
            out.append(list(flat[k : k + len(ex.words)]))
            k += len(ex.words)
        return out


#: :func:`bag_of_words`' featurisation of each task kind, by the kind's name.
_BAG_OF_WORDS = {"classification": _ParagraphCounts, "tagging": _WordWindows}


def bag_of_words(task: TaskData, *, window: int = 1, Cs: Sequence[float] = BOW_CS, seed: int = 0, tokenizer=None) -> dict:
    """Logistic regression on counts, trained on ``task``'s train split, ``C`` chosen on its
    validation split by the task's metric (macro-F1, span F1). Classification reads a paragraph's
    word counts (unigrams) – or, with ``tokenizer``, the counts of its pieces (a *bag of pieces*:
    what a vocabulary alone gives a classifier); tagging reads each word and the ``window`` words on
    each side.

    Returns ``{"C", "valid", "test"}`` (the metrics dicts of :mod:`mlm_lessons.finetuning`).
    Needs scikit-learn (``pip install scikit-learn``).
    """
    sk = _sklearn("bag_of_words")
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        raise ValueError(f"window must be an int >= 0 (words on each side), got {window!r}")
    _check_Cs(Cs)
    featurisation = _BAG_OF_WORDS.get(str(task.kind))
    if tokenizer is not None and not getattr(featurisation, "reads_pieces", False):
        raise ValueError(f"tokenizer= counts pieces of paragraphs (classification); {task.name!r} is a {task.kind} task: leave it out")
    if featurisation is None:
        raise ValueError(f"unknown task kind {task.kind!r}; expected {' or '.join(repr(k) for k in _BAG_OF_WORDS)}")
    bag = featurisation(sk, task, window, tokenizer)
    x = bag.vectorizer.fit_transform(bag.rows("train"))
    y = bag.labels()
    _check_labels(task, y)

    def score(clf, split):
        predicted = clf.predict(bag.vectorizer.transform(bag.rows(split))).tolist()
        return task_metrics(task, task.split(split), bag.unpack(split, predicted))

    return _choose_C(sk, task, Cs, x, y, score, max_iter=2000, seed=seed)


# -- probes of a frozen encoder -------------------------------------------------------------------------


def linear_probe(model, tokenizer, task: TaskData, *, pooling: str = "mean", Cs: Sequence[float] = BOW_CS, seed: int = 0) -> dict:
    """Logistic regression on ``model``'s frozen pooled vectors (:func:`~mlm_lessons.retrieval.embed`,
    then standardised on the train split), trained to convergence, ``C`` chosen on the validation
    split by macro-F1. A classification task only. Returns ``{"C", "valid", "test"}``.

    Unlike a head trained for a few optimizer steps, the fit does not depend on a learning rate or
    on how the vectors are scaled: anisotropic vectors (all pointing much the same way) are
    standardised first, so the probe reads what the vectors hold, not how easy they are to optimise.
    """
    sk = _sklearn("linear_probe")
    if not isinstance(task.kind, SequenceClassification):
        raise ValueError(f"linear_probe reads one vector per text: a classification task, not {task.kind!r} ({task.name!r})")
    _check_Cs(Cs)
    y = [ex.label for ex in task.train]
    _check_labels(task, y)
    vectors = {s: embed(model, tokenizer, [ex.text for ex in task.split(s)], pooling=pooling).numpy() for s in ("train", "valid", "test")}
    scaler = sk.StandardScaler().fit(vectors["train"])
    x = {s: scaler.transform(v) for s, v in vectors.items()}
    score = lambda clf, split: task_metrics(task, task.split(split), clf.predict(x[split]).tolist())
    return _choose_C(sk, task, Cs, x["train"], y, score, max_iter=5000, seed=seed)


@torch.no_grad()
def _word_states(encoder, tokenizer, examples, batch_size: int):
    """``(states, where)``: the encoder's state at the first piece of every word of ``examples``
    (one row each, chunk by chunk, in word order) and the ``(example, word)`` each row belongs to."""
    chunks = encode_tagging(tokenizer, examples, encoder.config.max_len)
    device = next(encoder.parameters()).device
    rows, where = [], []
    with evaluating(encoder):
        for i in range(0, len(chunks), batch_size):
            items = chunks[i : i + batch_size]
            b = pad_examples(items, pad_id=tokenizer.pad_id)
            states = encoder(b["input_ids"].to(device), b["attention_mask"].to(device)).float().cpu()
            found = list(first_pieces(items, b["labels"]))
            index = torch.tensor([(row, position) for row, _, _, position in found], dtype=torch.long).reshape(-1, 2)
            rows.append(states[index[:, 0], index[:, 1]])
            where += [(example, word) for _, example, word, _ in found]
    return torch.cat(rows), where


def token_probe(model, tokenizer, task: TaskData, *, Cs: Sequence[float] = BOW_CS, seed: int = 0, batch_size: int = 64) -> dict:
    """:func:`linear_probe` for token labeling: logistic regression on ``model``'s frozen encoder
    state at the first piece of every word (where :class:`~mlm_lessons.finetuning.TokenClassifier`
    predicts), standardised on the train split, ``C`` chosen on the validation split by span F1.
    Words are read in chunks of the model's ``max_len`` (:func:`~mlm_lessons.finetuning.encode_tagging`).
    Returns ``{"C", "valid", "test"}``.
    """
    sk = _sklearn("token_probe")
    if not isinstance(task.kind, TokenLabeling):
        raise ValueError(f"token_probe reads one vector per word: a tagging task, not {task.kind!r} ({task.name!r}); "
                         "use linear_probe for classification")
    _check_Cs(Cs)
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise ValueError(f"token_probe needs a model with an .encoder (MaskedLM, CausalLM, a head), got {type(model).__name__}")
    check_vocabulary(encoder.config, tokenizer)
    data = {}
    for split in ("train", "valid", "test"):
        states, where = _word_states(encoder, tokenizer, task.split(split), batch_size)
        data[split] = (states.numpy(), where)
    scaler = sk.StandardScaler().fit(data["train"][0])
    y = [task.train[e].labels[w] for e, w in data["train"][1]]
    _check_labels(task, y, "words")

    def score(clf, split):
        x, where = data[split]
        out = task.kind.empty(task.split(split))  # a word with no piece is predicted 0
        for (e, w), label in zip(where, clf.predict(scaler.transform(x)).tolist()):
            out[e][w] = int(label)
        return task_metrics(task, task.split(split), out)

    return _choose_C(sk, task, Cs, scaler.transform(data["train"][0]), y, score, max_iter=5000, seed=seed)
