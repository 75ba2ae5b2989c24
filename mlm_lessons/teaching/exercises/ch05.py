"""Chapter 5, pretraining: the checkers of its exercises."""

from __future__ import annotations

from .registry import register, call_answer, name_mistake, as_list


@register(
    "05-schedule",
    5,
    "Write lr_factor(step, warmup, total): (step + 1) / warmup during the warm-up, then a linear "
    "decay that reaches 0 at step total.",
)
def _check_schedule(answer) -> tuple[bool, str]:
    from functools import partial

    from ...engine import lr_factor

    for warmup, total in ((10, 100), (1, 7), (50, 60)):
        want = partial(lr_factor, warmup_steps=warmup, total_steps=total)
        for step in sorted({0, warmup - 1, warmup, (warmup + total) // 2, total - 1, total}):
            got = call_answer(answer, step, warmup, total)
            if not isinstance(got, (int, float)) or abs(got - want(step)) > 1e-9:
                hint = name_mistake(got, [
                    (step / warmup, "the warm-up starts at 1 / warmup, not 0: use (step + 1) / warmup"),
                    (1.0, "no warm-up: over the first warmup steps the factor climbs from 1 / warmup to 1"),
                ] if step < warmup else [
                    ((step + 1) / warmup, "the peak is 1.0 at step warmup: the warm-up covers steps 0 to warmup - 1"),
                    (1.0, "after the warm-up the factor must fall linearly to 0 at step total"),
                    (1 - step / total, "the decay starts at step warmup: 1 - (step - warmup) / (total - warmup)"),
                    (1 - (step - warmup) / total, "divide by the decay's length, total - warmup, so that it reaches 0 at step total"),
                ], lambda g, w: abs(g - w) < 1e-9)
                return False, f"lr_factor({step}, {warmup}, {total}) returned {got!r}, expected {want(step):.4f}{hint}"
    return True, "right during warm-up, at the peak, in the decay and at the end"


@register(
    "05-no-decay",
    5,
    "Write no_decay_names(model): the sorted names of the parameters that get no weight decay "
    "(biases and LayerNorm parameters: those with fewer than two dimensions).",
)
def _check_no_decay(answer) -> tuple[bool, str]:
    from ...model import EncoderConfig, MaskedLM

    for norm in ("pre", "post"):
        model = MaskedLM(EncoderConfig(vocab_size=50, max_len=8, d_model=16, n_layers=2, n_heads=2, d_ff=32, norm=norm))
        want = sorted(n for n, p in model.named_parameters() if p.dim() < 2)
        got = as_list(call_answer(answer, model))
        if got != want:
            shape = {n: p.dim() for n, p in model.named_parameters()}
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            parts = []
            if missing:
                hint = " (LayerNorm weights are 1-D too)" if any(n.endswith("weight") for n in missing) else ""
                parts.append(f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''}{hint}")
            if extra:
                hint = " (weight matrices and embeddings, 2-D, do get weight decay)" if any(shape.get(n, 0) >= 2 for n in extra) else ""
                parts.append(f"should not list {extra[:4]}{' ...' if len(extra) > 4 else ''}{hint}")
            if not parts:
                parts.append("the right names, but the list must be sorted" if sorted(got) == want else "each name once")
            return False, f"norm={norm!r}: " + "; ".join(parts)
    return True, "right for a pre-LN and a post-LN model"


@register(
    "05-mfu",
    5,
    "Write mfu(flops_per_token, tokens_per_second, peak_flops): the share of the device's peak "
    "that the model's own FLOPs reach.",
)
def _check_mfu(answer) -> tuple[bool, str]:
    import math

    cases = [((2e9, 150_000, 989e12), 2e9 * 150_000 / 989e12), ((1.2e7, 1e4, 6.5e13), 1.2e7 * 1e4 / 6.5e13)]
    for args, want in cases:
        got = call_answer(answer, *args)
        if not isinstance(got, (int, float)) or abs(got - want) > 1e-12:
            _, tokens, peak = args
            hint = name_mistake(got, [
                (tokens / peak, "multiply tokens/s by flops_per_token: MFU compares FLOP/s with FLOP/s"),
                (100 * want, "return a share (0.303), not a percent"),
                (1 / want, "that is peak / achieved: MFU is achieved FLOP/s / peak FLOP/s"),
                (3 * want, "flops_per_token already counts the training step (forward and backward): do not multiply it by 3"),
                (6 * want, "flops_per_token already counts the training step: do not multiply it by 6"),
            ], lambda g, w: math.isclose(g, w, rel_tol=1e-9))
            return False, f"mfu{args} returned {got!r}, expected {want:.4f}{hint}"
    return True, "right (and 2 GFLOP/token at 150k tokens/s on an H100 is an MFU of 30.3%)"


# -- chapter 7 ------------------------------------------------------------------------------
