"""Masking: invariants (hypothesis), statistics, the Hugging Face reference, collators, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mlm_lessons as mlm
from mlm_lessons.masking import Fate, MaskingConfig, mask_tokens, mask_tokens_explained, num_to_select, pad_examples, span_lengths

SPECIALS = frozenset(range(5))  # [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4


@st.composite
def batches(draw, whole_words: bool = False):
    vocab = draw(st.integers(8, 60))
    batch = draw(st.integers(1, 6))
    length = draw(st.integers(2, 40))
    rows, word_ids = [], []
    for _ in range(batch):
        n = draw(st.integers(0, length - 2))
        body = draw(st.lists(st.integers(5, vocab - 1), min_size=n, max_size=n))
        if draw(st.booleans()) and body:  # an [UNK] in the text is special too: never selected
            body[draw(st.integers(0, len(body) - 1))] = 1
        rows.append([2] + body + [3] + [0] * (length - n - 2))
        words, w = [], -1
        for _ in body:
            if w < 0 or draw(st.integers(0, 2)) == 0:  # a new word starts, else a continuation piece
                w += 1
            words.append(w)
        word_ids.append([None] + words + [None] * (length - n - 1))
    cuts = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2)))
    config = MaskingConfig(
        mask_ratio=draw(st.floats(0.01, 1.0)),
        p_mask=cuts[0], p_random=cuts[1] - cuts[0], p_keep=1 - cuts[1],
        selection=draw(st.sampled_from(["exact", "bernoulli"])),
        whole_word=whole_words,
    )
    return torch.tensor(rows, dtype=torch.long), word_ids, vocab, config, draw(st.integers(0, 2**31))


def run(ids, config, vocab, seed, word_ids=None):
    gen = torch.Generator().manual_seed(seed)
    return mask_tokens_explained(ids, config, mask_token_id=4, vocab_size=vocab, special_ids=SPECIALS,
                                 generator=gen, word_ids=word_ids)


@settings(max_examples=300, deadline=None)
@given(batches())
def test_masking_invariants(case):
    ids, _, vocab, config, seed = case
    before = ids.clone()
    out = run(ids, config, vocab, seed)
    special = torch.isin(ids, torch.tensor(sorted(SPECIALS)))
    selected = out.labels != mlm.IGNORE_INDEX
    assert torch.equal(ids, before), "the input tensor is not modified"
    assert not (selected & special).any(), "no special position is ever selected"
    assert torch.equal(selected, out.fate != Fate.UNTOUCHED)
    assert torch.equal(out.labels[selected], ids[selected])
    assert torch.equal(out.inputs[~selected], ids[~selected]), "unselected inputs are unchanged"
    assert (out.inputs[out.fate == Fate.MASKED] == 4).all()
    assert torch.equal(out.inputs[out.fate == Fate.KEPT], ids[out.fate == Fate.KEPT])
    randoms = out.inputs[out.fate == Fate.RANDOM]
    assert not torch.isin(randoms, torch.tensor(sorted(SPECIALS))).any(), "random tokens are never special"
    assert ((randoms >= 0) & (randoms < vocab)).all()
    if config.selection == "exact":
        eligible = (~special).sum(1).tolist()
        assert selected.sum(1).tolist() == [num_to_select(n, config.mask_ratio) for n in eligible]
    again = run(ids, config, vocab, seed)
    assert torch.equal(again.inputs, out.inputs) and torch.equal(again.labels, out.labels)


@settings(max_examples=200, deadline=None)
@given(batches(whole_words=True))
def test_whole_word_masking_takes_all_pieces_of_a_word(case):
    ids, word_ids, vocab, config, seed = case
    out = run(ids, config, vocab, seed, word_ids)
    special = torch.isin(ids, torch.tensor(sorted(SPECIALS)))
    selected = out.labels != mlm.IGNORE_INDEX
    assert not (selected & special).any()
    for b, row in enumerate(word_ids):
        chosen, words = {}, set()
        for t, w in enumerate(row):
            if w is None or special[b, t]:
                continue
            words.add(w)
            chosen.setdefault(w, set()).add(bool(selected[b, t]))
        assert all(len(v) == 1 for v in chosen.values()), "a word is selected whole or not at all"
        if config.selection == "exact":
            assert sum(v == {True} for v in chosen.values()) == num_to_select(len(words), config.mask_ratio)


@settings(max_examples=300, deadline=None)
@given(batches(whole_words=True), st.sampled_from([1.0, 0.5, 0.2]), st.integers(1, 10))
def test_span_masking_fills_the_piece_budget_with_whole_words(case, span_p, max_span):
    ids, word_ids, vocab, config, seed = case
    config = MaskingConfig(mask_ratio=config.mask_ratio, p_mask=config.p_mask, p_random=config.p_random,
                           p_keep=config.p_keep, whole_word=True, span_p=span_p, max_span=max_span)
    out = run(ids, config, vocab, seed, word_ids)
    special = torch.isin(ids, torch.tensor(sorted(SPECIALS)))
    selected = out.labels != mlm.IGNORE_INDEX
    assert not (selected & special).any(), "no special position is ever selected"
    for b, row in enumerate(word_ids):
        pieces, chosen = {}, {}
        for t, w in enumerate(row):
            if w is None or special[b, t]:
                continue
            pieces[w] = pieces.get(w, 0) + 1
            chosen.setdefault(w, set()).add(bool(selected[b, t]))
        assert all(len(v) == 1 for v in chosen.values()), "a word is selected whole or not at all"
        budget = num_to_select(sum(pieces.values()), config.mask_ratio)
        used = sum(n for w, n in pieces.items() if chosen[w] == {True})
        assert used <= budget, "never more pieces than the budget"
        left = budget - used
        assert all(n > left for w, n in pieces.items() if chosen[w] == {False}), "no unselected word fits what is left"
    again = run(ids, config, vocab, seed, word_ids)
    assert torch.equal(again.inputs, out.inputs) and torch.equal(again.labels, out.labels)


def test_span_lengths_follow_spanberts_distribution():
    # SpanBERT (Joshi et al. 2020, section 3.1): Geo(p = 0.2) restricted to 1 … 10 words, "a mean span length of 3.8"
    draws = torch.rand(200_000, generator=torch.Generator().manual_seed(0))
    lengths = span_lengths(draws, 0.2, 10)
    assert lengths.min() == 1 and lengths.max() == 10
    weights = [0.2 * 0.8 ** (k - 1) for k in range(1, 11)]
    probs = [w / sum(weights) for w in weights]
    exact = sum(k * p for k, p in zip(range(1, 11), probs))
    assert exact == pytest.approx(3.8, abs=0.05)
    assert float(lengths.double().mean()) == pytest.approx(exact, abs=0.02)
    for k in (1, 2, 5, 10):
        assert float((lengths == k).double().mean()) == pytest.approx(probs[k - 1], abs=0.005)
    assert (span_lengths(draws, 1.0, 10) == 1).all()


def test_spans_are_contiguous_runs_of_words_on_real_text(general_tok, corpora):
    examples = general_tok.encode_chunks(corpora["python-docs"].texts("train")[:200], max_length=64)[:64]
    batch = pad_examples(examples, pad_id=general_tok.pad_id)
    runs = {}
    for span_p in (1.0, 0.2):
        config = MaskingConfig(whole_word=True, span_p=span_p)
        out = mask_tokens_explained(batch["input_ids"], config, mask_token_id=general_tok.mask_id, vocab_size=general_tok.vocab_size,
                                    special_ids=general_tok.special_ids, generator=torch.Generator().manual_seed(0),
                                    word_ids=batch["word_ids"])
        eligible = ~torch.isin(batch["input_ids"], torch.tensor(sorted(general_tok.special_ids)))
        budget = [num_to_select(int(n), 0.15) for n in eligible.sum(1)]
        assert sum(out.selected.sum(1).tolist()) >= 0.98 * sum(budget)  # the budget is (nearly) always reached
        # runs of consecutive selected words
        lengths = []
        for b, row in enumerate(batch["word_ids"]):
            words = sorted({w for t, w in enumerate(row) if w is not None and out.selected[b, t]})
            n = 0
            for i, w in enumerate(words):
                n = n + 1 if i and w == words[i - 1] + 1 else 1
                if i == len(words) - 1 or words[i + 1] != w + 1:
                    lengths.append(n)
        runs[span_p] = sum(lengths) / len(lengths)
    assert runs[0.2] > 2 * runs[1.0], f"spans of p = 0.2 are runs of several words: mean runs {runs}"


def test_num_to_select_follows_pythons_round():
    assert [num_to_select(n, 0.15) for n in (0, 1, 3, 10, 20, 30, 100)] == [0, 1, 1, 2, 3, 4, 15]
    assert num_to_select(10, 0.25) == 2  # round(2.5) == 2: halves go to the even neighbour
    assert num_to_select(14, 0.25) == 4  # round(3.5) == 4
    with pytest.raises(ValueError, match="n_eligible must be >= 0"):
        num_to_select(-1, 0.15)


def _big_batch(rows=800, length=160, vocab=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (rows, length), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3
    lengths = torch.randint(length // 2, length, (rows,), generator=g)
    pad = torch.arange(length)[None, :] >= lengths[:, None]
    ids[pad] = 0
    ids[torch.arange(rows), lengths - 1] = 3
    return ids


def _within(observed: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    se = math.sqrt(p * (1 - p) / n)
    return abs(observed / n - p) <= sigmas * se + 1e-12


@pytest.mark.parametrize("selection", ["exact", "bernoulli"])
def test_fate_shares_match_the_config(selection):
    ids = _big_batch()
    config = MaskingConfig(mask_ratio=0.15, p_mask=0.7, p_random=0.2, p_keep=0.1, selection=selection)
    out = run(ids, config, 1000, seed=1)
    counts = out.counts()
    n = counts["[MASK]"] + counts["random"] + counts["kept"]
    assert n >= 10**4
    assert _within(counts["[MASK]"], n, 0.7) and _within(counts["random"], n, 0.2) and _within(counts["kept"], n, 0.1)
    if selection == "bernoulli":
        eligible = int((ids >= 5).sum())
        assert _within(n, eligible, 0.15)


def test_fate_shares_over_a_hundred_thousand_positions():
    selected = {"[MASK]": 0, "random": 0, "kept": 0}
    for seed in range(8):
        counts = run(_big_batch(seed=seed), MaskingConfig(), 1000, seed=seed).counts()
        for k in selected:
            selected[k] += counts[k]
    n = sum(selected.values())
    assert n >= 10**5
    for k, p in (("[MASK]", 0.8), ("random", 0.1), ("kept", 0.1)):
        assert _within(selected[k], n, p), (k, selected[k] / n)


def test_expected_counts_agree_with_the_average_of_many_draws():
    ids = _big_batch(rows=64, length=48)
    config = MaskingConfig(mask_ratio=0.3, selection="bernoulli")
    expected = mlm.expected_counts(ids, config, special_ids=SPECIALS)
    totals = {k: 0 for k in expected}
    for seed in range(50):
        for k, v in run(ids, config, 1000, seed).counts().items():
            totals[k] += v
    for k, v in expected.items():
        assert totals[k] / 50 == pytest.approx(v, rel=0.05), k
    exact = mlm.expected_counts(ids, MaskingConfig(), special_ids=SPECIALS)
    assert exact["[MASK]"] + exact["random"] + exact["kept"] == pytest.approx(
        sum(num_to_select(int(n), 0.15) for n in (ids >= 5).sum(1))
    )


def _needs_collator_options():
    """The collator's seed and replacement shares arrived in transformers 4.50; older ones cannot be compared."""
    import inspect

    transformers = pytest.importorskip("transformers")
    params = inspect.signature(transformers.DataCollatorForLanguageModeling.__init__).parameters
    if "seed" not in params or "mask_replace_prob" not in params:
        pytest.skip(f"transformers {transformers.__version__}'s DataCollatorForLanguageModeling has no seed= or mask_replace_prob=")


def test_bernoulli_rates_agree_with_hugging_face(general_tok, corpora, tmp_path):
    _needs_collator_options()
    transformers = pytest.importorskip("transformers")
    general_tok.save_vocab(tmp_path / "vocab.txt")
    hf_tok = transformers.BertTokenizerFast.from_pretrained(str(tmp_path))
    collator = transformers.DataCollatorForLanguageModeling(tokenizer=hf_tok, mlm_probability=0.15, seed=0)
    batch = general_tok.encode_batch(corpora["python-docs"].texts("train")[:1500], max_length=128)
    ids = batch.input_ids
    special = torch.isin(ids, torch.tensor(sorted(general_tok.special_ids)))
    hf_inputs, hf_labels = collator.torch_mask_tokens(ids.clone(), special_tokens_mask=special.long())
    config = MaskingConfig(selection="bernoulli")
    ours_inputs, ours_labels = mask_tokens(ids, config, mask_token_id=4, vocab_size=general_tok.vocab_size,
                                           special_ids=general_tok.special_ids, generator=torch.Generator().manual_seed(0))

    def rates(inputs, labels):
        sel = labels != -100
        n = int(sel.sum())
        masked = int((inputs[sel] == general_tok.mask_id).sum())
        changed = int(((inputs[sel] != ids[sel]) & (inputs[sel] != general_tok.mask_id)).sum())
        return n, masked, changed

    eligible = int((~special).sum())
    (n_hf, m_hf, r_hf), (n_us, m_us, r_us) = rates(hf_inputs, hf_labels), rates(ours_inputs, ours_labels)
    assert not (hf_labels != -100)[special].any()

    def close(a, na, b, nb):  # two proportions within 5 combined standard errors
        p = (a + b) / (na + nb)
        return abs(a / na - b / nb) <= 5 * math.sqrt(p * (1 - p) * (1 / na + 1 / nb))

    assert close(n_hf, eligible, n_us, eligible), (n_hf / eligible, n_us / eligible)
    assert close(m_hf, n_hf, m_us, n_us) and close(r_hf, n_hf, r_us, n_us)


def test_hugging_face_can_draw_special_tokens_we_do_not(tmp_path):
    """A known issue of DataCollatorForLanguageModeling: random replacements may be [PAD] or [CLS]."""
    _needs_collator_options()
    transformers = pytest.importorskip("transformers")
    tok = mlm.tokenizer_from_vocab(["a", "b", "c", "d", "e"])  # 5 specials + 5 pieces: specials are half
    tok.save_vocab(tmp_path / "vocab.txt")
    hf_tok = transformers.BertTokenizerFast.from_pretrained(str(tmp_path))
    collator = transformers.DataCollatorForLanguageModeling(
        tokenizer=hf_tok, mlm_probability=0.5, mask_replace_prob=0.0, random_replace_prob=1.0, seed=0
    )
    ids = torch.tensor([[2] + [5, 6, 7, 8, 9] * 20 + [3]] * 50)
    special = torch.isin(ids, torch.tensor(sorted(tok.special_ids))).long()
    hf_inputs, hf_labels = collator.torch_mask_tokens(ids.clone(), special_tokens_mask=special)
    assert (hf_inputs[hf_labels != -100] < 5).any()
    config = MaskingConfig(mask_ratio=0.5, p_mask=0.0, p_random=1.0, p_keep=0.0)
    ours, labels = mask_tokens(ids, config, mask_token_id=4, vocab_size=10, special_ids=tok.special_ids)
    assert not (ours[labels != -100] < 5).any()


def test_whole_word_masking_on_real_pieces(general_tok):
    batch = general_tok.encode_batch(["backpropagation through the autograd graph"], max_length=32)
    config = MaskingConfig(mask_ratio=0.25, whole_word=True)
    for seed in range(20):
        out = mask_tokens_explained(batch.input_ids, config, mask_token_id=4, vocab_size=general_tok.vocab_size,
                                    special_ids=general_tok.special_ids, generator=torch.Generator().manual_seed(seed),
                                    word_ids=batch.word_ids)
        sel = (out.labels[0] != -100).tolist()
        by_word = {}
        for t, w in enumerate(batch.word_ids[0]):
            if w is not None:
                by_word.setdefault(w, set()).add(sel[t])
        assert all(len(v) == 1 for v in by_word.values())
        assert sum(v == {True} for v in by_word.values()) == 1  # round(0.25 * 4 words) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mask_ratio": 0.0}, r"mask_ratio must be in \(0, 1\], got 0.0"),
        ({"mask_ratio": 1.5}, r"mask_ratio must be in \(0, 1\], got 1.5"),
        ({"p_mask": -0.1, "p_random": 0.6, "p_keep": 0.5}, r"p_mask must be in \[0, 1\], got -0.1"),
        ({"p_mask": 0.8, "p_random": 0.1, "p_keep": 0.2}, r"must equal 1, got 0.8 \+ 0.1 \+ 0.2 = 1.1"),
        ({"selection": "random"}, r"selection must be 'exact' or 'bernoulli', got 'random'"),
        ({"whole_word": "yes"}, r"whole_word must be True or False, got 'yes'"),
        ({"span_p": 0.2}, r"span_p selects spans of whole words: set whole_word=True with it"),
        ({"span_p": 0.0, "whole_word": True}, r"span_p must be in \(0, 1\] .* got 0.0"),
        ({"span_p": 0.2, "whole_word": True, "selection": "bernoulli"}, r"span_p fills a budget of pieces: it needs selection='exact'"),
        ({"max_span": 0}, r"max_span must be a positive int .* got 0"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskingConfig(**kwargs)


def test_config_accepts_sums_within_tolerance():
    MaskingConfig(p_mask=0.7, p_random=0.2, p_keep=0.1)  # 0.7 + 0.2 + 0.1 == 0.9999999999999999


@pytest.mark.parametrize(
    "ids, kwargs, message",
    [
        ([[2, 5, 3]], {}, "must be a torch.LongTensor"),
        (torch.tensor([[2.0, 5.0]]), {}, "must be a LongTensor"),
        (torch.tensor([2, 5, 3]), {}, r"shape \[batch, length\], got shape \(3,\)"),
        (torch.tensor([[2, 50, 3]]), {}, r"hold id 50, outside the vocabulary \[0, 20\)"),
        (torch.tensor([[2, 5, 3]]), {"mask_token_id": 20}, r"mask_token_id must be an id in \[0, 20\), got 20"),
        (torch.tensor([[2, 5, 3]]), {"special_ids": range(20)}, "all 20 ids are special"),
        (torch.tensor([[2, 5, 3]]), {"special_ids": [0, 25]}, r"special id 25 is outside"),
        (torch.tensor([[2, 5, 3]]), {"config": MaskingConfig(whole_word=True)}, "whole_word=True needs word_ids"),
        (torch.tensor([[2, 5, 3]]), {"config": MaskingConfig(whole_word=True), "word_ids": [[None, 0, None], [None]]},
         "word_ids has 2 sequences, input_ids has 1"),
        (torch.tensor([[2, 5, 3]]), {"config": MaskingConfig(whole_word=True), "word_ids": [[None, -3, None]]},
         "must hold non-negative ints or None"),
    ],
)
def test_bad_input(ids, kwargs, message):
    args = {"config": MaskingConfig(), "mask_token_id": 4, "vocab_size": 20, "special_ids": SPECIALS, **kwargs}
    config = args.pop("config")
    with pytest.raises(ValueError, match=message):
        mask_tokens(ids, config, **args)


def test_dynamic_collator_masks_every_batch_afresh(general_tok, corpora):
    texts = corpora["python-docs"].texts("train")[:16]
    collate = mlm.MLMCollator(general_tok, generator=torch.Generator().manual_seed(0), max_length=64, pad_to_multiple_of=8)
    first, second = collate(texts), collate(texts)
    assert first["input_ids"].shape[1] % 8 == 0 and first["input_ids"].shape[1] <= 64
    assert set(first) == {"input_ids", "attention_mask", "labels"}
    assert not torch.equal(first["labels"], second["labels"])
    assert torch.equal(first["attention_mask"], second["attention_mask"])
    assert ((first["labels"] != -100) <= first["attention_mask"].bool()).all()
    loader = torch.utils.data.DataLoader(general_tok.encode_examples(texts, max_length=64), batch_size=8, collate_fn=collate)
    assert [b["input_ids"].shape[0] for b in loader] == [8, 8]


def test_static_masking_is_fixed_once(general_tok, corpora):
    examples = general_tok.encode_examples(corpora["python-docs"].texts("train")[:8], max_length=64)
    static = mlm.mask_once(examples, general_tok, copies=3, generator=torch.Generator().manual_seed(0))
    assert len(static) == 24
    collate = mlm.MLMCollator(general_tok)
    a, b = collate(static[:8]), collate(static[:8])
    assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["input_ids"], b["input_ids"])
    assert (a["labels"][a["attention_mask"] == 0] == -100).all()
    assert not torch.equal(collate(static[:8])["labels"], collate(static[8:16])["labels"])  # the copies differ
    with pytest.raises(ValueError, match="copies must be a positive int, got 0"):
        mlm.mask_once(examples, general_tok, copies=0)


def test_collator_bad_input(general_tok):
    collate = mlm.MLMCollator(general_tok)
    with pytest.raises(ValueError, match="the batch is empty"):
        collate([])
    with pytest.raises(ValueError, match="must all be strings or all dicts"):
        collate(["text", 3])
    with pytest.raises(ValueError, match="example 0 has no 'input_ids'"):
        collate([{"ids": [2, 3]}])


def test_packing_keeps_every_token_in_order_and_words_apart(general_tok, corpora):
    chunks = general_tok.encode_chunks(corpora["python-docs"].texts("train")[:200], max_length=64)
    rows = mlm.pack_examples(chunks, max_length=64)
    assert len(rows) < len(chunks)
    assert all(len(r["input_ids"]) <= 64 for r in rows)
    # nothing lost, nothing reordered: the rows read back as the chunks, in order
    assert [t for r in rows for t in r["input_ids"]] == [t for c in chunks for t in c["input_ids"]]
    # a row is cut only where the next chunk would not fit
    starts = [0]
    for r in rows:
        starts.append(starts[-1] + sum(1 for t in r["input_ids"] if t == general_tok.cls_id))
    for r, nxt in zip(rows, starts[1:-1]):
        assert len(r["input_ids"]) + len(chunks[nxt]["input_ids"]) > 64
    # whole-word masking still sees the same words: pieces of one word share an id, words of
    # different chunks never do
    for r in rows:
        ids = [w for w in r["word_ids"] if w is not None]
        assert ids == sorted(ids)
        segments, current = [], []
        for t, w in zip(r["input_ids"], r["word_ids"]):
            if t == general_tok.cls_id:
                current = []
                segments.append(current)
            if w is not None:
                current.append(w)
        for a, b in zip(segments, segments[1:]):
            if a and b:
                assert max(a) < min(b)
    # the packed rows mask and pad like any examples
    batch = mlm.MLMCollator(general_tok, mlm.MaskingConfig(whole_word=True), generator=torch.Generator().manual_seed(0))(rows[:8])
    assert batch["input_ids"].shape == (8, max(len(r["input_ids"]) for r in rows[:8]))


def test_packing_carries_labels_and_fates_and_rejects_long_examples():
    examples = [{"input_ids": [2, 7, 3], "labels": [-100, 7, -100], "fate": [0, 1, 0]},
                {"input_ids": [2, 8, 9, 3], "labels": [-100, -100, 9, -100], "fate": [0, 0, 3, 0]},
                {"input_ids": [2, 5, 3], "labels": [-100, -100, -100], "fate": [0, 0, 0]}]
    rows = mlm.pack_examples(examples, max_length=7)
    assert rows == [{"input_ids": [2, 7, 3, 2, 8, 9, 3], "labels": [-100, 7, -100, -100, -100, 9, -100], "fate": [0, 1, 0, 0, 0, 3, 0]},
                    {"input_ids": [2, 5, 3], "labels": [-100, -100, -100], "fate": [0, 0, 0]}]
    assert mlm.pack_examples([], max_length=7) == []
    with pytest.raises(ValueError, match="example 1 has 4 tokens, more than max_length=3"):
        mlm.pack_examples(examples, max_length=3)
    with pytest.raises(ValueError, match="max_length must be a positive int, got 0"):
        mlm.pack_examples(examples, max_length=0)
