"""Chapter 9, what MLM cannot do: the checkers of its exercises."""

from __future__ import annotations

from .registry import register, call_answer, name_mistake, as_number


@register(
    "09-remask",
    9,
    "Write remask_counts(n, iterations): Mask-Predict's schedule, the number of the n generated "
    "pieces masked again after iteration t = 1 … T: floor(n · (T − t) / T).",
)
def _check_remask(answer) -> tuple[bool, str]:
    import math

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
