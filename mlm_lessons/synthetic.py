"""A language whose answers we know: text from a hidden Markov model, and its exact conditionals.

On real text nobody knows the best possible masked prediction. On text sampled from a known
probabilistic model it can be computed, so a trained encoder can be measured against the limit.

The model: a sentence has a latent **topic** ``z`` (drawn from ``prior``) and a hidden Markov chain
of **states**; each state emits a word. States are grouped by topic and the chain never leaves its
topic's group, so the whole thing is one hidden Markov model over all states whose transition matrix
is block-diagonal (``state_topic[s]`` says which block state ``s`` is in). Several topics may share a
word distribution (function words), others have their own: the words are evidence about the topic.

Exact computations, by the forward–backward algorithm in float64 with per-step normalisation:

- :meth:`HiddenMarkovLanguage.masked_conditionals`: ``P(x_i = v | x_visible)`` for every masked
  position ``i`` – the masked positions are marginalised (their emission counts as 1 for every
  state), which is what an MLM is asked: each blank on its own, given the words that are shown;
- :meth:`~HiddenMarkovLanguage.left_conditionals`: ``P(x_i = v | x_<i)``, the best a left-to-right
  model can do;
- :meth:`~HiddenMarkovLanguage.topic_posterior`: ``P(z | x_visible)``, the Bayes-optimal topic
  classifier;
- :meth:`~HiddenMarkovLanguage.log_prob`: ``log P(x)``;
- :meth:`~HiddenMarkovLanguage.limits`: the masked optimum, the left-only optimum and the
  position's marginal at every ``[MASK]`` position of validation batches, so that a trained model's
  loss there (:func:`model_losses`) has its limits beside it.

:func:`random_language` builds one with chosen sizes; :meth:`~HiddenMarkovLanguage.corpus` samples
train/valid/test documents as a :class:`~mlm_lessons.corpus.Corpus`, and
:meth:`~HiddenMarkovLanguage.tokenizer` gives a tokenizer with one piece per word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import torch

from ._checks import require_int
from .corpus import Corpus, Document
from .masking import IGNORE_INDEX, Fate
from .tasks import ClassificationExample, TaskData
from .tokenizer import MLMTokenizer, tokenizer_from_vocab

__all__ = ["HiddenMarkovLanguage", "random_language", "word_names", "model_losses", "topic_task"]

_ATOL = 1e-9


def _probabilities(name: str, a, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must hold finite probabilities >= 0")
    sums = np.atleast_1d(a.sum(axis=-1))
    worst = int(np.argmax(np.abs(sums - 1)))
    if abs(sums[worst] - 1) > _ATOL:
        raise ValueError(f"each row of {name} must sum to 1; row {worst} sums to {sums[worst]:.6g}")
    return a


def word_names(n: int) -> list[str]:
    """``n`` distinct pronounceable lowercase words ("ba", "be", …, "baba", …): one WordPiece each."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels]
    words, length = [], 1
    while len(words) < n:
        for index in np.ndindex(*([len(syllables)] * length)):
            words.append("".join(syllables[i] for i in index))
            if len(words) == n:
                break
        length += 1
    return words


@dataclass(frozen=True, eq=False)
class HiddenMarkovLanguage:
    """A topic-mixture hidden Markov model over ``len(words)`` words (see the module's docstring).

    ``prior`` [T]: P(topic). ``initial`` [S]: P(first state | its topic), zero outside the topic's
    states within each topic's block (each block sums to 1). ``transition`` [S, S]: P(next | state),
    zero across topics. ``emission`` [S, V]: P(word | state). ``state_topic`` [S]: the topic of each
    state.
    """

    prior: np.ndarray
    initial: np.ndarray
    transition: np.ndarray
    emission: np.ndarray
    state_topic: np.ndarray
    words: tuple[str, ...]

    def __post_init__(self):
        topics = np.asarray(self.state_topic)
        if topics.ndim != 1 or not np.issubdtype(topics.dtype, np.integer) or len(topics) == 0:
            raise ValueError(f"state_topic must be a 1-d array of topic indices, one per state, got {self.state_topic!r}")
        n_topics, n_states, n_words = int(topics.max()) + 1, len(topics), len(self.words)
        if topics.min() < 0 or set(range(n_topics)) != set(topics.tolist()):
            raise ValueError(f"state_topic must name every topic 0..{n_topics - 1} at least once, got {sorted(set(topics.tolist()))}")
        if len(set(self.words)) != n_words or not all(isinstance(w, str) and w.isalpha() and w.islower() for w in self.words):
            raise ValueError("words must be distinct lowercase alphabetic strings (one tokenizer piece each)")
        object.__setattr__(self, "state_topic", topics.astype(np.int64))
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "prior", _probabilities("prior", self.prior, (n_topics,)))
        object.__setattr__(self, "transition", _probabilities("transition", self.transition, (n_states, n_states)))
        object.__setattr__(self, "emission", _probabilities("emission", self.emission, (n_states, n_words)))
        initial = np.asarray(self.initial, dtype=np.float64)
        if initial.shape != (n_states,) or np.any(initial < 0) or not np.all(np.isfinite(initial)):
            raise ValueError(f"initial must hold {n_states} probabilities >= 0, got shape {initial.shape}")
        for z in range(n_topics):
            block = topics == z
            if not np.isclose(initial[block].sum(), 1.0, atol=_ATOL):
                raise ValueError(f"initial must sum to 1 over the states of each topic; topic {z} sums to {initial[block].sum():.6g}")
            if np.any(self.transition[np.ix_(block, ~block)] > 0):
                raise ValueError(f"transition must not leave a topic's states; topic {z} does")
        object.__setattr__(self, "initial", initial)

    # -- sizes and the joint start distribution -------------------------------------------------

    @property
    def n_topics(self) -> int:
        return len(self.prior)

    @property
    def n_states(self) -> int:
        return len(self.state_topic)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @property
    def start(self) -> np.ndarray:
        """P(first state) over all states: the topic's prior times the first state within it."""
        return self.prior[self.state_topic] * self.initial

    # -- sampling ---------------------------------------------------------------------------------

    def sample(self, n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` sentences of ``length`` words: ``(word ids [n, length], topics [n])``, seeded."""
        for name, v in (("n", n), ("length", length)):
            require_int(v, name)
        rng = np.random.default_rng(seed)
        topics = rng.choice(self.n_topics, size=n, p=self.prior)
        states = np.empty((n, length), dtype=np.int64)
        words = np.empty((n, length), dtype=np.int64)
        cum_t, cum_e = self.transition.cumsum(1), self.emission.cumsum(1)
        for b in range(n):
            block = self.state_topic == topics[b]
            first = np.where(block, self.initial, 0.0)
            states[b, 0] = rng.choice(self.n_states, p=first / first.sum())
        u_t, u_e = rng.random((n, length)), rng.random((n, length))
        for t in range(length):
            if t:
                states[:, t] = (cum_t[states[:, t - 1]] < u_t[:, t, None]).sum(1)
            words[:, t] = (cum_e[states[:, t]] < u_e[:, t, None]).sum(1)
        np.minimum(states, self.n_states - 1, out=states)  # a cumulative sum of 1 - 1e-16 must not step past the end
        np.minimum(words, self.vocab_size - 1, out=words)
        return words, topics

    def text(self, ids) -> str:
        return " ".join(self.words[int(i)] for i in ids)

    def ids(self, text: str) -> np.ndarray:
        """The word ids of a sentence written with :meth:`text` (words separated by spaces)."""
        index = {w: i for i, w in enumerate(self.words)}
        unknown = sorted({w for w in text.split() if w not in index})
        if unknown:
            raise ValueError(f"words not in this language: {unknown[:5]}; a sentence must use the language's words")
        return np.array([index[w] for w in text.split()], dtype=np.int64)

    def tokenizer(self) -> MLMTokenizer:
        """A tokenizer with exactly one piece per word (ids 5…V+4, after the five specials)."""
        return tokenizer_from_vocab(list(self.words))

    def corpus(self, sizes: dict[str, int], length: int, seed: int, name: str = "hmm-language") -> Corpus:
        """Sentences sampled for each split (``{"train": n, "valid": n, "test": n}``), each from its own
        stream of ``seed``; a document's ``module`` records its topic (``"topic 2"``)."""
        if set(sizes) != {"train", "valid", "test"}:
            raise ValueError(f"sizes must give train, valid and test, got {sorted(sizes)}")
        splits = {}
        for i, split in enumerate(("train", "valid", "test")):
            ids, topics = self.sample(sizes[split], length, seed=np.random.SeedSequence([seed, i]).generate_state(1)[0])
            splits[split] = [Document(self.text(row), "synthetic", f"topic {int(z)}", f"{split} {j}", "sentence")
                             for j, (row, z) in enumerate(zip(ids, topics))]
        return Corpus(name, splits["train"], splits["valid"], splits["test"],
                      {"generator": "HiddenMarkovLanguage", "topics": self.n_topics, "states": self.n_states,
                       "words": self.vocab_size, "length": length, "seed": seed})

    # -- exact inference ----------------------------------------------------------------------------

    def _check_sentence(self, x, masked) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        if x.ndim != 1 or len(x) == 0 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"x must be a non-empty 1-d sequence of word ids, got {x!r}")
        if x.min() < 0 or x.max() >= self.vocab_size:
            raise ValueError(f"word ids must be in 0..{self.vocab_size - 1}, got {sorted(set(x.tolist()))}")
        hidden = np.zeros(len(x), dtype=bool)
        for i in masked if masked is not None else ():
            if not isinstance(i, (int, np.integer)) or not 0 <= i < len(x):
                raise ValueError(f"masked positions must be ints in 0..{len(x) - 1}, got {i!r}")
            hidden[int(i)] = True
        return x.astype(np.int64), hidden

    def _forward_backward(self, x: np.ndarray, hidden: np.ndarray):
        """Posteriors P(state_t | visible words) [L, S] and log P(visible words); hidden positions emit 1."""
        length = len(x)
        like = np.where(hidden[:, None], 1.0, self.emission[:, x].T)  # [L, S]
        alpha, scale = np.empty((length, self.n_states)), np.empty(length)
        a = self.start * like[0]
        for t in range(length):
            if t:
                a = (alpha[t - 1] @ self.transition) * like[t]
            scale[t] = a.sum()
            alpha[t] = a / scale[t]
        beta = np.empty_like(alpha)
        beta[-1] = 1.0
        for t in range(length - 2, -1, -1):
            beta[t] = self.transition @ (like[t + 1] * beta[t + 1]) / scale[t + 1]
        posterior = alpha * beta
        posterior /= posterior.sum(1, keepdims=True)
        return posterior, float(np.log(scale).sum())

    def masked_conditionals(self, x, masked) -> np.ndarray:
        """[len(masked), V]: P(x_i = v | the words at the other, unmasked positions), for each
        ``i`` in ``masked`` (in that order); the words at masked positions are not seen."""
        x, hidden = self._check_sentence(x, masked)
        if not hidden.any():
            raise ValueError("masked must name at least one position")
        posterior, _ = self._forward_backward(x, hidden)
        return posterior[list(masked)] @ self.emission

    def left_conditionals(self, x) -> np.ndarray:
        """[L, V]: P(x_i = v | x_<i) for every position (the first: P(x_0 = v))."""
        x, _ = self._check_sentence(x, None)
        out = np.empty((len(x), self.vocab_size))
        state = self.start
        for t in range(len(x)):
            if t:
                state = state @ self.transition
            out[t] = state @ self.emission
            state = state * self.emission[:, x[t]]
            state = state / state.sum()
        return out

    def topic_posterior(self, x, masked=()) -> np.ndarray:
        """[T]: P(topic | the words at the unmasked positions)."""
        x, hidden = self._check_sentence(x, masked)
        posterior, _ = self._forward_backward(x, hidden)
        return np.bincount(self.state_topic, weights=posterior[0], minlength=self.n_topics)

    def log_prob(self, x, masked=()) -> float:
        """log P(the words at the unmasked positions), states, topic and masked words summed out."""
        x, hidden = self._check_sentence(x, masked)
        return self._forward_backward(x, hidden)[1]

    def limits(self, batches: list[dict], tokenizer: MLMTokenizer) -> dict[str, np.ndarray]:
        """The exact limits at every labelled position of pre-masked batches, in the order
        :func:`model_losses` scores them (batch, row, position), in nats:

        - ``optimum``: ``-log P(x_i | the words left visible)``, the Bayes-optimal masked prediction;
        - ``left_only``: ``-log P(x_i | x_<i)`` (every word to the left seen), the best any
          left-to-right model can do at the same position;
        - ``no_context``: ``-log P(x_i)``, the position's marginal: the best guess with nothing seen.

        The batches must be masked with ``[MASK]`` only (``MaskingConfig(p_mask=1.0, p_random=0.0,
        p_keep=0.0)`` as ``eval_masking``): a random or kept token is not a word of the sentence
        the model may trust, and the language's conditionals know nothing of it. Each row holds one
        sentence: ``[CLS]`` words ``[SEP]`` (``pack=False``).
        """
        offset = self._check_tokenizer(tokenizer)
        out = {"optimum": [], "left_only": [], "no_context": []}
        for b in batches:
            for ids, labels, fate in _rows(b):
                if (fate[labels != IGNORE_INDEX] != Fate.MASKED).any():
                    raise ValueError("the batches hold random or kept positions; mask the validation text with [MASK] only: "
                                     "eval_masking=MaskingConfig(mask_ratio=..., p_mask=1.0, p_random=0.0, p_keep=0.0)")
                x, masked = _sentence(ids, labels, tokenizer, offset)
                if len(masked) == 0:
                    continue
                truth = x[masked]
                picks = np.arange(len(masked))
                out["optimum"].append(-np.log(self.masked_conditionals(x, masked)[picks, truth]))
                out["left_only"].append(-np.log(self.left_conditionals(x)[masked, truth]))
                out["no_context"].append(-np.log(self.masked_conditionals(x, range(len(x)))[masked, truth]))
        if not out["optimum"]:
            raise ValueError("the batches hold no [MASK] position")
        return {k: np.concatenate(v) for k, v in out.items()}

    def _check_tokenizer(self, tokenizer: MLMTokenizer) -> int:
        """The id offset of word 0 in a tokenizer of :meth:`tokenizer`'s layout (words after the specials)."""
        offset = len(tokenizer.special_ids)
        if tokenizer.vocab_size != offset + self.vocab_size or tokenizer.id_to_token(offset) != self.words[0]:
            raise ValueError(f"the tokenizer ({tokenizer.vocab_size} ids) is not this language's; use language.tokenizer()")
        return offset


def _rows(batch: dict):
    if "fate" not in batch:
        raise ValueError("each batch needs the 'fate' of its positions (batches of training.eval_batches carry it)")
    for ids, mask, labels, fate in zip(batch["input_ids"], batch["attention_mask"], batch["labels"], batch["fate"]):
        n = int(mask.sum())
        yield ids[:n].numpy(), labels[:n].numpy(), fate[:n].numpy()


def _sentence(ids: np.ndarray, labels: np.ndarray, tokenizer: MLMTokenizer, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The sentence's word ids (labels restored at the masked positions) and its masked positions."""
    if len(ids) < 3 or ids[0] != tokenizer.cls_id or ids[-1] != tokenizer.sep_id:
        raise ValueError("each row must hold one sentence, [CLS] words [SEP]; encode with pack=False and a max_length "
                         "longer than the sentences")
    words = np.where(labels != IGNORE_INDEX, labels, ids)[1:-1] - offset
    return words.astype(np.int64), np.flatnonzero(labels[1:-1] != IGNORE_INDEX)


@torch.no_grad()
def model_losses(model, batches: list[dict], *, causal: bool = False) -> np.ndarray:
    """A model's ``-log p(true word)`` at every labelled position of pre-masked batches, in the
    order of :meth:`HiddenMarkovLanguage.limits`. A masked model reads the rows as masked; a causal
    model (``causal=True``) reads the sentence itself, and the word at position ``i`` is scored by
    its prediction at ``i - 1``: the same position, from the left only."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for b in batches:
        labels, ids = b["labels"].to(device), b["input_ids"].to(device)
        selected = labels != IGNORE_INDEX
        if causal:
            ids = torch.where(selected, labels, ids)
            logits = model(ids, b["attention_mask"].to(device)).logits.float()
            logits = torch.cat([logits[:, :1] * 0, logits[:, :-1]], dim=1)  # the prediction of position i made at i - 1
        else:
            logits = model(ids, b["attention_mask"].to(device)).logits.float()
        log_p = torch.log_softmax(logits[selected], dim=-1)
        out.append(-log_p.gather(1, labels[selected][:, None])[:, 0].cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def topic_task(language: HiddenMarkovLanguage, sizes: dict[str, int], words: int, seed: int) -> tuple[TaskData, dict[str, np.ndarray]]:
    """Classify a snippet of ``words`` words by the topic of the sentence it came from.

    Returns the task (labels ``topic 0`` … ``topic T-1``; each split sampled from its own stream of
    ``seed``) and, for each split, the Bayes-optimal classifier's posteriors ``P(topic | snippet)``
    [n, T]: no classifier can be right more often than their argmax, on average.
    """
    if set(sizes) != {"train", "valid", "test"}:
        raise ValueError(f"sizes must give train, valid and test, got {sorted(sizes)}")
    require_int(words, "words", why=" (the snippet's length)")
    splits, posteriors = {}, {}
    for i, split in enumerate(("train", "valid", "test")):
        ids, topics = language.sample(sizes[split], words, seed=np.random.SeedSequence([seed, 100 + i]).generate_state(1)[0])
        splits[split] = [ClassificationExample(language.text(x), int(z), f"{split} {j}") for j, (x, z) in enumerate(zip(ids, topics))]
        posteriors[split] = np.array([language.topic_posterior(x) for x in ids])
    names = tuple(f"topic {z}" for z in range(language.n_topics))
    return TaskData("synthetic-topic", "classification", names, splits["train"], splits["valid"], splits["test"]), posteriors


def random_language(*, n_topics: int = 3, shared_states: int = 2, topic_states: int = 3, vocab_size: int = 60,
                    stay: float = 0.3, sharpness: float = 0.3, transition_sharpness: float = 1.0,
                    seed: int = 0) -> HiddenMarkovLanguage:
    """A topic-mixture HMM with ``shared_states`` states in every topic that emit the same words
    (function words) and ``topic_states`` states per topic with their own word distributions.

    Each topic's transitions are random (Dirichlet with concentration ``transition_sharpness``;
    smaller: each state has fewer likely successors, so the right context says more) with ``stay``
    of the mass on the same state; emissions are Dirichlet with concentration ``sharpness``
    (smaller: each state prefers fewer words, the language is more predictable). Deterministic in
    ``seed``.
    """
    for name, v in (("n_topics", n_topics), ("topic_states", topic_states), ("vocab_size", vocab_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not isinstance(shared_states, int) or shared_states < 0:
        raise ValueError(f"shared_states must be an int >= 0, got {shared_states!r}")
    if not 0 <= stay < 1 or not sharpness > 0 or not transition_sharpness > 0:
        raise ValueError(f"stay must be in [0, 1), sharpness and transition_sharpness > 0, got stay={stay!r}, "
                         f"sharpness={sharpness!r}, transition_sharpness={transition_sharpness!r}")
    rng = np.random.default_rng(seed)
    per_topic = shared_states + topic_states
    shared_emission = rng.dirichlet(np.full(vocab_size, sharpness), size=shared_states)
    blocks_t, emissions, initial = [], [], []
    for _ in range(n_topics):
        t = rng.dirichlet(np.full(per_topic, transition_sharpness), size=per_topic) * (1 - stay) + np.eye(per_topic) * stay
        blocks_t.append(t)
        emissions.append(np.vstack([shared_emission, rng.dirichlet(np.full(vocab_size, sharpness), size=topic_states)]))
        initial.append(rng.dirichlet(np.ones(per_topic)))
    n_states = n_topics * per_topic
    transition = np.zeros((n_states, n_states))
    for z, t in enumerate(blocks_t):
        transition[z * per_topic:(z + 1) * per_topic, z * per_topic:(z + 1) * per_topic] = t
    return HiddenMarkovLanguage(prior=np.full(n_topics, 1 / n_topics), initial=np.concatenate(initial), transition=transition,
                                emission=np.vstack(emissions), state_topic=np.repeat(np.arange(n_topics), per_topic),
                                words=tuple(word_names(vocab_size)))
