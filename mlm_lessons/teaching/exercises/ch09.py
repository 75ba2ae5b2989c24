"""Chapter 9, what MLM cannot do: the checkers of its exercises."""

from __future__ import annotations

import math

from .registry import register, call_answer, name_mistake, as_number, judge_choice, judge_prediction

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


@register(
    "09-remask",
    9,
    "Write remask_counts(n, iterations): Mask-Predict's schedule, the number of the n generated "
    "pieces masked again after iteration t = 1 … T: floor(n · (T − t) / T).",
)
def _check_remask(answer) -> tuple[bool, str]:
    from ...generation import remask_schedule

    cases = [((n, T), remask_schedule(n, T)) for n, T in ((10, 4), (7, 3), (12, 10), (5, 1), (1, 3), (0, 2), (30, 7))]
    for (n, T), want in cases:
        got = call_answer(answer, n, T)
        try:
            got = [int(x) for x in got]
        except (TypeError, ValueError):
            return False, f"remask_counts({n}, {T}) should return a list of {T} ints, got {got!r:.80}"
        if got != want:
            hint = name_mistake(got, [
                ([n * (T - t) // T for t in range(T)], "the list starts after the first iteration (t = 1), and ends with 0 after the last"),
                ([round(n * (T - t) / T) for t in range(1, T + 1)], "round down (floor), as Mask-Predict does, not to the nearest"),
                ([math.ceil(n * (T - t) / T) for t in range(1, T + 1)], "round down (floor), not up"),
                ([n * t // T for t in range(1, T + 1)], "the count falls with t: n · (T − t) / T, not n · t / T"),
            ], lambda g, w: g == w)
            return False, f"remask_counts({n}, {T}) returned {got}, expected {want}{hint}"
    return True, f"right on {len(cases)} (n, T) pairs"


@register(
    "09-next-token",
    9,
    "Write causal_labels(input_ids, attention_mask) for a left-to-right model: at position t the id "
    "at t + 1, and -100 at the last position and wherever position t + 1 is padding.",
)
def _check_next_token(answer) -> tuple[bool, str]:
    import torch

    from ...masking import next_token_labels

    ids = torch.tensor([[2, 11, 12, 13, 3, 0, 0], [2, 21, 22, 23, 24, 25, 3], [2, 31, 3, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    want = next_token_labels(ids, mask)
    before = ids.clone()
    got = call_answer(answer, ids, mask)
    if not torch.equal(ids, before):
        return False, "your function modified input_ids; build the labels in a new tensor"
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return False, f"return a tensor of shape {tuple(want.shape)} (one label per position), got {got!r:.80}"
    if torch.equal(got, want):
        return True, "right: the next id everywhere it exists, -100 at the end and before padding"
    shifted = torch.full_like(ids, -100)
    shifted[:, :-1] = ids[:, 1:]
    right_shift = torch.full_like(ids, -100)
    right_shift[:, 1:] = ids[:, :-1]
    hint = name_mistake(got, [
        (ids, "those are the inputs themselves: a causal model predicts the NEXT id, so shift left by one"),
        (torch.where(mask.bool(), ids, torch.full_like(ids, -100)), "those are the inputs themselves: shift left by one"),
        (right_shift, "that shifts the wrong way: position t is labelled with the id at t + 1, not t - 1"),
        (shifted, "positions followed by padding must get -100, not the [PAD] id"),
    ], lambda g, w: torch.equal(g, w))
    return False, f"for input_ids {ids.tolist()} expected {want.tolist()}, got {got.tolist()}{hint}"


@register(
    "09-pll",
    9,
    "Write pll(model, ids, mask_id): the pseudo-log-likelihood of one sequence [CLS] … [SEP] (a list "
    "of ids): mask each piece between [CLS] and [SEP] in turn, and add up the log-probability the "
    "model gives the true piece there (model(batch).logits is [B, T, V]).",
)
def _check_pll(answer) -> tuple[bool, str]:
    import torch

    from ...model import EncoderConfig, MaskedLM
    from ...scoring import pll_of_ids

    torch.manual_seed(0)
    model = MaskedLM(EncoderConfig(vocab_size=40, max_len=16, d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0)).eval()
    with torch.no_grad():  # a model with confident, context-dependent predictions
        model.encoder.tok_emb.weight.mul_(40)
    mask_id = 4
    sequences = [[2, 10, 11, 12, 3], [2, 20, 21, 22, 23, 24, 25, 3], [2, 30, 3]]
    for ids in sequences:
        want = pll_of_ids(model, [ids], mask_id=mask_id, pad_id=0)[0]
        got = as_number(call_answer(answer, model, list(ids), mask_id))
        if abs(got - want) > 1e-4:
            with torch.no_grad():
                logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
                inner = [logp[t, ids[t]].item() for t in range(1, len(ids) - 1)]
                everywhere = [logp[t, ids[t]].item() for t in range(len(ids))]
                masked_all = []
                for t in range(len(ids)):
                    x = torch.tensor([ids])
                    x[0, t] = mask_id
                    masked_all.append(model(x).logits[0, t].log_softmax(-1)[ids[t]].item())
            n = len(ids) - 2
            hint = name_mistake(got, [
                (sum(inner), "nothing was masked: the model saw the piece it had to predict; mask position t before scoring it"),
                (sum(everywhere), "nothing was masked, and [CLS]/[SEP] were scored too"),
                (sum(masked_all), "[CLS] and [SEP] are not scored: only the pieces between them"),
                (want / n, "that is the mean; the PLL is the sum over the pieces"),
                (-want, "the sign is flipped: a PLL is a sum of log-probabilities, at most 0"),
            ], lambda g, w: abs(g - w) < 1e-4)
            return False, f"pll(model, {ids}) returned {got:.5f}, expected {want:.5f}{hint}"
    return True, f"agrees with pseudo_log_likelihood on {len(sequences)} sequences"


# -- predict, interpret, extend ---------------------------------------------------------------------


def targets_per_sequence(tokenizer, chunks, mask_ratio: float | None = None, *, seed: int = 0) -> float:
    """The mean number of labelled positions per sequence of ``chunks`` (``tokenizer.encode_chunks``):
    a causal model's next-token labels (``mask_ratio=None``), or the positions a masked LM selects
    at ``mask_ratio`` (BERT's exact selection)."""
    import torch

    from ...masking import MaskingConfig, mask_tokens, next_token_labels, pad_examples

    batch = pad_examples([{"input_ids": c["input_ids"]} for c in chunks], pad_id=tokenizer.pad_id)
    if mask_ratio is None:
        labels = next_token_labels(batch["input_ids"], batch["attention_mask"])
    else:
        _, labels = mask_tokens(batch["input_ids"], MaskingConfig(mask_ratio=mask_ratio), mask_token_id=tokenizer.mask_id,
                                vocab_size=tokenizer.vocab_size, special_ids=tokenizer.special_ids,
                                generator=torch.Generator().manual_seed(seed))
    return int((labels != -100).sum()) / len(chunks)


@register(
    "09-predict-targets",
    9,
    "Predict, then run: the causal model learns from every next piece, the masked LM of section 9.1 from 40% of "
    "the pieces. Had the masked LM masked BERT's 15%, how many times as many targets per sequence would the "
    "causal model have?",
)
def _check_predict_targets(answer, *, tokenizer, chunks) -> tuple[bool, str]:
    causal = targets_per_sequence(tokenizer, chunks)
    measured = causal / targets_per_sequence(tokenizer, chunks, 0.15)
    at_40 = causal / targets_per_sequence(tokenizer, chunks, 0.40)
    return judge_prediction(answer, measured, within=0.1, what="a ratio, how many times as many", why=(
        "A causal model is labelled at every position but the last; a masked LM only where it masks, 15% of the pieces "
        "between [CLS] and [SEP]. So the ratio is about 1 / 0.15 ≈ 6.7, a little more because the causal model also "
        f"predicts [SEP] and each sequence's count of masks is rounded. At the chapter's 40% it is {at_40:.1f}: a higher "
        "mask ratio wins back training signals, and ELECTRA (section 9.1) was designed to win back the rest."))


@register(
    "09-interpret-pairs",
    9,
    "Interpret: in section 9.3, two neighbouring masks filled one after the other give a pair seen in the training "
    "text more often than the same two filled in one pass; both pieces are exactly right rarely either way. What "
    "does that show? (a) filling one after the other makes the model better at guessing each piece; (b) the model "
    "memorised the pairs of the validation sentences; (c) in one pass each position gets its own best guess, blind "
    "to the other's, while the right piece predicted given the chosen left one fits it more often; (d) a pair seen "
    "in the training text is the right pair, so filling one after the other is right more often.",
)
def _check_interpret_pairs(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "the left piece is the same both ways – the sequential fill keeps the one-pass choice and predicts only the "
             "right piece again – and getting both pieces right stays rare: what changes is whether the two fit together",
        "b": "the model never trained on the validation sentences, and exactly right pairs are rare; the column asks only "
             "whether the predicted pair occurs anywhere in the training text",
        "c": "the MLM's loss trains each masked position on its own, so it learns P(piece | visible context) per position, "
             "never the joint distribution of the two; conditioning the right piece on the left choice buys back some "
             "of that dependence – what Mask-Predict's passes try, and what a causal model has built in",
        "d": "a pair can be common in the training text and still not be the pair this sentence hid: the column of "
             "pairs exactly right stays low for both ways of filling",
    }, right="c")


def _left_fills(model, tokenizer, gapped) -> list[tuple[list[int], list[int], list[str]]]:
    """For each (text, gap words) of ``gapped``: the prompt's ids, the ids the causal model wrote
    greedily after ``[CLS]`` and the prompt (as many as the gap has words), and the gap words."""
    from ...generation import generate_causal

    out = []
    for text, truth in gapped:
        prompt = text.split("[MASK]")[0].strip()
        written = generate_causal(model, tokenizer, prompt, max_new_tokens=len(truth), temperature=0.0).ids
        out.append((tokenizer.encode(prompt, add_special_tokens=False), written, list(truth)))
    return out


def left_fill_share(model, tokenizer, gapped) -> float:
    """The reference of exercise 9.6: the share of the gap words of ``gapped`` (section 9.2) that a
    causal model, writing greedily after the words before each gap, gets exactly right."""
    fills = _left_fills(model, tokenizer, gapped)
    right = sum(tokenizer.id_to_token(w) == t for p, ids, truth in fills for w, t in zip(ids[1 + len(p):], truth))
    return right / sum(len(truth) for _, _, truth in fills)


@register(
    "09-left-fill",
    9,
    "Extend: write left_fill_share(model, tokenizer, gapped): for each (text, gap words) of section 9.2's gapped "
    "sentences, let the causal model write as many pieces as the gap has words, greedily, after the words before the "
    "gap (generate_causal(model, tokenizer, prompt, max_new_tokens=k, temperature=0.0)), and return the share of all "
    "gap words it gets exactly right.",
)
def _check_left_fill(answer, *, model, tokenizer, gapped) -> tuple[bool, str]:
    fills = _left_fills(model, tokenizer, gapped)
    total = sum(len(truth) for _, _, truth in fills)

    def share(start, per_sentence=False):  # the reference (start = after the prompt) and what known mistakes compute
        hits = [[tokenizer.id_to_token(w) == t for w, t in zip(ids[start(p):], truth)] for p, ids, truth in fills]
        if per_sentence:
            return sum(sum(h) / len(truth) for h, (_, _, truth) in zip(hits, fills)) / len(fills)
        return sum(map(sum, hits)) / total

    want = share(lambda p: 1 + len(p))
    got = as_number(call_answer(answer, model, tokenizer, gapped))
    if not 0 <= got <= 1:
        return False, f"a share lies between 0 and 1, got {got:.3g}"
    if abs(got - want) > 0.02:  # the measurement is not printed: it is what the function should find
        side = "high" if got > want else "low"
        mistakes = [(v, h) for v, h in [
            (share(lambda p: 1), "the prompt's own pieces were compared with the gap words: the written pieces start after "
                                 "[CLS] and the prompt's pieces"),
            (share(lambda p: len(p)), "off by one: the written pieces start after [CLS] and all of the prompt's pieces"),
            (share(lambda p: 1 + len(p), per_sentence=True), "count the gap words of all sentences together, not a mean "
                                                             "of each sentence's share"),
        ] if abs(v - want) > 1e-9]
        hint = name_mistake(got, mistakes, lambda g, w: abs(g - w) < 1e-9)
        if not hint and got == 0:
            hint = (" – a written piece counts when it equals (as tokenizer.id_to_token gives it) the hidden word at the "
                    "same place")
        return False, f"your share, {got:.3f}, is too {side} (more than 0.02 from the package's measurement){hint}"
    # a known answer: when the hidden words are exactly what the model writes, every one of them is right
    echo = []
    for (text, _), (p, ids, _) in zip(gapped, fills):
        own = [tokenizer.id_to_token(w) for w in ids[1 + len(p):]]
        own = own[: own.index(tokenizer.id_to_token(tokenizer.sep_id))] if tokenizer.id_to_token(tokenizer.sep_id) in own else own
        if own:
            before, after = text.split("[MASK]")[0].strip(), text.rsplit("[MASK]", 1)[1].strip()
            echo.append((" ".join([before] + ["[MASK]"] * len(own) + [after]).strip(), own))
    if echo:
        mirrored = as_number(call_answer(answer, model, tokenizer, echo))
        if mirrored != 1:
            return False, (f"on gaps whose hidden words are exactly the pieces the model writes there, your share is "
                           f"{mirrored:.3f}, not 1: write greedily (temperature 0.0), one piece after another after the "
                           f"words before the gap, and compare piece by piece")
    return True, (f"reading only the words before the gap, the causal model gets {got:.1%} of the gap words exactly "
                  f"right; set that beside the masked LM's rows in section 9.2, which read both sides")
