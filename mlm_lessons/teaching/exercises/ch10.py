"""Chapter 10, a language whose answers we know: the checkers of its exercises."""

from __future__ import annotations

from .registry import AnswerError, call_answer, judge_choice, judge_prediction, name_mistake, register

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


def _chains(seed: int, n: int, states: int, words: int):
    """``n`` random hidden Markov chains (one topic each): (start, transition, emission, language)."""
    import numpy as np

    from ...synthetic import HiddenMarkovLanguage, word_names

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start = rng.dirichlet(np.ones(states))
        transition = rng.dirichlet(np.full(states, 0.5), size=states)
        emission = rng.dirichlet(np.full(words, 0.5), size=states)
        lang = HiddenMarkovLanguage(prior=np.ones(1), initial=start, transition=transition, emission=emission,
                                    state_topic=np.zeros(states, dtype=np.int64), words=tuple(word_names(words)))
        out.append((start, transition, emission, lang))
    return out


def _as_vector(got, shape, what):
    import numpy as np

    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise AnswerError(f"return {what} as numbers (a list or an array), got {got!r:.80}") from None
    if got.shape != shape:
        raise AnswerError(f"return {what} of shape {shape}, got shape {got.shape}")
    return got


@register(
    "10-middle-word",
    10,
    "Write middle_word(start, transition, emission, left, right): for a hidden Markov chain (start [S], "
    "transition [S, S], emission [S, V] as numpy arrays) the Bayes-optimal prediction of a masked middle "
    "word, P(x_1 = v | x_0 = left, x_2 = right) for every word v, as an array of V probabilities.",
)
def _check_middle_word(answer) -> tuple[bool, str]:
    import numpy as np

    for start, transition, emission, lang in _chains(10, 6, states=2, words=3) + _chains(11, 4, states=4, words=5):
        V = emission.shape[1]
        for left, right in ((0, 1), (V - 1, 0), (1, 1)):
            want = lang.masked_conditionals([left, 0, right], [1])[0]
            got = _as_vector(call_answer(answer, start, transition, emission, left, right), (V,), f"{V} probabilities")
            if np.allclose(got, want, atol=1e-8):
                continue
            after_left = (start * emission[:, left]) @ transition  # P(s_1, x_0): the left word only
            left_only = after_left @ emission
            left_only = left_only / left_only.sum()
            unnormalised = (after_left[:, None] * emission * (transition @ emission[:, right])[:, None]).sum(0)
            marginal = start @ transition @ emission
            hint = name_mistake(got, [
                (left_only, "that is P(x_1 | x_0): the right word was left out; multiply by "
                            "P(x_2 = right | s_1) = (transition @ emission[:, right])[s_1]"),
                (unnormalised, "right up to a constant: divide by the sum, so that the V probabilities add up to 1"),
                (marginal, "that is P(x_1), with neither neighbour seen"),
            ], lambda g, w: np.allclose(g, w, atol=1e-8))
            return False, (f"for left={left}, right={right} with {len(start)} states expected "
                           f"{np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}{hint}")
    return True, "right on 30 sentences of 10 random chains: both neighbours, through the hidden states, normalised"


@register(
    "10-left-only",
    10,
    "Write left_only(start, transition, emission, x): for a hidden Markov chain and a sentence x (a list "
    "of word ids) the best a left-to-right model can do, P(x_i = v | x_<i) for every position i and "
    "word v, as an array [len(x), V] (the forward filter: predict, then update on the word seen).",
)
def _check_left_only(answer) -> tuple[bool, str]:
    import numpy as np

    rng = np.random.default_rng(12)
    for start, transition, emission, lang in _chains(13, 8, states=3, words=4):
        V = emission.shape[1]
        x = rng.integers(0, V, size=int(rng.integers(1, 8))).tolist()
        want = lang.left_conditionals(x)
        got = _as_vector(call_answer(answer, start, transition, emission, list(x)), want.shape, f"an array [{len(x)}, {V}]")
        if np.allclose(got, want, atol=1e-8):
            continue
        marginals = np.array([start @ np.linalg.matrix_power(transition, i) @ emission for i in range(len(x))])
        with_word = np.array([lang.masked_conditionals(x, [i])[0] for i in range(len(x))])
        hint = name_mistake(got, [
            (marginals, "those are P(x_i) with nothing seen: after predicting each position, update the state "
                        "distribution on the word seen there (multiply by emission[:, x_i], normalise)"),
            (with_word, "that uses the words on both sides of i: a left-to-right model sees x_<i only"),
        ], lambda g, w: np.allclose(g, w, atol=1e-8))
        return False, f"for x = {x} expected\n{np.round(want, 4)}\ngot\n{np.round(got, 4)}{hint}"
    return True, "right on 8 sentences: predict with the transition, update on each word as it is read"


@register(
    "10-topic-posterior",
    10,
    "Write topic_posterior(prior, start, transition, x): each topic z is a Markov chain over the words "
    "themselves (start [T, V], transition [T, V, V]); return P(z | x) for a sentence x (a list of word "
    "ids) as an array of T probabilities – the Bayes-optimal topic classifier. Sentences may be long.",
)
def _check_topic_posterior(answer) -> tuple[bool, str]:
    import numpy as np

    rng = np.random.default_rng(14)
    for T, V, length in ((2, 3, 1), (2, 3, 4), (3, 4, 6), (4, 5, 9), (3, 6, 400)):
        prior = rng.dirichlet(np.ones(T))
        start = rng.dirichlet(np.ones(V), size=T)
        transition = rng.dirichlet(np.full(V, 0.7), size=(T, V))
        x = rng.integers(0, V, size=length).tolist()
        log_joint = np.log(prior) + np.log(start[:, x[0]]) + sum(np.log(transition[:, a, b]) for a, b in zip(x, x[1:]))
        want = np.exp(log_joint - log_joint.max())
        want /= want.sum()
        got = _as_vector(call_answer(answer, prior, start, transition, list(x)), (T,), f"{T} probabilities")
        if np.allclose(got, want, atol=1e-8):
            continue
        def normalised(log_w):
            w = np.exp(log_w - log_w.max())
            return w / w.sum()
        chain = sum(np.log(transition[:, a, b]) for a, b in zip(x, x[1:])) + np.zeros(T)
        hint = name_mistake(got, [
            (normalised(log_joint - np.log(prior)), "the prior P(z) is missing: multiply by it"),
            (normalised(np.log(prior) + chain), "the first word's probability start[z, x_0] is missing"),
            (np.exp(log_joint), "normalise: divide by the sum over topics"),
        ], lambda g, w: np.allclose(g, w, atol=1e-8))
        if not np.all(np.isfinite(got)) or (length > 100 and not np.isclose(np.sum(got), 1)):
            hint = hint or (" – a product of hundreds of probabilities underflows to 0: add logarithms, subtract their "
                            "maximum, then exponentiate and normalise")
        return False, f"for a sentence of {length} words expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}{hint}"
    return True, "right on 5 sentences, a 400-word one included: prior × first word × transitions, normalised"


# -- predict, interpret, extend ---------------------------------------------------------------------


def all_masked_optimum(language, texts) -> float:
    """The Bayes-optimal loss per word, in nats, with every word of ``texts`` masked: the mean of
    ``-log P(x_i)``, each position's marginal (the reference of exercise 10.4)."""
    import numpy as np

    losses = []
    for text in texts:
        x = language.ids(text)
        p = language.masked_conditionals(x, range(len(x)))
        losses.append(-np.log(p[np.arange(len(x)), x]))
    return float(np.concatenate(losses).mean())


@register(
    "10-predict-all-masked",
    10,
    "Predict, then run: section 10.6 masked up to 60% of the words. With every word of the validation sentences "
    "masked, what is the optimum, in nats per masked word?",
)
def _check_predict_all_masked(answer, *, language, texts) -> tuple[bool, str]:
    measured = all_masked_optimum(language, texts)
    return judge_prediction(answer, measured, within=0.1, relative=False, what="a loss in nats per word", why=(
        "With every word masked nothing is visible, so the best prediction at a position is its marginal P(x_i): the "
        "'nothing seen' row of section 10.3, there averaged over the masked positions only. A straight line through the "
        "sweep of section 10.6 falls far short of it: the last few visible words still say much about their neighbours."))


@register(
    "10-interpret-bayes",
    10,
    "Interpret: in section 10.7 the Bayes-optimal classifier, the language's own posterior P(z | snippet), is wrong "
    "on some test snippets. Why? (a) it was fitted on eight labelled snippets per topic, too few; (b) some test "
    "snippets carry the wrong topic label; (c) it is a weak baseline that the fine-tuned classifiers would pass with "
    "more labels and steps; (d) a three-word snippet can be likely under several topics, so even the most probable "
    "topic is sometimes not the one that wrote it.",
)
def _check_interpret_bayes(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "it uses no labelled snippet at all: it is computed from the model that wrote the language "
             "(lang.topic_posterior), so more labels would not change it",
        "b": "each label is the topic that generated the snippet's sentence – topic_task samples the two together – so no "
             "label is wrong",
        "c": "no classifier can be right more often, on average, than the most probable topic under the true posterior; "
             "more labels and steps bring a classifier closer to it, not past it (on a finite test set one can edge "
             "ahead by luck only)",
        "d": "the shared states emit the same words whatever the topic, and the topics' own words overlap, so P(z | snippet) "
             "is spread over several topics for many snippets; the best guess is wrong whenever a less probable topic "
             "wrote the snippet – an error no classifier can avoid (the Bayes error)",
    }, right="d")


def _worth_terms(language, sentences):
    """Per sentence and position: log P(x_i | every other word) and log P(x_i | x_<i) [n, L], and the
    log-marginal log P(x_i)."""
    import numpy as np

    both, left, alone = [], [], []
    for x in np.asarray(sentences):
        positions = np.arange(len(x))
        both.append(np.log([language.masked_conditionals(x, [i])[0, x[i]] for i in positions]))
        left.append(np.log(language.left_conditionals(x)[positions, x]))
        alone.append(np.log(language.masked_conditionals(x, positions)[positions, x]))
    return np.array(both), np.array(left), np.array(alone)


def right_side_worth(language, sentences):
    """The reference of exercise 10.6: at each position, the mean over ``sentences`` of the left-only
    loss minus the loss with every other word seen, one word hidden at a time (nats)."""
    both, left, _ = _worth_terms(language, sentences)
    return (both - left).mean(0)


def _independent_language():
    """A language whose words are independent of each other: every state has the same successors."""
    import numpy as np

    from ...synthetic import HiddenMarkovLanguage, word_names

    rng = np.random.default_rng(16)
    row = rng.dirichlet(np.ones(3))
    return HiddenMarkovLanguage(prior=np.ones(1), initial=row, transition=np.tile(row, (3, 1)),
                                emission=rng.dirichlet(np.full(5, 0.5), size=3), state_topic=np.zeros(3, dtype=np.int64),
                                words=tuple(word_names(5)))


@register(
    "10-right-side",
    10,
    "Extend: write right_side_worth(language, sentences): for sentences (an int array [n, L] of word ids) return, at "
    "each position i, the mean over the sentences of the left-only loss -log P(x_i | x_<i) minus the loss with every "
    "other word seen, -log P(x_i | the other words), as an array of L numbers.",
)
def _check_right_side(answer, *, language, limits) -> tuple[bool, str]:
    import numpy as np

    sentences, _ = language.sample(100, 24, seed=17)
    both, left, alone = _worth_terms(language, sentences)
    want = (both - left).mean(0)
    L = sentences.shape[1]
    got = _as_vector(call_answer(answer, language, sentences.copy()), (L,), "an array, one number per position,")
    if not np.allclose(got, want, atol=1e-6, rtol=0):  # the reference is not printed: it is what the function should find
        hint = name_mistake(got, [
            (-want, "the sign is flipped: the left-only loss minus the both-sides loss, where a loss is -log P"),
            ((np.exp(both) - np.exp(left)).mean(0), "that is a difference of probabilities: take -log of each first, then "
                                                    "subtract the losses (nats)"),
            ((both - alone).mean(0), "that is what every other word is worth against nothing seen: the left-only "
                                     "prediction sees every word before i (language.left_conditionals(x))"),
            ((both - left).sum(0), "that is the sum over the sentences: return the mean"),
        ], lambda g, w: np.allclose(g, w, atol=1e-6, rtol=0))
        if not hint and abs(got[-1]) > 1e-6:
            return False, (f"at the last position your worth is {got[-1]:.3f}, but a last word hidden alone has nothing on "
                           f"its right: the both-sides prediction sees exactly the words the left-only one sees, so the "
                           f"two losses are equal there and the worth is 0")
        if not hint and np.allclose(got, 0, atol=1e-6):
            hint = (" – zero everywhere says the right side never helps; compute both losses at every position of every "
                    "sentence")
        t = int(np.argmax(np.abs(got - want) > 1e-6))
        side = "high" if got[t] > want[t] else "low"
        # neither number is printed: with a flipped sign or a sum, the student's own would give the reference away
        return False, f"at position {t} your worth is too {side} (more than 1e-6 from the language's exact value){hint}"
    independent = _independent_language()
    words, _ = independent.sample(20, 6, seed=18)
    flat = _as_vector(call_answer(answer, independent, words), (6,), "an array, one number per position,")
    if not np.allclose(flat, 0, atol=1e-6):
        return False, (f"for a language whose words are independent of each other your worth is "
                       f"{np.round(flat, 3).tolist()}, but there neither side says anything about a hidden word: it "
                       f"must be 0 at every position")
    at_15 = limits["left_only"].mean() - limits["optimum"].mean()
    compare = ("more than" if got.mean() > at_15 else "not more than")
    return True, (f"hidden alone, a word's right side is worth {got.mean():.3f} nats on average – {got[0]:.3f} at the "
                  f"first word, where nothing is on the left, and 0 at the last, where nothing is on the right. That is "
                  f"{compare} the {at_15:.3f} of section 10.3, where the other hidden words were missing from the "
                  f"both-sides context")
