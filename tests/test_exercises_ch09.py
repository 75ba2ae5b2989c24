"""Chapter 9's predict, interpret and extend exercises: right answers pass, wrong ones fail with the
intended hint, and nothing a wrong attempt is told gives the answer away."""

from __future__ import annotations

from pathlib import Path
import sys

import pytest

import mlm_lessons as mlm

sys.path.insert(0, str(Path(__file__).parent))
from exercise_helpers import rejected  # noqa: E402
from tiny_data import confident_model, tiny_tokenizer_and_texts  # noqa: E402




def test_predict_targets(general_tok, corpora):
    from mlm_lessons.teaching.exercises.ch09 import targets_per_sequence

    chunks = general_tok.encode_chunks(corpora["python-docs"].texts("valid"), max_length=64)
    causal = targets_per_sequence(general_tok, chunks)
    masked = targets_per_sequence(general_tok, chunks, mask_ratio=0.15)
    assert masked < 0.2 * causal < causal  # every next piece against 15% of the pieces
    measured = causal / masked
    context = dict(tokenizer=general_tok, chunks=chunks)
    rejected("09-predict-targets", None, "write your answer first", **context)
    ok = mlm.check("09-predict-targets", 1 / 0.15, **context)
    assert ok and f"{measured:.3g}" in ok.message and "1 / 0.15" in ok.message
    rejected("09-predict-targets", causal / targets_per_sequence(general_tok, chunks, mask_ratio=0.4), "too low", **context)
    rejected("09-predict-targets", 15, "too high", **context)
    rejected("09-predict-targets", 1.0, "too low", **context)


def test_interpret_pairs():
    assert mlm.check("09-interpret-pairs", "c")
    assert mlm.check("09-interpret-pairs", "(C)")
    for wrong in "abd":
        result = mlm.check("09-interpret-pairs", wrong)
        assert not result and "(c)" not in result.message and result.message.startswith(f"not ({wrong}):")
    rejected("09-interpret-pairs", None, "write your answer first")


@pytest.fixture(scope="module")
def causal_and_gaps():
    """A confident untrained causal model and gaps of one and of three words; the one-word gaps hide
    exactly the word the model writes there, so some gap words are right and the sentences differ."""
    from mlm_lessons.generation import generate_causal

    tok, _, valid = tiny_tokenizer_and_texts(n_valid=24, seed=3)
    model = confident_model(tok, causal=True, seed=1).eval()
    gapped = []
    for i, text in enumerate(valid):
        words = tok.words(text)
        k = 1 if i % 2 else 3
        prompt = " ".join(words[:3])
        ids = generate_causal(model, tok, prompt, max_new_tokens=k, temperature=0.0).ids
        own = [tok.id_to_token(w) for w in ids[1 + len(tok.encode(prompt, add_special_tokens=False)):]]
        truth = own if k == 1 and own and own != ["[SEP]"] else words[3:3 + k]
        gapped.append((" ".join(words[:3] + ["[MASK]"] * len(truth) + words[3 + k:]), truth))
    return model, tok, gapped


def _fill(model, tok, gapped, *, start=None, per_sentence=False):
    """The share of gap words written right: the solution, or (``start``, ``per_sentence``) a known mistake."""
    from mlm_lessons.generation import generate_causal

    right = total = 0
    shares = []
    for text, truth in gapped:
        prompt = text.split("[MASK]")[0].strip()
        ids = generate_causal(model, tok, prompt, max_new_tokens=len(truth), temperature=0.0).ids
        p = len(tok.encode(prompt, add_special_tokens=False))
        written = ids[(1 + p) if start is None else start(p):]
        hits = sum(tok.id_to_token(w) == t for w, t in zip(written, truth))
        right, total = right + hits, total + len(truth)
        shares.append(hits / len(truth))
    return sum(shares) / len(shares) if per_sentence else right / total


def test_left_fill(causal_and_gaps):
    from mlm_lessons.teaching.exercises.ch09 import left_fill_share

    model, tok, gapped = causal_and_gaps
    context = dict(model=model, tokenizer=tok, gapped=gapped)
    want = left_fill_share(model, tok, gapped)
    per_sentence = _fill(model, tok, gapped, per_sentence=True)
    assert 0.1 < want < 0.9 and abs(per_sentence - want) > 0.05, "the test's gaps tell the mistakes apart"
    ok = mlm.check("09-left-fill", lambda m, t, g: _fill(m, t, g), **context)
    assert ok and f"{want:.1%}" in ok.message
    assert mlm.check("09-left-fill", left_fill_share, **context)
    for wrong, says in [
        (lambda m, t, g: 0.0, "too low"),
        (lambda m, t, g: _fill(m, t, g, per_sentence=True), "not a mean of each sentence's share"),
        (lambda m, t, g: _fill(m, t, g, start=lambda p: 1), "the prompt's own pieces"),
        (lambda m, t, g: 1.5, "a share lies between 0 and 1"),
        (lambda m, t, g: want, "not 1: write greedily"),  # the number alone, whatever the gaps: the known answer fails it
    ]:
        message = rejected("09-left-fill", wrong, says, **context)
        if not says.startswith("not 1"):
            assert f"{want:.3f}" not in message and f"{want:.1%}" not in message, "the number is not told"
    crashing = mlm.check("09-left-fill", lambda m, t, g: 1 / 0, **context)
    assert not crashing and "ZeroDivisionError" in crashing.message
