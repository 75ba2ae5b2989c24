"""The masking ablations: the studies' variants, the fixed evaluation, the summary over seeds, and a
run of a variant on tiny data."""

from __future__ import annotations

import math
import random
import statistics
import sys
from pathlib import Path

import pytest
import torch

import mlm_lessons.ablations as ablations
import mlm_lessons.finetuning as finetuning
from mlm_lessons.ablations import STUDIES, AblationSettings, Variant, fixed_eval_config, reference_scores, run_variant, summarize
from mlm_lessons.masking import IGNORE_INDEX, MaskingConfig
from mlm_lessons.tasks import ClassificationExample, TaskData
from mlm_lessons.training import eval_batches, evaluate

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import WORDS, tiny_tokenizer_and_texts  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


# -- the studies -------------------------------------------------------------------------------------


def test_corruption_study_follows_devlin_table_8():
    variants = STUDIES["corruption"]
    # Devlin et al. 2019, Table 8: MASK / SAME / RND, in the paper's row order
    assert [v.name for v in variants] == ["80/10/10", "100/0/0", "80/0/20", "80/20/0", "0/20/80", "0/0/100"]
    for v in variants:
        mask, same, rnd = (int(x) / 100 for x in v.name.split("/"))
        assert (v.p_mask, v.p_keep, v.p_random) == pytest.approx((mask, same, rnd))
        assert v.study == "corruption" and v.mask_ratio == 0.15 and v.static_masks == 0 and not v.subset
        m = v.masking()
        assert m == MaskingConfig(mask_ratio=0.15, p_mask=mask, p_random=rnd, p_keep=same)
    by_name = {v.name: v for v in variants}
    assert (by_name["80/0/20"].p_mask, by_name["80/0/20"].p_keep, by_name["80/0/20"].p_random) == (0.8, 0.0, 0.2)
    assert (by_name["80/20/0"].p_keep, by_name["80/20/0"].p_random) == (0.2, 0.0)
    assert by_name["0/0/100"].p_random == 1.0 and by_name["100/0/0"].p_mask == 1.0


def test_ratio_and_static_studies():
    ratio = STUDIES["ratio"]
    assert [v.name for v in ratio] == ["15%", "30%", "40%", "60%"]
    assert [v.mask_ratio for v in ratio] == [0.15, 0.30, 0.40, 0.60]
    assert all((v.p_mask, v.p_random, v.p_keep) == (0.8, 0.1, 0.1) and v.static_masks == 0 and not v.subset for v in ratio)
    static = {v.name: v for v in STUDIES["static"]}
    assert list(static) == ["dynamic", "static"]
    assert static["dynamic"].static_masks == 0 and static["static"].static_masks > 0
    assert all(v.subset and v.masking() == MaskingConfig() for v in static.values()), "only the masking schedule differs"
    assert set(STUDIES) == {"corruption", "ratio", "static"}
    # the shared baseline: BERT's setting is the first variant of both the corruption and the ratio study
    assert STUDIES["corruption"][0].masking() == STUDIES["ratio"][0].masking() == MaskingConfig()


def test_variants_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        STUDIES["ratio"][0].mask_ratio = 0.5


# -- the fixed evaluation --------------------------------------------------------------------------------


def test_fixed_eval_config_is_berts_masking_with_seed_0():
    config = fixed_eval_config()
    assert config.masking == MaskingConfig(mask_ratio=0.15, p_mask=0.8, p_random=0.1, p_keep=0.1)
    assert config.seed == 0 and config.max_length == 64 and config.static_masks == 0 and config.objective == "mlm"
    assert fixed_eval_config(16).max_length == 16 and fixed_eval_config(16).masking == config.masking


def test_fixed_eval_batches_do_not_depend_on_the_variant():
    tok, _, valid = tiny_tokenizer_and_texts(n_valid=40)
    a, b = eval_batches(tok, valid, fixed_eval_config(16)), eval_batches(tok, valid, fixed_eval_config(16))
    assert all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)
    # what a variant trains with leaves them alone; a variant's own validation masks differ
    own = eval_batches(tok, valid, fixed_eval_config(16).replace(masking=STUDIES["ratio"][3].masking(), seed=3))
    assert not all(torch.equal(x["labels"], y["labels"]) for x, y in zip(a, own))
    labelled = sum(int((x["labels"] != IGNORE_INDEX).sum()) for x in a)
    eligible = sum(int(x["attention_mask"].sum()) - 2 * x["attention_mask"].shape[0] for x in a)
    assert 0.12 < labelled / eligible < 0.2, "about 15% of the pieces"


# -- settings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 19}, "steps must be an int >= 20, got 19"),
        ({"steps": 100.0}, "steps must be an int >= 20, got 100.0"),
        ({"subset": 0}, r"subset must be a share of the training documents in \(0, 1\], got 0"),
        ({"subset": 1.5}, "subset must be a share"),
        ({"per_class": 0}, "per_class must be a positive int, got 0"),
        ({"per_class": 2.5}, "per_class must be a positive int"),
    ],
)
def test_settings_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AblationSettings(**kwargs)


def test_settings_defaults():
    s = AblationSettings()
    assert s.to_dict() == {"steps": 1000, "subset": 0.2, "per_class": 50, "finetune_lr": 2e-3, "probe_lr": 3e-2,
                           "finetune_task": "code-spans", "probe_task": "torch-subpackage"}
    assert AblationSettings(subset=1, steps=20).subset == 1


# -- summary over seeds -------------------------------------------------------------------------------------


def test_summarize_against_statistics():
    rng = random.Random(0)
    rows = []
    for seed in range(4):
        for study, variant in [("ratio", "15%"), ("corruption", "100/0/0"), ("ratio", "40%")]:
            rows.append({"study": study, "variant": variant, "seed": seed, "fixed_loss": rng.uniform(2, 4),
                         "probe_macro_f1": rng.random()})
    rows.append({"study": "ratio", "variant": "60%", "seed": 0, "fixed_loss": 3.0})
    out = summarize(rows)
    assert [(e["study"], e["variant"]) for e in out] == [("ratio", "15%"), ("corruption", "100/0/0"), ("ratio", "40%"),
                                                         ("ratio", "60%")], "groups in first-seen order"
    for entry in out[:3]:
        members = [r for r in rows if (r["study"], r["variant"]) == (entry["study"], entry["variant"])]
        assert entry["seeds"] == 4
        for m in ("fixed_loss", "probe_macro_f1"):
            values = [r[m] for r in members]
            assert entry[m] == pytest.approx(sum(values) / 4)
            assert entry[f"{m}_std"] == pytest.approx(statistics.stdev(values))  # n - 1
            assert entry[f"{m}_std"] == pytest.approx(math.sqrt(sum((v - entry[m]) ** 2 for v in values) / 3))
            assert entry[f"{m}_sem"] == pytest.approx(statistics.stdev(values) / 2)
        assert "finetune_macro_f1" not in entry and "train_loss_std" not in entry, "metrics no row has are left out"
    single = out[3]
    assert single["seeds"] == 1 and single["fixed_loss"] == 3.0
    assert math.isnan(single["fixed_loss_std"]) and math.isnan(single["fixed_loss_sem"])
    assert "probe_macro_f1" not in single


def test_summarize_by_hand_and_partial_metrics():
    rows = [{"study": "s", "variant": "v", "seed": 0, "fixed_loss": 1.0, "x": 10.0},
            {"study": "s", "variant": "v", "seed": 1, "fixed_loss": 3.0},
            {"study": "s", "variant": "v", "seed": 2, "fixed_loss": 5.0, "x": 14.0}]
    [entry] = summarize(rows, metrics=("fixed_loss", "x"))
    assert entry["fixed_loss"] == 3.0 and entry["fixed_loss_std"] == pytest.approx(2.0)
    assert entry["fixed_loss_sem"] == pytest.approx(2.0 / math.sqrt(3))
    assert entry["x"] == 12.0 and entry["x_std"] == pytest.approx(math.sqrt(8)) and entry["x_sem"] == pytest.approx(2.0)
    assert entry["seeds"] == 3
    assert summarize([]) == []
    # the same variant name in two studies stays two groups
    two = summarize([{"study": "a", "variant": "v", "seed": 0, "fixed_loss": 1.0},
                     {"study": "b", "variant": "v", "seed": 0, "fixed_loss": 2.0}])
    assert [(e["study"], e["fixed_loss"]) for e in two] == [("a", 1.0), ("b", 2.0)]


@pytest.mark.parametrize("missing", ["study", "variant", "seed"])
def test_summarize_errors(missing):
    row = {"study": "s", "variant": "v", "seed": 0, "fixed_loss": 1.0}
    del row[missing]
    with pytest.raises(ValueError, match=f"every row needs 'study', 'variant' and 'seed'; this one lacks '{missing}'"):
        summarize([{"study": "s", "variant": "v", "seed": 1}, row])


# -- running a variant on tiny data ---------------------------------------------------------------------


class TinyCorpus:
    def __init__(self, train, valid):
        self._texts = {"train": train, "valid": valid}

    def texts(self, split):
        return list(self._texts[split])


def toy_task(seed=0) -> TaskData:
    rng = random.Random(seed)

    def examples(n):
        return [ClassificationExample(" ".join(rng.choice(WORDS[10:] if i % 2 else WORDS[:10]) for _ in range(rng.randint(3, 8))),
                                      i % 2, "s") for i in range(n)]

    return TaskData("toy", "classification", ("a", "b"), examples(40), examples(12), examples(12))


SETTINGS = AblationSettings(steps=20, per_class=8, finetune_task="toy", probe_task="toy", subset=0.2)


@pytest.fixture(scope="module")
def tiny():
    tok, train, valid = tiny_tokenizer_and_texts(n_train=400, n_valid=30)
    return tok, TinyCorpus(train, valid), {"toy": toy_task()}


def _spy(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(module, name, spy)
    return calls


def test_run_variant_on_tiny_data(monkeypatch, tiny):
    tok, corpus, tasks = tiny
    pretrained = _spy(monkeypatch, ablations, "pretrain")
    tuned = _spy(monkeypatch, finetuning, "finetune")
    variant = STUDIES["corruption"][2]  # 80/0/20
    row = run_variant(variant, 1, tokenizer=tok, corpus=corpus, tasks=tasks, settings=SETTINGS, cache=False)
    by_fate = {f"fixed_{fate}_{m}" for fate in ("mask", "random", "kept") for m in ("loss", "accuracy")}
    assert set(row) == {"study", "variant", "seed", "own_valid_loss", "train_loss", "fixed_loss", "fixed_accuracy",
                        "finetune_macro_f1", "probe_macro_f1"} | by_fate
    assert (row["study"], row["variant"], row["seed"]) == ("corruption", "80/0/20", 1)
    # pretraining: the cpu-small model, the variant's masking, the settings' steps, the full training set
    [(args, kwargs, result)] = pretrained
    model_config, _, train_texts, valid_texts, config = args
    assert (model_config.d_model, model_config.n_layers) == (128, 2) and not model_config.causal
    assert config.masking == variant.masking() and config.static_masks == 0 and config.seed == 1
    assert config.max_steps == 20 and train_texts == corpus.texts("train") and valid_texts == corpus.texts("valid")
    assert kwargs["cache"] is False
    assert row["own_valid_loss"] == result.history[-1]["valid_loss"]
    # the fixed evaluation: BERT's masking with seed 0, whatever the variant and the seed
    fixed = evaluate(result.model, eval_batches(tok, corpus.texts("valid"), fixed_eval_config(64)), torch.device("cpu"))
    assert row["fixed_loss"] == pytest.approx(fixed["loss"]) and row["fixed_accuracy"] == pytest.approx(fixed["accuracy"])
    assert row["fixed_loss"] != pytest.approx(row["own_valid_loss"], rel=1e-9), "scored on other masks than its own"
    assert all(0 <= row[k] <= 1 for k in ("fixed_accuracy", "finetune_macro_f1", "probe_macro_f1"))
    assert math.isfinite(row["train_loss"]) and math.isfinite(row["fixed_loss"])
    # downstream: fine-tuning and a probe, both from the pretrained encoder, on per_class examples per class
    assert len(tuned) == 2
    (ft_args, _, ft), (probe_args, _, probe) = tuned
    assert not ft_args[3].freeze_encoder and ft_args[3].lr == SETTINGS.finetune_lr
    assert probe_args[3].freeze_encoder and probe_args[3].lr == SETTINGS.probe_lr and probe_args[0].pooling == "mean"
    assert all(len(a[2].train) == 2 * SETTINGS.per_class for a in (ft_args, probe_args))
    encoder = result.model.encoder.state_dict()
    assert all(torch.equal(probe.model.encoder.state_dict()[k], v.cpu()) for k, v in encoder.items()), "the probe keeps the encoder"
    assert not all(torch.equal(ft.model.encoder.state_dict()[k], v.cpu()) for k, v in encoder.items())
    assert row["finetune_macro_f1"] == ft.test["macro_f1"] and row["probe_macro_f1"] == probe.test["macro_f1"]


def test_static_variant_trains_on_the_subset(monkeypatch, tiny):
    tok, corpus, tasks = tiny
    pretrained = _spy(monkeypatch, ablations, "pretrain")
    monkeypatch.setattr(ablations, "_downstream", lambda *a, **k: {"finetune_macro_f1": 0.0, "probe_macro_f1": 0.0})
    row = run_variant(STUDIES["static"][1], 0, tokenizer=tok, corpus=corpus, tasks=tasks, settings=SETTINGS, cache=False)
    [(args, _, _)] = pretrained
    assert args[2] == corpus.texts("train")[:80], "the first 20% of the training documents"
    assert args[4].static_masks == STUDIES["static"][1].static_masks and args[4].masking == MaskingConfig()
    # 15%, 80/10/10 with seed 0 is the fixed evaluation's own masking: both losses agree
    assert row["fixed_loss"] == pytest.approx(row["own_valid_loss"])


def test_reference_scores_and_errors(tiny):
    tok, corpus, tasks = tiny
    row = reference_scores(0, tokenizer=tok, tasks=tasks, settings=SETTINGS)
    assert set(row) == {"study", "variant", "seed", "finetune_macro_f1", "probe_macro_f1"}
    assert (row["study"], row["variant"], row["seed"]) == ("reference", "no pretraining", 0)
    assert all(0 <= row[k] <= 1 for k in ("finetune_macro_f1", "probe_macro_f1"))
    with pytest.raises(ValueError, match="variant must be a Variant"):
        run_variant("80/10/10", 0, tokenizer=tok, corpus=corpus, tasks=tasks, settings=SETTINGS)
    with pytest.raises(ValueError, match=r"tasks lacks \['toy'\]"):
        run_variant(STUDIES["ratio"][0], 0, tokenizer=tok, corpus=corpus, tasks={}, settings=SETTINGS)
    with pytest.raises(ValueError, match=r"tasks lacks \['other'\]"):
        run_variant(Variant("x", "y"), 0, tokenizer=tok, corpus=corpus, tasks=tasks,
                    settings=AblationSettings(steps=20, finetune_task="toy", probe_task="other"))


def test_evaluate_by_fate_splits_the_fixed_evaluation(tiny):
    from mlm_lessons.model import EncoderConfig, MaskedLM

    tok, corpus, _ = tiny
    torch.manual_seed(0)
    model = MaskedLM(EncoderConfig(vocab_size=tok.vocab_size, max_len=64, d_model=32, n_layers=1, n_heads=2, d_ff=64))
    config = fixed_eval_config(64).replace(eval_sequences=40)
    split = ablations.evaluate_by_fate(model, tok, corpus.texts("valid"), config)
    whole = evaluate(model, eval_batches(tok, corpus.texts("valid"), config), torch.device("cpu"))
    # the same positions as eval_batches: the overall figures agree, and the parts add up to them
    assert split["positions"] == whole["positions"] == sum(split[f"{f}_positions"] for f in ("mask", "random", "kept"))
    assert split["loss"] == pytest.approx(whole["loss"], rel=1e-6) and split["accuracy"] == pytest.approx(whole["accuracy"])
    weighted = sum(split[f"{f}_loss"] * split[f"{f}_positions"] for f in ("mask", "random", "kept")) / split["positions"]
    assert weighted == pytest.approx(split["loss"], rel=1e-6)
    assert split["mask_positions"] > split["random_positions"] > 0 and split["kept_positions"] > 0
    with pytest.raises(ValueError, match="texts is empty"):
        ablations.evaluate_by_fate(model, tok, [], config)


# -- the predictability study ----------------------------------------------------------------------


def test_predictability_study_masks_the_same_budget_three_ways(tiny):
    from mlm_lessons.ablations import PREDICTABILITY, masked_share, word_eval_config

    tok, corpus, _ = tiny
    assert [v.name for v in PREDICTABILITY] == ["single pieces", "whole words", "spans"]
    assert [v.masking() for v in PREDICTABILITY] == [
        MaskingConfig(), MaskingConfig(whole_word=True, span_p=1.0), MaskingConfig(whole_word=True, span_p=0.2)]
    shares = [masked_share(tok, corpus.texts("valid"), v.masking()) for v in PREDICTABILITY]
    assert max(shares) - min(shares) < 0.01 and all(abs(s - 0.15) < 0.03 for s in shares), shares
    # the word-level evaluation selects every piece of a chosen word, with 80/10/10 and seed 0
    config = word_eval_config(64)
    assert config.masking == MaskingConfig(whole_word=True, span_p=1.0) and config.seed == 0
    examples = tok.encode_chunks(corpus.texts("valid"), max_length=64)[: config.eval_sequences]
    batches = eval_batches(tok, corpus.texts("valid"), config)
    labels = [row for b in batches for row in b["labels"].tolist()]
    for ex, row in zip(examples, labels):
        by_word = {}
        for w, label in zip(ex["word_ids"], row):
            if w is not None:
                by_word.setdefault(w, set()).add(label != IGNORE_INDEX)
        assert all(len(v) == 1 for v in by_word.values())


def test_run_predictability_on_tiny_data(tiny):
    from mlm_lessons.ablations import PREDICTABILITY, PredictabilitySettings, run_predictability

    tok, corpus, tasks = tiny
    settings = PredictabilitySettings(steps=20, per_class=8, lrs=(1e-3, 4e-3), tasks=("toy",), max_steps=10, eval_every=5)
    row = run_predictability(PREDICTABILITY[2], 0, tokenizer=tok, corpus=corpus, tasks=tasks, settings=settings, cache=False)
    assert (row["study"], row["variant"], row["seed"]) == ("predictability", "spans", 0)
    assert abs(row["masked_share"] - 0.15) < 0.03
    for prefix in ("fixed", "word"):
        assert math.isfinite(row[f"{prefix}_mask_loss"]) and 0 <= row[f"{prefix}_mask_accuracy"] <= 1
    assert row["word_loss"] != pytest.approx(row["fixed_loss"], rel=1e-9), "two different evaluation masks"
    assert set(row["finetune"]) == {"toy"} and set(row["finetune"]["toy"]) == {"0.001", "0.004"}
    assert all(0 <= r[k] <= 1 for r in row["finetune"]["toy"].values() for k in ("valid", "test"))
    again = run_predictability(PREDICTABILITY[2], 0, tokenizer=tok, corpus=corpus, tasks=tasks, settings=settings, cache=False,
                               lrs=[1e-3])
    assert again["finetune"]["toy"]["0.001"] == row["finetune"]["toy"]["0.001"], "a rate's run is the same whatever the grid"
    with pytest.raises(ValueError, match="variant must be a Variant"):
        run_predictability("spans", 0, tokenizer=tok, corpus=corpus, tasks=tasks, settings=settings)
    with pytest.raises(ValueError, match=r"tasks lacks \['toy'\]"):
        run_predictability(PREDICTABILITY[0], 0, tokenizer=tok, corpus=corpus, tasks={}, settings=settings)
    with pytest.raises(ValueError, match="lrs must hold at least two positive learning rates"):
        PredictabilitySettings(lrs=(1e-3,))


def test_choose_protocol_picks_the_best_mean_validation_rate():
    from mlm_lessons.ablations import choose_protocol

    def row(variant, seed, scores):
        return {"variant": variant, "seed": seed, "finetune": {"t": {str(lr): {"valid": v, "test": v + 0.5} for lr, v in scores.items()}}}

    rows = [row("a", 1, {1e-3: 0.2, 2e-3: 0.4, 4e-3: 0.1}), row("a", 0, {1e-3: 0.3, 2e-3: 0.3, 4e-3: 0.2}),
            row("b", 0, {1e-3: 0.5, 2e-3: 0.1}), row("b", 1, {1e-3: 0.6, 2e-3: 0.2, 4e-3: 0.9})]
    chosen = choose_protocol(rows, "t")
    assert chosen["a"] == {"lr": 2e-3, "at_edge": False, "seeds": [0, 1], "test": [0.8, 0.9]}
    # b's 4e-3 ran on one seed only: the choice is among the rates every seed has
    assert chosen["b"] == {"lr": 1e-3, "at_edge": True, "seeds": [0, 1], "test": [1.0, 1.1]}
