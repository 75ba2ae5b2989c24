"""Fair comparisons: the learning-rate choice, paired differences and the bag-of-words baseline."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from scipy import stats

from mlm_lessons.comparison import PairedDifference, bag_of_words, choose_lr, lr_protocol, mean_std, paired
from mlm_lessons.tasks import ClassificationExample, TaggingExample, TaskData


def test_lr_protocol_widens_the_grid_towards_the_best_and_stops():
    calls = []

    def run(lr, seed):  # validation peaks at 1.6e-2; seeds shift every score alike
        calls.append((lr, seed))
        return {"valid": -abs(math.log(lr / 1.6e-2)) + 0.01 * seed, "test": lr}

    out = lr_protocol(run, [1e-3, 2e-3, 4e-3], seeds=[0, 1], widen=3)
    assert out["lr"] == pytest.approx(1.6e-2) and not out["at_edge"]
    assert sorted(out["runs"]) == pytest.approx([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2])
    assert len(calls) == 12 and len(set(calls)) == 12  # every rate and seed once
    assert out["runs"][1e-3] == [{"valid": run(1e-3, 0)["valid"], "test": 1e-3}, {"valid": run(1e-3, 1)["valid"], "test": 1e-3}]
    capped = lr_protocol(run, [1e-3, 2e-3], seeds=[0], widen=1)
    assert capped["lr"] == pytest.approx(4e-3) and capped["at_edge"] and len(capped["runs"]) == 3
    low = lr_protocol(lambda lr, s: {"valid": -lr}, [1e-3, 2e-3], seeds=[0], widen=1)
    assert low["lr"] == pytest.approx(5e-4) and sorted(low["runs"]) == pytest.approx([5e-4, 1e-3, 2e-3])
    for bad, match in (({"lrs": [1e-3]}, "two learning rates"), ({"seeds": []}, "seeds"), ({"factor": 1.0}, "factor")):
        kwargs = {"lrs": [1e-3, 2e-3], "seeds": [0], **bad}
        with pytest.raises(ValueError, match=match):
            lr_protocol(run, **kwargs)


def test_finetune_with_protocol_runs_every_rate_and_seed_and_reports_the_choice():
    import mlm_lessons as mlm
    from mlm_lessons.comparison import finetune_with_protocol
    from mlm_lessons.finetuning import FinetuneConfig
    from mlm_lessons.model import EncoderConfig

    tok = mlm.tokenizer_from_vocab(WORDS)
    config = EncoderConfig(vocab_size=tok.vocab_size, max_len=16, d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0)
    asked = []

    def init(seed):
        asked.append(seed)
        return config

    out = finetune_with_protocol(topic_task(), init, tok, FinetuneConfig(max_steps=2, eval_every=1, device="cpu"),
                                 per_class=4, lrs=[1e-3, 2e-3], seeds=[0, 1])
    assert out["metric"] == "macro_f1" and out["lr"] in (5e-4, 1e-3, 2e-3, 4e-3)
    assert out["lr"] == choose_lr({float(lr): [r["valid"] for r in rows] for lr, rows in out["grid"].items()})[0]
    assert all(len(rows) == 2 and set(rows[0]) == {"valid", "test", "best_step", "test_metrics"} for rows in out["grid"].values())
    assert all(r["test"] == r["test_metrics"]["macro_f1"] and 0 <= r["test_metrics"]["accuracy"] <= 1
               for rows in out["grid"].values() for r in rows)
    assert asked[:4] == [0, 1, 0, 1]  # a run per rate and seed, each from the seed's starting point
    fixed = finetune_with_protocol(topic_task(), config, tok, FinetuneConfig(max_steps=2, eval_every=1, device="cpu"),
                                   per_class=4, lrs=[1e-3, 2e-3], seeds=[0, 1])
    assert fixed["grid"]["0.001"] == out["grid"]["0.001"]  # the same start and seeds: the same runs


def test_choose_lr_takes_the_best_validation_mean_and_flags_the_edge():
    assert choose_lr({1e-3: [0.5, 0.6], 2e-3: [0.7, 0.6], 4e-3: [0.4, 0.5]}) == (2e-3, False)
    assert choose_lr({1e-3: [0.5], 2e-3: [0.4], 4e-3: [0.3]}) == (1e-3, True)
    assert choose_lr({4e-3: [0.1], 1e-3: [0.2], 2e-3: [0.3]}) == (2e-3, False)  # the order of the keys does not matter
    assert choose_lr({1e-3: [0.5], 2e-3: [0.5], 4e-3: [0.1]}) == (1e-3, True)  # a tie: the smaller rate
    with pytest.raises(ValueError, match="at least two learning rates"):
        choose_lr({1e-3: [0.5]})
    with pytest.raises(ValueError, match="> 0 with at least one score"):
        choose_lr({1e-3: [0.5], 2e-3: []})


@pytest.mark.parametrize("seed", range(4))
def test_paired_matches_scipy(seed):
    rng = random.Random(seed)
    a = [rng.random() for _ in range(6)]
    b = [x - 0.05 + rng.gauss(0, 0.05) for x in a]
    d = paired(a, b)
    assert d.mean == pytest.approx(statistics.mean(a) - statistics.mean(b))
    assert d.t == pytest.approx(stats.ttest_rel(a, b).statistic)
    assert d.wins == sum(x > y for x, y in zip(a, b)) and d.n == 6
    assert d.clear == (d.mean > d.std)


def test_paired_edge_cases():
    same = paired([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert same.std == pytest.approx(0, abs=1e-15) and same.clear and same.wins == 3
    assert PairedDifference(0.1, 0.0, 3, 3).t == math.inf and PairedDifference(0.0, 0.0, 3, 0).t == 0.0
    assert not paired([0.5, 0.7, 0.5, 0.7], [0.6, 0.6, 0.6, 0.6]).clear  # level on average
    assert str(PairedDifference(0.0123, 0.004, 5, 4)) == "+0.012 ± 0.004 (higher on 4 of 5 seeds, p = 0.002)"
    with pytest.raises(ValueError, match="same seeds on both sides"):
        paired([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="at least two"):
        paired([0.1], [0.2])


def test_mean_std():
    assert mean_std([0.5, 0.7]) == "0.600 ± 0.141"
    assert mean_std([0.5]) == "0.500 ± 0.000"
    with pytest.raises(ValueError):
        mean_std([])


WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


def topic_task(seed=0) -> TaskData:
    """Class = whether the text holds 'alpha' (else 'beta'), among six filler words."""
    rng = random.Random(seed)

    def examples(n):
        out = []
        for i in range(n):
            words = [rng.choice(WORDS[2:]) for _ in range(6)] + [("alpha", "beta")[i % 2]]
            rng.shuffle(words)
            out.append(ClassificationExample(" ".join(words), i % 2, "s"))
        return out

    return TaskData("toy", "classification", ("a", "b"), examples(40), examples(20), examples(20))


def neighbour_task(seed=0) -> TaskData:
    """A word is labelled 1 when the word before it is 'alpha': its own identity says nothing."""
    rng = random.Random(seed)

    def examples(n):
        out = []
        for _ in range(n):
            words = [rng.choice(WORDS) for _ in range(10)]
            out.append(TaggingExample(tuple(words), tuple(int(i > 0 and words[i - 1] == "alpha") for i in range(10)), "s"))
        return out

    return TaskData("toy-tags", "tagging", ("prose", "code"), examples(60), examples(20), examples(20))


def test_bag_of_words_solves_what_word_counts_tell():
    result = bag_of_words(topic_task())
    assert result["test"]["macro_f1"] > 0.9 and result["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)  # chance: 0.5
    assert set(result["valid"]) == {"accuracy", "macro_f1"}


def test_bag_of_pieces_counts_what_the_tokenizer_sees():
    import mlm_lessons as mlm

    fillers = [w for w in WORDS[2:] if "alpha" not in w and "beta" not in w]
    pieces = mlm.tokenizer_from_vocab(fillers + ["al", "##pha", "be", "##ta"])
    assert pieces.tokenize("alpha beta") == ["al", "##pha", "be", "##ta"]
    assert bag_of_words(topic_task(), tokenizer=pieces)["test"]["macro_f1"] > 0.9
    blind = mlm.tokenizer_from_vocab(fillers)  # alpha and beta are both [UNK]: nothing tells the classes apart
    assert blind.tokenize("alpha") == blind.tokenize("beta") == ["[UNK]"]
    assert bag_of_words(topic_task(), tokenizer=blind)["test"]["macro_f1"] < 0.7
    with pytest.raises(ValueError, match="classification"):
        bag_of_words(neighbour_task(), tokenizer=pieces)


def test_bag_of_words_window_sees_the_neighbours():
    task = neighbour_task()
    alone, window = bag_of_words(task, window=0), bag_of_words(task, window=1)
    assert window["test"]["span_f1"] == 1.0 and window["test"]["token_f1"] == 1.0
    assert alone["test"]["token_f1"] < 0.5  # the word itself carries no signal
    assert {"span_f1", "token_f1", "word_accuracy"} <= set(window["test"])


def test_bag_of_words_errors():
    with pytest.raises(ValueError, match="window must be"):
        bag_of_words(neighbour_task(), window=-1)
    with pytest.raises(ValueError, match="Cs must be"):
        bag_of_words(topic_task(), Cs=(0.0,))
    one_class = topic_task()
    one_class.train = [ex for ex in one_class.train if ex.label == 0]
    with pytest.raises(ValueError, match="single label"):
        bag_of_words(one_class)


def test_linear_probe_reads_what_the_vectors_hold():
    import sys
    from pathlib import Path

    import torch

    import mlm_lessons as mlm
    from mlm_lessons.comparison import linear_probe
    from mlm_lessons.model import EncoderConfig, MaskedLM

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_data import WORDS as VOCAB

    tok = mlm.tokenizer_from_vocab(VOCAB + ["."])
    torch.manual_seed(0)
    model = MaskedLM(EncoderConfig(vocab_size=tok.vocab_size, max_len=32, d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0))
    rng = random.Random(0)

    def examples(n):  # class 1 holds "tensor", class 0 "gradient": even random weights' mean vectors tell them apart
        out = []
        for i in range(n):
            words = [rng.choice(VOCAB[3:]) for _ in range(5)] + [("gradient", "tensor")[i % 2]]
            out.append(ClassificationExample(" ".join(words), i % 2, "s"))
        return out

    task = TaskData("toy", "classification", ("a", "b"), examples(60), examples(30), examples(30))
    result = linear_probe(model, tok, task)
    assert result["test"]["macro_f1"] > 0.8 and result["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)
    with pytest.raises(ValueError, match="classification task"):
        linear_probe(model, tok, neighbour_task())


def test_token_probe_reads_each_word_state():
    import torch

    import mlm_lessons as mlm
    from mlm_lessons.comparison import token_probe
    from mlm_lessons.model import EncoderConfig, MaskedLM

    tok = mlm.tokenizer_from_vocab(WORDS)
    torch.manual_seed(0)
    model = MaskedLM(EncoderConfig(vocab_size=tok.vocab_size, max_len=8, d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0))
    rng = random.Random(0)

    def examples(n):  # a word is code when it is "alpha": its own state says so; 12 words > max_len, so chunks
        out = []
        for _ in range(n):
            words = [rng.choice(WORDS) for _ in range(12)]
            out.append(TaggingExample(tuple(words), tuple(int(w == "alpha") for w in words), "s"))
        return out

    task = TaskData("own-word", "tagging", ("text", "code"), examples(40), examples(20), examples(20))
    result = token_probe(model, tok, task)
    assert result["test"]["span_f1"] > 0.95 and result["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)
    assert {"span_f1", "token_f1", "word_accuracy"} <= set(result["valid"])
    with pytest.raises(ValueError, match="tagging task"):
        token_probe(model, tok, topic_task())
    with pytest.raises(ValueError, match="Cs must be"):
        token_probe(model, tok, task, Cs=())
    with pytest.raises(ValueError, match=".encoder"):
        token_probe(torch.nn.Linear(2, 2), tok, task)



def test_paired_p_value_is_scipys_paired_t_test():
    rng = random.Random(0)
    for n in (2, 3, 5, 8, 30):
        for shift in (0.0, 0.3, 3.0):
            a = [rng.gauss(shift, 1) for _ in range(n)]
            b = [rng.gauss(0, 1) for _ in range(n)]
            assert paired(a, b).p_value == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-10, abs=1e-300)
    assert paired([1, 2, 3], [1, 2, 3]).p_value == 1.0  # no difference at all
    assert paired([2, 3, 4], [1, 2, 3]).p_value == 0.0  # the same difference on every seed: t is infinite
    # five seeds, every one ahead: a sign test cannot go below 1/16, the t-test can
    assert paired([0.31, 0.33, 0.30, 0.35, 0.32], [0.30, 0.31, 0.29, 0.31, 0.30]).p_value < 0.05
