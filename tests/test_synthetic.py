"""The synthetic language's exact conditionals against brute-force enumeration: every hidden path
and every sentence of length <= 6 over a vocabulary of <= 4, to 1e-9."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mlm_lessons.synthetic import HiddenMarkovLanguage, random_language, word_names


def tiny(seed: int, n_topics=2, shared=1, own=1, vocab=3) -> HiddenMarkovLanguage:
    return random_language(n_topics=n_topics, shared_states=shared, topic_states=own, vocab_size=vocab, stay=0.2,
                           sharpness=1.0, seed=seed)


def joint(lang: HiddenMarkovLanguage, length: int) -> np.ndarray:
    """P(words, topic) for every sentence of ``length`` words: [V] * length + [T], by summing every state path."""
    p = np.zeros([lang.vocab_size] * length + [lang.n_topics])
    for path in itertools.product(range(lang.n_states), repeat=length):
        z = lang.state_topic[path[0]]
        if any(lang.state_topic[s] != z for s in path):
            continue
        weight = lang.start[path[0]] * np.prod([lang.transition[a, b] for a, b in zip(path, path[1:])])
        if weight == 0:
            continue
        emit = lang.emission[path[0]]
        for s in path[1:]:  # the outer product of the emission rows along the path
            emit = np.multiply.outer(emit, lang.emission[s])
        p[..., z] += weight * emit
    return p


CASES = [(seed, length) for seed in (0, 1) for length in (1, 2, 3, 4)] + [(2, 5), (3, 6)]


@pytest.mark.parametrize("seed, length", CASES)
def test_masked_conditionals_equal_brute_force(seed, length):
    lang = tiny(seed, vocab=4 if length <= 4 else 3)
    p = joint(lang, length)
    words = p.sum(-1)
    assert abs(words.sum() - 1) < 1e-12
    mask_sets = [m for r in range(1, length + 1) for m in itertools.combinations(range(length), r)]
    for x in itertools.product(range(lang.vocab_size), repeat=length):
        assert abs(lang.log_prob(list(x)) - np.log(words[x])) < 1e-9
        for masked in mask_sets[:12]:
            visible = [i for i in range(length) if i not in masked]
            marginal = words.sum(axis=tuple(masked)) if masked else words  # P(visible words), masked summed out
            denominator = marginal[tuple(x[i] for i in visible)] if visible else 1.0
            got = lang.masked_conditionals(list(x), masked)
            for row, i in zip(got, masked):
                # P(x_i = v, visible) / P(visible): sum out the other masked positions
                others = tuple(j for j in masked if j != i)
                pair = words.sum(axis=others) if others else words
                keep = sorted(visible + [i])
                index = [slice(None) if j == i else x[j] for j in keep]
                np.testing.assert_allclose(row, pair[tuple(index)] / denominator, atol=1e-9, rtol=0)
            assert abs(lang.log_prob(list(x), masked) - np.log(denominator)) < 1e-9


@pytest.mark.parametrize("seed, length", [(0, 3), (1, 5), (4, 6)])
def test_left_conditionals_and_topic_posterior_equal_brute_force(seed, length):
    lang = tiny(seed, n_topics=3, shared=1, own=1, vocab=3) if length <= 5 else tiny(seed, vocab=3)
    p = joint(lang, length)
    words = p.sum(-1)
    for x in itertools.product(range(lang.vocab_size), repeat=length):
        left = lang.left_conditionals(list(x))
        for i in range(length):
            prefix = words.sum(axis=tuple(range(i + 1, length))) if i + 1 < length else words  # P(x_0..x_i)
            before = prefix.sum(axis=i)[tuple(x[:i])] if i else 1.0
            np.testing.assert_allclose(left[i], prefix[tuple(x[:i])] / before, atol=1e-9, rtol=0)
        np.testing.assert_allclose(lang.topic_posterior(list(x)), p[x] / p[x].sum(), atol=1e-9, rtol=0)
        hidden = (0, length - 1)
        part = p.sum(axis=hidden)[tuple(x[j] for j in range(1, length - 1))] if length > 2 else p.sum(axis=tuple(range(length)))
        np.testing.assert_allclose(lang.topic_posterior(list(x), hidden), part / part.sum(), atol=1e-9, rtol=0)


def test_sampling_follows_the_model():
    """Word frequencies of a large seeded sample against the model's exact marginals."""
    lang = random_language(n_topics=2, shared_states=1, topic_states=2, vocab_size=12, seed=5)
    ids, topics = lang.sample(20000, 4, seed=1)
    assert ids.shape == (20000, 4) and topics.shape == (20000,)
    assert abs(topics.mean() - lang.prior[1]) < 0.02
    first = lang.start @ lang.emission
    third = lang.start @ np.linalg.matrix_power(lang.transition, 2) @ lang.emission
    for t, exact in ((0, first), (2, third)):
        observed = np.bincount(ids[:, t], minlength=lang.vocab_size) / len(ids)
        assert np.abs(observed - exact).max() < 0.015
    again, _ = lang.sample(20000, 4, seed=1)
    assert np.array_equal(ids, again)


def test_corpus_and_tokenizer_give_one_piece_per_word():
    lang = random_language(vocab_size=40, seed=0)
    corpus = lang.corpus({"train": 30, "valid": 5, "test": 5}, length=10, seed=3)
    assert [len(corpus.split(s)) for s in ("train", "valid", "test")] == [30, 5, 5]
    assert all(len(d.text.split()) == 10 and d.module.startswith("topic ") for d in corpus.documents)
    tok = lang.tokenizer()
    assert tok.vocab_size == 40 + 5
    ids = tok.encode(corpus.train[0].text, add_special_tokens=False)
    assert [tok.id_to_token(i) for i in ids] == corpus.train[0].text.split()
    assert corpus.texts("valid") != corpus.texts("test")  # each split from its own stream


def test_word_names_are_distinct_and_grow_in_length():
    names = word_names(100)
    assert len(set(names)) == 100 and names[0] == "ba" and len(names[-1]) == 4
    with pytest.raises(ValueError, match="n must be a positive int"):
        word_names(0)


def test_sparser_transitions_make_the_right_context_worth_more():
    """The gap between the left-only and the two-sided optimum at 15% masking grows as each state
    has fewer likely successors (``transition_sharpness``): the knob a chapter turns to make it visible."""
    def gap(transition_sharpness):
        lang = random_language(n_topics=2, shared_states=2, topic_states=4, vocab_size=40, stay=0.0, sharpness=0.1,
                               transition_sharpness=transition_sharpness, seed=0)
        ids, _ = lang.sample(200, 16, seed=1)
        rng, both, left = np.random.default_rng(0), [], []
        for x in ids:
            masked = np.flatnonzero(rng.random(len(x)) < 0.15)
            if len(masked):
                both += list(-np.log(lang.masked_conditionals(x, masked)[np.arange(len(masked)), x[masked]]))
                left += list(-np.log(lang.left_conditionals(x)[masked, x[masked]]))
        return np.mean(left) - np.mean(both)

    assert 0 < gap(10.0) < gap(0.05)


def test_bad_models_and_inputs_are_refused():
    with pytest.raises(ValueError, match="transition_sharpness > 0"):
        random_language(transition_sharpness=0.0)
    lang = tiny(0)
    with pytest.raises(ValueError, match="word ids must be in 0..2"):
        lang.masked_conditionals([0, 3], [0])
    with pytest.raises(ValueError, match="masked must name at least one position"):
        lang.masked_conditionals([0, 1], [])
    with pytest.raises(ValueError, match=r"masked positions must be ints in 0..1, got 2"):
        lang.masked_conditionals([0, 1], [2])
    leaky = lang.transition.copy()
    leaky[0] = 1 / lang.n_states  # state 0 may now jump into the other topic's states
    with pytest.raises(ValueError, match="transition must not leave a topic's states; topic 0 does"):
        HiddenMarkovLanguage(lang.prior, lang.initial, leaky, lang.emission, lang.state_topic, lang.words)
    with pytest.raises(ValueError, match="each row of emission must sum to 1; row 1 sums to"):
        bad = lang.emission.copy()
        bad[1, 0] += 0.1
        HiddenMarkovLanguage(lang.prior, lang.initial, lang.transition, bad, lang.state_topic, lang.words)
    with pytest.raises(ValueError, match="words must be distinct lowercase alphabetic strings"):
        HiddenMarkovLanguage(lang.prior, lang.initial, lang.transition, lang.emission, lang.state_topic, ("ba", "ba", "be"))


# -- limits at the [MASK] positions of validation batches, a model's losses there, the topic task ----------

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mlm_lessons.masking import MaskingConfig  # noqa: E402
from mlm_lessons.model import CausalLM, EncoderConfig, MaskedLM  # noqa: E402
from mlm_lessons.synthetic import model_losses, topic_task  # noqa: E402
from mlm_lessons.training import TrainConfig, eval_batches  # noqa: E402

MASK_ONLY = MaskingConfig(mask_ratio=0.3, p_mask=1.0, p_random=0.0, p_keep=0.0)


def masked_batches(lang, n=12, length=7, masking=MASK_ONLY):
    tok = lang.tokenizer()
    corpus = lang.corpus({"train": 4, "valid": n, "test": 2}, length, seed=3)
    config = TrainConfig(max_length=length + 4, pack=False, eval_masking=masking, eval_sequences=n)
    return tok, corpus, eval_batches(tok, corpus.texts("valid"), config, batch_size=5)


def test_limits_are_the_exact_conditionals_at_the_masked_positions():
    lang = tiny(4, vocab=4)
    tok, corpus, batches = masked_batches(lang)
    limits = lang.limits(batches, tok)
    want = {"optimum": [], "left_only": [], "no_context": []}
    for text, b_row in zip(corpus.texts("valid"), [r for b in batches for r in zip(b["labels"], b["input_ids"])]):
        x = lang.ids(text)
        labels, ids = b_row
        masked = [i for i in range(len(x)) if labels[i + 1] != -100]
        assert all(ids[i + 1] == tok.mask_id for i in masked) and all(labels[i + 1] == x[i] + 5 for i in masked)
        want["optimum"] += [-np.log(p[x[i]]) for p, i in zip(lang.masked_conditionals(x, masked), masked)]
        want["left_only"] += [-np.log(lang.left_conditionals(x)[i, x[i]]) for i in masked]
        want["no_context"] += [-np.log(lang.masked_conditionals(x, range(len(x)))[i, x[i]]) for i in masked]
    for key, values in want.items():
        np.testing.assert_allclose(limits[key], values, atol=1e-12)
    # more context can only help on average: optimum <= left-only and <= no context
    assert limits["optimum"].mean() < limits["left_only"].mean() < limits["no_context"].mean()


def test_limits_refuse_batches_with_random_or_kept_tokens_and_foreign_tokenizers():
    lang = tiny(4, vocab=4)
    tok, _, batches = masked_batches(lang, masking=MaskingConfig(mask_ratio=0.5))
    with pytest.raises(ValueError, match="p_mask=1.0"):
        lang.limits(batches, tok)
    other = random_language(vocab_size=5, seed=1).tokenizer()
    with pytest.raises(ValueError, match="language.tokenizer"):
        lang.limits(masked_batches(lang)[2], other)
    with pytest.raises(ValueError, match="not in this language"):
        lang.ids("ba zzz")


def test_model_losses_match_cross_entropy_for_masked_and_shifted_for_causal():
    lang = tiny(5, vocab=4)
    tok, _, batches = masked_batches(lang)
    torch.manual_seed(0)
    config = EncoderConfig(vocab_size=tok.vocab_size, max_len=16, d_model=16, n_layers=1, n_heads=2, d_ff=32, positions="rope")
    mlm = MaskedLM(config).eval()
    want = []
    for b in batches:
        with torch.no_grad():
            logits = mlm(b["input_ids"], b["attention_mask"]).logits
        keep = b["labels"] != -100
        want.append(F.cross_entropy(logits[keep], b["labels"][keep], reduction="none"))
    np.testing.assert_allclose(model_losses(mlm, batches), torch.cat(want).numpy(), atol=1e-6)
    causal = CausalLM(EncoderConfig(**{**config.to_dict(), "causal": True})).eval()
    got, want = model_losses(causal, batches, causal=True), []
    for b in batches:  # one sentence at a time, unpadded, each word scored by the prediction before it
        for ids, labels, n in zip(b["input_ids"], b["labels"], b["attention_mask"].sum(1)):
            sentence = torch.where(labels != -100, labels, ids)[:n]
            assert tok.mask_id not in sentence.tolist()  # the causal model reads the real words
            with torch.no_grad():
                log_p = torch.log_softmax(causal(sentence[None], torch.ones(1, int(n), dtype=torch.long)).logits[0], -1)
            want += [float(-log_p[i - 1, sentence[i]]) for i in range(int(n)) if labels[i] != -100]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_topic_task_carries_the_bayes_posteriors_of_its_snippets():
    lang = tiny(6, n_topics=3, vocab=4)
    task, posteriors = topic_task(lang, {"train": 20, "valid": 8, "test": 9}, words=3, seed=0)
    assert task.kind == "classification" and task.label_names == ("topic 0", "topic 1", "topic 2")
    for split in ("train", "valid", "test"):
        examples = task.split(split)
        assert posteriors[split].shape == (len(examples), 3)
        for ex, post in zip(examples, posteriors[split]):
            assert len(ex.text.split()) == 3
            np.testing.assert_allclose(post, lang.topic_posterior(lang.ids(ex.text)), atol=1e-12)
    again, _ = topic_task(lang, {"train": 20, "valid": 8, "test": 9}, words=3, seed=0)
    assert [e.text for e in again.train] == [e.text for e in task.train]
    with pytest.raises(ValueError, match="positive int"):
        topic_task(lang, {"train": 2, "valid": 2, "test": 2}, words=0, seed=0)
