"""Domain adaptation: vocabulary statistics, vocabulary extension, vocabulary checks, DAPT, and the
pretraining options it relies on (extra validation sets, early stopping, the run cache)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

import mlm_lessons as mlm
from mlm_lessons.adaptation import (
    dapt,
    dapt_config,
    domain_shift,
    domain_words,
    extend_vocabulary,
    load_pretrained,
)
from mlm_lessons.corpus.stats import top_words, vocabulary_overlap, word_frequencies
from mlm_lessons.corpus.stopwords import STOP_WORDS
from mlm_lessons.model import EncoderConfig, MaskedLM, check_vocabulary
from mlm_lessons.training import TrainConfig, pretrain, run_cache_key

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import WORDS, tiny_tokenizer_and_texts  # noqa: E402

TINY_MODEL = dict(max_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64)
PIECES = ["auto", "##grad", "##s", "computes", "the", "gradient", "tensor", "##ize", "##d", "x", "."]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**kw) -> TrainConfig:
    base = dict(max_steps=6, batch_size=8, max_length=16, warmup_steps=2, eval_every=2, eval_sequences=16,
                log_every=1, device="cpu", seed=1)
    return TrainConfig(**{**base, **kw})


def state_of(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def tiny_model(vocab_size: int, seed: int = 0) -> MaskedLM:
    torch.manual_seed(seed)
    return MaskedLM(EncoderConfig(vocab_size=vocab_size, dropout=0.0, **TINY_MODEL))


@pytest.fixture(scope="module")
def piece_tok():
    tok = mlm.tokenizer_from_vocab(PIECES)
    assert tok.tokenize("autograd gradients tensorized") == ["auto", "##grad", "gradient", "##s", "tensor", "##ize", "##d"]
    return tok


# -- word statistics ----------------------------------------------------------------------------------


def test_top_words_and_vocabulary_overlap_by_hand():
    assert {"the", "and"} <= STOP_WORDS and not {"tensor", "module", "python"} & STOP_WORDS
    a = Counter({"the": 100, "42": 50, "tensor": 5, "gradient": 4, "module": 3, "layer": 1})
    b = Counter({"and": 50, "module": 9, "python": 7, "string": 6, "tensor": 1})
    assert top_words(a, 10) == ["tensor", "gradient", "module", "layer"]  # no stop words, no numbers
    assert top_words(Counter({"beta": 2, "gamma": 2, "alpha": 2, "delta": 3}), 3) == ["delta", "alpha", "beta"]  # ties alphabetical
    assert vocabulary_overlap(a, b, k=2) == 0.0  # [tensor, gradient] vs [module, python]
    assert vocabulary_overlap(a, b, k=3) == pytest.approx(1 / 3)  # module
    assert vocabulary_overlap(a, b, k=4) == pytest.approx(2 / 4)  # module, tensor
    assert vocabulary_overlap(a, a, k=4) == 1.0
    with pytest.raises(ValueError, match="only 4 distinct content words, fewer than k=5"):
        vocabulary_overlap(a, b, k=5)
    assert vocabulary_overlap(a, b, k=2, stop_words=["tensor"]) == 0.0
    c, d = Counter({"the": 3, "x": 1}), Counter({"the": 5, "y": 2})
    assert vocabulary_overlap(c, d, k=1, stop_words=()) == 1.0 and vocabulary_overlap(c, d, k=1) == 0.0
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_words(a, 0)


def test_domain_shift_by_hand(piece_tok):
    general = ["the tensor computes the gradient", "the gradient"]
    domain = ["tensor autograd autograd", "Autograd gradients"]
    shift = domain_shift(piece_tok, general, domain, k=2, general="g", domain="d")
    # general top-2 content words: gradient (2), computes (1, alphabetically first); domain: autograd (3), gradients (1)
    assert shift.overlap == 0.0
    assert shift.unseen_words == pytest.approx(4 / 5)  # autograd x3 and gradients; tensor is known
    frag = piece_tok.fragmentation(domain)
    assert shift.pieces_per_word == frag.pieces_per_word == pytest.approx(9 / 5)
    assert shift.share_split == pytest.approx(4 / 5) and shift.unk_rate == 0.0
    assert shift.general_pieces_per_word == 1.0 and shift.general_share_split == 0.0
    row = shift.as_row()
    assert row["general"] == "g" and row["top-2 overlap"] == 0.0
    with pytest.raises(ValueError, match="general_texts must be a list"):
        domain_shift(piece_tok, "the tensor", domain, k=1)


def test_domain_words_ranking(piece_tok):
    texts = (["autograd"] * 5 + ["gradients"] * 4 + ["tensorized"] * 3 + ["the"] * 10 + ["zzz"] * 10
             + ["x2"] * 10 + ["autogradsgrad"])
    texts = [" ".join(texts[i : i + 7]) for i in range(0, len(texts), 7)]
    # savings: tensorized 3 x (3 - 1) = 6, autograd 5 x 1 = 5, gradients 4 x 1 = 4; "the" is one piece,
    # "zzz" a single [UNK], "x2" not letters only, "autogradsgrad" (4 pieces) below min_count
    assert domain_words(piece_tok, texts, k=10, min_count=2) == ["tensorized", "autograd", "gradients"]
    assert domain_words(piece_tok, texts, k=2, min_count=2) == ["tensorized", "autograd"]
    assert domain_words(piece_tok, texts, k=10, min_count=4) == ["autograd", "gradients"]
    assert domain_words(piece_tok, texts, k=10, min_count=1)[-1] == "autogradsgrad"  # 1 x (4 - 1) = 3
    assert domain_words(piece_tok, ["Autograd AUTOGRAD autograd"], min_count=3) == ["autograd"]  # after lowercasing
    assert domain_words(piece_tok, ["the the"], min_count=1) == []
    for kwargs, message in (({"k": 0}, "k must be a positive int"), ({"min_count": 0}, "min_count must be a positive int")):
        with pytest.raises(ValueError, match=message):
            domain_words(piece_tok, texts, **kwargs)
    with pytest.raises(ValueError, match="domain_texts must be a list"):
        domain_words(piece_tok, "autograd autograd")


# -- vocabulary extension -----------------------------------------------------------------------------


def test_extend_vocabulary_keeps_the_old_and_averages_the_new(piece_tok):
    model = tiny_model(piece_tok.vocab_size)
    with torch.no_grad():
        model.head_bias.normal_()  # non-zero biases, so that averaging them is visible
    before = state_of(model)
    new_model, new_tok = extend_vocabulary(model, piece_tok, ["autograd", "tensorized"])
    old_size = piece_tok.vocab_size
    assert new_tok.vocab_size == old_size + 2 and new_model.config.vocab_size == old_size + 2
    vocab = new_tok.get_vocab()
    assert all(vocab[t] == i for t, i in piece_tok.get_vocab().items())
    assert vocab["autograd"] == old_size and vocab["tensorized"] == old_size + 1
    assert new_tok.tokenize("autograd Tensorized") == ["autograd", "tensorized"]
    assert new_tok.tokenize("autograds gradients") == ["autograd", "##s", "gradient", "##s"]
    assert new_tok.encode("the x") == piece_tok.encode("the x")
    emb, old_emb = new_model.encoder.tok_emb.weight, before["encoder.tok_emb.weight"]
    assert torch.equal(emb[:old_size], old_emb) and torch.equal(new_model.head_bias[:old_size], before["head_bias"])
    ids = piece_tok.get_vocab()
    auto = [ids["auto"], ids["##grad"]]
    tens = [ids["tensor"], ids["##ize"], ids["##d"]]
    assert torch.allclose(emb[old_size], old_emb[auto].mean(0)) and torch.allclose(emb[old_size + 1], old_emb[tens].mean(0))
    assert new_model.head_bias[old_size].item() == pytest.approx(before["head_bias"][auto].mean().item())
    assert new_model.head_bias[old_size + 1].item() == pytest.approx(before["head_bias"][tens].mean().item())
    new_state = new_model.state_dict()
    assert all(torch.equal(new_state[k], v) for k, v in before.items() if k not in ("encoder.tok_emb.weight", "head_bias"))
    assert same_state(state_of(model), before)  # the old model is unchanged
    assert new_model.config.vocab_fingerprint == new_tok.fingerprint != piece_tok.fingerprint
    ids_new = torch.tensor([new_tok.encode("autograd computes the tensorized gradient")])
    assert ids_new.max().item() == old_size + 1
    logits = new_model.eval()(ids_new).logits
    assert logits.shape == (1, ids_new.shape[1], old_size + 2) and torch.isfinite(logits).all()
    new_model.check_vocabulary(new_tok)
    with pytest.raises(ValueError, match="vocabulary"):
        new_model.check_vocabulary(piece_tok)


@pytest.mark.parametrize(
    "words, message",
    [
        ([], "words is empty"),
        (["gradient"], "'gradient' is already in the vocabulary"),
        (["auto grad"], "cannot add 'auto grad'"),
        (["auto-grad"], "cannot add 'auto-grad'"),
        (["autograd."], "cannot add 'autograd.'"),
        (["Autograd"], "cannot add 'Autograd'.*lowercase"),
        (["[MASK]"], r"cannot add '\[MASK\]'"),
        (["##grads"], "cannot add '##grads'"),
        ([""], "cannot add ''"),
        (["autograd", "tensorized", "autograd"], r"words must be unique; repeated: \['autograd'\]"),
    ],
)
def test_extend_vocabulary_rejects(piece_tok, words, message):
    with pytest.raises(ValueError, match=message):
        extend_vocabulary(tiny_model(piece_tok.vocab_size), piece_tok, words)


def test_extend_vocabulary_checks_the_model(piece_tok):
    with pytest.raises(ValueError, match="vocabulary of"):
        extend_vocabulary(tiny_model(piece_tok.vocab_size + 1), piece_tok, ["autograd"])


def test_extend_vocabulary_keeps_case_when_the_tokenizer_does():
    tok = mlm.tokenizer_from_vocab(["Auto", "##grad", "the"], lowercase=False)
    _, new_tok = extend_vocabulary(tiny_model(tok.vocab_size), tok, ["Autograd"])
    assert new_tok.tokenize("Autograd the") == ["Autograd", "the"]
    assert new_tok.tokenize("autograd") == ["[UNK]"]


# -- vocabulary checks --------------------------------------------------------------------------------


def test_check_vocabulary():
    tok = mlm.tokenizer_from_vocab(WORDS)
    shuffled = mlm.tokenizer_from_vocab(list(reversed(WORDS)))
    assert tok.vocab_size == shuffled.vocab_size and tok.fingerprint != shuffled.fingerprint
    assert tok.fingerprint == mlm.tokenizer_from_vocab(WORDS).fingerprint
    model = tiny_model(tok.vocab_size)
    assert model.config.vocab_fingerprint is None
    check_vocabulary(model.config, shuffled)  # without a fingerprint only the size can be checked
    with pytest.raises(ValueError, match="the model has a vocabulary of 25 tokens, the tokenizer 24"):
        check_vocabulary(model.config, mlm.tokenizer_from_vocab(WORDS[:-1]))
    model.check_vocabulary(tok)  # a new model takes the tokenizer's fingerprint ...
    assert model.config.vocab_fingerprint == model.encoder.config.vocab_fingerprint == tok.fingerprint
    model.check_vocabulary(tok)
    with pytest.raises(ValueError, match="same size, different tokens"):  # ... and keeps it
        model.check_vocabulary(shuffled)
    with pytest.raises(ValueError, match="vocab_fingerprint must be a str"):
        EncoderConfig(vocab_size=10, vocab_fingerprint=3)


def test_load_pretrained_checks_the_tokenizer(tmp_path):
    tok, train, valid = tiny_tokenizer_and_texts(n_train=40, n_valid=8)
    pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(max_steps=2, warmup_steps=1, eval_every=2),
             out_dir=tmp_path, progress=False)
    model, own = load_pretrained(tmp_path)
    assert own == tok and model.config.vocab_fingerprint == tok.fingerprint  # saved in the checkpoint's configuration
    model2, same = load_pretrained(tmp_path, tok)
    assert same is tok and same_state(model.state_dict(), model2.state_dict())
    with pytest.raises(ValueError, match="same size, different tokens"):
        load_pretrained(tmp_path, mlm.tokenizer_from_vocab(list(reversed(WORDS + ["."]))))
    with pytest.raises(ValueError, match="vocabulary of"):
        load_pretrained(tmp_path, mlm.tokenizer_from_vocab(WORDS))


# -- domain-adaptive pretraining ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_texts():
    tok, train, valid = tiny_tokenizer_and_texts(n_train=60, n_valid=10)
    _, _, general_valid = tiny_tokenizer_and_texts(n_train=10, n_valid=10, seed=7)
    return tok, train, valid, general_valid


def test_dapt_config():
    base = TrainConfig(max_steps=5000, lr=1e-3, warmup_steps=500, checkpoint_every=1000, batch_size=64, max_length=64)
    c = dapt_config(base, 200)
    assert (c.max_steps, c.warmup_steps, c.lr, c.eval_every, c.checkpoint_every) == (200, 10, 5e-4, 100, 0)
    assert (c.batch_size, c.max_length, c.masking) == (64, 64, base.masking)
    assert dapt_config(base, 10, lr=2e-4, eval_every=5, seed=3).to_dict() == {
        **base.to_dict(), "max_steps": 10, "warmup_steps": 1, "lr": 2e-4, "eval_every": 5, "checkpoint_every": 0, "seed": 3}


def test_dapt_evaluates_both_texts_and_leaves_the_model(tiny_texts):
    tok, train, valid, general_valid = tiny_texts
    model = tiny_model(tok.vocab_size)
    before = state_of(model)
    result = dapt(model, tok, train, valid, general_valid, tiny_config(max_steps=4), patience=None,
                  extra_valid={"other": valid[:4]}, progress=False)
    evals = result.evaluations()
    assert [e["step"] for e in evals] == [0, 2, 4]
    assert all({"valid_loss", "general_loss", "general_accuracy", "other_loss"} <= e.keys() for e in evals)
    assert evals[0]["valid_loss"] != evals[0]["general_loss"]
    assert same_state(state_of(model), before)  # trained on a copy
    assert result.model is not model and not same_state(state_of(result.model), before)
    assert result.best_step is None and result.stopped_at is None
    with torch.no_grad():  # the step-0 numbers are those of the model given
        from mlm_lessons.training import eval_batches, evaluate

        metrics = evaluate(model, eval_batches(tok, list(general_valid), tiny_config()), torch.device("cpu"), "fp32")
    assert evals[0]["general_loss"] == pytest.approx(metrics["loss"], rel=1e-5)


def test_dapt_early_stopping_returns_the_step_zero_weights(tiny_texts, tmp_path):
    tok, train, valid, general_valid = tiny_texts
    model = tiny_model(tok.vocab_size)
    result = dapt(model, tok, train, valid, general_valid, tiny_config(max_steps=6), patience=1, min_delta=1e9,
                  out_dir=tmp_path, progress=False)
    assert result.best_step == 0 and result.stopped_at == 2
    assert [e["step"] for e in result.evaluations()] == [0, 2]
    assert max(h["step"] for h in result.history) == 2  # no training after the stop
    assert same_state(state_of(result.model), state_of(model))  # the best weights are those of step 0
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["stopped_at"] == 2 and ckpt["best_step"] == 0 and same_state(ckpt["model"], state_of(model))
    with pytest.raises(ValueError, match="stopped early at step 2; there is nothing to resume"):
        pretrain(tiny_model(tok.vocab_size), tok, train, valid, tiny_config(max_steps=6), out_dir=tmp_path, resume=True,
                 progress=False)


def test_dapt_rejects(tiny_texts):
    tok, train, valid, general_valid = tiny_texts
    with pytest.raises(ValueError, match="dapt continues a trained MaskedLM"):
        dapt(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, general_valid, tiny_config())
    with pytest.raises(ValueError, match="vocabulary of"):
        dapt(tiny_model(tok.vocab_size + 3), tok, train, valid, general_valid, tiny_config())
    with pytest.raises(ValueError, match="names must be identifiers other than 'valid'"):
        dapt(tiny_model(tok.vocab_size), tok, train, valid, general_valid, tiny_config(), extra_valid={"valid": valid})


def test_overfit_runs_share_one_trajectory(tiny_texts, monkeypatch, tmp_path):
    from types import SimpleNamespace

    import mlm_lessons.corpus as corpus_pkg
    from mlm_lessons.adaptation import OverfitSettings, overfit_runs

    monkeypatch.setenv("MLM_LESSONS_CACHE", str(tmp_path))
    tok, train, valid, general_valid = tiny_texts
    texts = {"general": {"valid": general_valid}, "domain": {"train": train, "valid": valid}}
    monkeypatch.setattr(corpus_pkg, "load_corpus", lambda name: SimpleNamespace(texts=lambda split: list(texts[name][split])))
    general = pretrain(tiny_model(tok.vocab_size), tok, train, valid, tiny_config(max_steps=4), progress=False)
    config = tiny_config(max_steps=4, lr=1e-3)
    settings = OverfitSettings(share=0.5, steps=12, lr_factor=20.0, eval_every=2, patience=1)
    runs = overfit_runs(general.model, tok, config, settings, general_corpus="general", domain_corpus="domain")
    assert runs.documents == 30 and runs.config.lr == pytest.approx(1e-2) and runs.config.max_steps == 12
    last, kept = runs.last.evaluations(), runs.kept.evaluations()
    assert [e["step"] for e in last] == list(range(0, 13, 2)) and runs.last.stopped_at is None
    assert runs.kept.stopped_at is not None and runs.kept.stopped_at == kept[-1]["step"] < 12
    assert kept == last[: len(kept)]  # the early-stopped run is the full one cut short
    best = min(kept, key=lambda e: e["valid_mask_loss"])
    assert runs.kept.best_step == best["step"]
    again = overfit_runs(general.model, tok, config, settings, general_corpus="general", domain_corpus="domain")  # run cache
    assert again.last.cached and again.kept.cached
    with pytest.raises(ValueError, match="TrainConfig"):
        overfit_runs(general.model, tok, None, settings)
    for bad, match in (({"share": 0}, "share"), ({"steps": 3, "eval_every": 2}, "steps"), ({"lr_factor": 0}, "lr_factor"),
                       ({"patience": 0}, "patience")):
        with pytest.raises(ValueError, match=match):
            OverfitSettings(**bad)


# -- the new pretrain options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"also_evaluate": {"valid": ["a b"]}}, "also_evaluate names must be identifiers other than 'valid' and 'train'"),
        ({"also_evaluate": {"train": ["a b"]}}, "also_evaluate names must be identifiers"),
        ({"also_evaluate": {"two words": ["a b"]}}, "also_evaluate names must be identifiers"),
        ({"also_evaluate": {"general": "the tensor"}}, r"also_evaluate\['general'\] must be a list of texts"),
        ({"patience": 0}, "patience must be a positive int"),
        ({"patience": True}, "patience must be a positive int"),
        ({"min_delta": -0.1}, "min_delta must be >= 0"),
        ({"patience": 2, "resume": True}, "early stopping .* cannot be combined with resume or stop_after"),
        ({"patience": 2, "stop_after": 2}, "cannot be combined with resume or stop_after"),
        ({"cache": True, "out_dir": "somewhere"}, "cache=True chooses its own run directory"),
        ({"cache": True, "stop_after": 2}, "cache=True chooses its own run directory"),
    ],
)
def test_pretrain_option_validation(kwargs, message, tmp_path, monkeypatch):
    monkeypatch.setenv("MLM_LESSONS_CACHE", str(tmp_path / "cache"))
    tok, train, valid = tiny_tokenizer_and_texts(n_train=20, n_valid=4)
    with pytest.raises(ValueError, match=message):
        pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(), progress=False, **kwargs)
    assert not (tmp_path / "cache").exists() and not Path("somewhere").exists()


def test_pretrain_eval_at_start_and_also_evaluate(tiny_texts):
    tok, train, valid, general_valid = tiny_texts
    result = pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(max_steps=4),
                      also_evaluate={"general": general_valid}, eval_at_start=True, progress=False)
    evals = result.evaluations()
    assert [e["step"] for e in evals] == [0, 2, 4] and all("general_perplexity" in e for e in evals)
    plain = pretrain(EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL), tok, train, valid, tiny_config(max_steps=4),
                     progress=False)
    assert [e["step"] for e in plain.evaluations()] == [2, 4] and "general_loss" not in plain.evaluations()[0]
    # the extra evaluations change nothing in training
    assert same_state(result.model.state_dict(), plain.model.state_dict())


def test_pretrain_cache(tiny_texts, tmp_path, monkeypatch):
    monkeypatch.setenv("MLM_LESSONS_CACHE", str(tmp_path))
    tok, train, valid, _ = tiny_texts
    config = EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL)
    first = pretrain(config, tok, train, valid, tiny_config(max_steps=4), cache=True, progress=False)
    second = pretrain(config, tok, train, valid, tiny_config(max_steps=4), cache=True, progress=False)
    assert first.cached is False and second.cached is True
    assert first.out_dir == second.out_dir and first.out_dir.parent == tmp_path / "runs"
    # the key of the configuration as trained: stamped with the tokenizer's vocabulary
    assert first.model.config == config.for_vocabulary(tok) and second.model.config == first.model.config
    assert first.out_dir.name == run_cache_key(config.for_vocabulary(tok), tok, train, valid, tiny_config(max_steps=4), "cpu", also_evaluate={},
                                               patience=None, min_delta=0.0, eval_at_start=False, world=1, seed_offset=0)
    assert same_state(first.model.state_dict(), second.model.state_dict())
    assert second.history == first.history == json.loads((first.out_dir / "metrics.json").read_text())
    other_seed = pretrain(config, tok, train, valid, tiny_config(max_steps=4, seed=2), cache=True, progress=False)
    assert other_seed.cached is False and other_seed.out_dir != first.out_dir
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted([first.out_dir.name, other_seed.out_dir.name])


def test_dapt_cache_loads_into_a_copy(tiny_texts, tmp_path, monkeypatch):
    monkeypatch.setenv("MLM_LESSONS_CACHE", str(tmp_path))
    tok, train, valid, general_valid = tiny_texts
    model = tiny_model(tok.vocab_size)
    before = state_of(model)
    runs = [dapt(model, tok, train, valid, general_valid, tiny_config(max_steps=4), patience=1, min_delta=1e9, cache=True,
                 progress=False) for _ in range(2)]
    assert [r.cached for r in runs] == [False, True]
    assert [(r.best_step, r.stopped_at) for r in runs] == [(0, 2), (0, 2)]
    assert runs[0].history == runs[1].history and same_state(runs[1].model.state_dict(), before)
    assert same_state(state_of(model), before)


def test_run_cache_key():
    tok, train, valid = tiny_tokenizer_and_texts(n_train=20, n_valid=4)
    config = EncoderConfig(vocab_size=tok.vocab_size, **TINY_MODEL)
    key = run_cache_key(config, tok, train, valid, tiny_config())
    assert key == run_cache_key(config, tok, list(train), list(valid), tiny_config())  # stable
    # how the device was asked for does not matter, which device runs it does
    assert run_cache_key(config, tok, train, valid, tiny_config(device="auto"), "cpu") == key
    assert run_cache_key(config, tok, train, valid, tiny_config(), "cuda") != key
    assert len(key) == 20
    # a CPU run with another number of threads sums in another order (other weights, measured in
    # benchmarks/RESULTS.md): another run; a GPU run's key does not depend on the CPU's threads
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert run_cache_key(config, tok, train, valid, tiny_config()) != key
        assert run_cache_key(config, tok, train, valid, tiny_config(), "cuda") == run_cache_key(
            config, tok, train, valid, tiny_config(device="cuda"), "cuda")
        cuda_more = run_cache_key(config, tok, train, valid, tiny_config(), "cuda")
    finally:
        torch.set_num_threads(threads)
    assert run_cache_key(config, tok, train, valid, tiny_config(), "cuda") == cuda_more
    different = [
        run_cache_key(config, tok, train, valid, tiny_config(seed=2)),
        run_cache_key(config, tok, train, valid, tiny_config(lr=1e-4)),
        run_cache_key(EncoderConfig(vocab_size=tok.vocab_size, **{**TINY_MODEL, "d_ff": 32}), tok, train, valid, tiny_config()),
        run_cache_key(config, tok, train[:-1], valid, tiny_config()),
        run_cache_key(config, tok, train, valid[::-1], tiny_config()),
        run_cache_key(config, mlm.tokenizer_from_vocab(list(reversed(WORDS + ["."]))), train, valid, tiny_config()),
        run_cache_key(config, tok, train, valid, tiny_config(), patience=2),
        run_cache_key(config, tok, train, valid, tiny_config(), also_evaluate={"general": valid}),
        run_cache_key(tiny_model(tok.vocab_size, seed=0), tok, train, valid, tiny_config()),
        run_cache_key(tiny_model(tok.vocab_size, seed=1), tok, train, valid, tiny_config()),
    ]
    assert len({key, *different}) == len(different) + 1
    assert run_cache_key(config, tok, train, valid, tiny_config(), also_evaluate={"general": valid}) != run_cache_key(
        config, tok, train, valid, tiny_config(), also_evaluate={"general": train})


def test_word_frequencies_feed_the_overlap():
    a = word_frequencies(["The tensor's gradient, the TENSOR."])
    assert a == Counter({"the": 2, "tensor's": 1, "gradient": 1, "tensor": 1})
    assert top_words(a, 3) == ["gradient", "tensor", "tensor's"]


ROOT = Path(__file__).resolve().parents[1]


def test_fill_mask_probes_are_new_sentences_with_one_single_piece_answer(corpora, general_tok):
    lines = (ROOT / "data" / "fill_mask_probes.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence\tanswer"
    probes = [line.split("\t") for line in lines[1:] if line.strip()]
    assert len(probes) >= 10
    domain = "\n".join(d.text.lower() for d in corpora["pytorch-docs"].documents)
    for sentence, answer in probes:
        assert general_tok.encode(sentence).count(general_tok.mask_id) == 1, sentence
        assert general_tok.tokenize(answer) == [answer], f"{answer!r} must be one piece of the general tokenizer"
        assert sentence.replace("[MASK]", answer).lower() not in domain, f"probe copied from the corpus: {sentence}"


def test_paper_numbers_file_is_complete():
    paper = json.loads((ROOT / "data" / "dapt_paper.json").read_text(encoding="utf-8"))
    assert "2004.10964" in paper["source"]
    assert [r["domain"] for r in paper["mlm_loss"]["rows"]] == ["BioMed", "CS", "News", "Reviews"]
    rows = paper["finetuning"]["rows"]
    assert len(rows) == 8 and all(len(r[k]) == 2 for r in rows for k in ("roberta", "dapt", "not_dapt"))
