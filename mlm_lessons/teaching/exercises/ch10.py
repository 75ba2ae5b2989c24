"""Chapter 10, a language whose answers we know: the checkers of its exercises."""

from __future__ import annotations

from .registry import AnswerError, call_answer, name_mistake, register


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
