"""Chapter 5, pretraining: the checkers of its exercises."""

from __future__ import annotations

import math
import random
from functools import partial

from .registry import register, call_answer, name_mistake, as_list, as_number, judge_choice, judge_prediction

# PyTorch, NumPy and the package's modules are imported inside the checkers and helpers below: the registry
# loads every chapter's module, so `check` stays light, and a checker uses what a module holds when it runs.


@register(
    "05-schedule",
    5,
    "Write lr_factor(step, warmup, total): (step + 1) / warmup during the warm-up, then a linear "
    "decay that reaches 0 at step total.",
)
def _check_schedule(answer) -> tuple[bool, str]:
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


# -- predict, interpret, extend ---------------------------------------------------------------------


def labels_per_step(tokenizer, rows, config) -> float:
    """The expected number of labelled positions in one training step: ``config.batch_size`` rows
    drawn from ``rows`` (each ``{"input_ids": [...]}``), each masked with ``config.masking``."""
    from ...masking import expected_counts, pad_examples

    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: pass the rows a batch is drawn from")
    batch = pad_examples([{"input_ids": r["input_ids"]} for r in rows], pad_id=tokenizer.pad_id)
    counts = expected_counts(batch["input_ids"], config.masking, special_ids=tokenizer.special_ids)
    selected = sum(v for k, v in counts.items() if k != "untouched")
    return config.batch_size * selected / len(rows)


def shuffled_evaluation(model, tokenizer, texts, config, seed: int = 0) -> dict:
    """The reference of exercise 5.6: the words of each text shuffled (``text.split()``, one
    ``random.Random(seed)`` for all texts, in order, joined by spaces), masked as the run's
    validation text (:func:`~mlm_lessons.training.eval_batches`) and scored by
    :func:`~mlm_lessons.training.evaluate` (``mask_loss``: the loss at the ``[MASK]`` positions)."""
    import torch

    from ...training import eval_batches, evaluate

    rng = random.Random(seed)
    shuffled = []
    for text in texts:
        words = text.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    return evaluate(model, eval_batches(tokenizer, shuffled, config), torch.device("cpu"))


@register(
    "05-labels-per-step",
    5,
    "Predict, then run: a step of the cpu-small run draws 12 packed rows of up to 64 pieces and selects 40% of "
    "the eligible pieces of each row (not [CLS], [SEP] or padding). How many positions of one step carry a "
    "label, on average?",
)
def _check_labels_per_step(answer, *, tokenizer, rows, config) -> tuple[bool, str]:
    measured = labels_per_step(tokenizer, rows, config)
    return judge_prediction(answer, measured, within=0.1, what="a number of positions", digits=3, why=(
        f"A packed row is not full: it holds about {config.max_length} × (the share of a row that is text, section 5.1) "
        f"pieces, and two of those per chunk are [CLS] and [SEP], which are never selected; nor is padding. "
        f"{config.masking.mask_ratio:.0%} of the remaining pieces of each row are selected, and a step has "
        f"{config.batch_size} rows – fewer labels than {config.masking.mask_ratio:g} × {config.batch_size} × "
        f"{config.max_length}. Of them, {config.masking.p_mask:.0%} show [MASK]; these are the positions the sparse "
        f"head of section 5.8 runs at."))


@register(
    "05-interpret-sparse",
    5,
    "Interpret: in section 5.8 a training step with the head at the labelled positions only is several times "
    "faster than one with the head at every position. Why? (a) the sparse step skips attention at the positions "
    "without a label; (b) the output head – a product with the vocabulary's embedding matrix and a softmax over "
    "every piece – costs more per position than the two encoder layers together, and the sparse step runs it at "
    "the labelled positions only, a small share of all; (c) the sparse step averages its loss over fewer "
    "positions, so its backward pass has less to do; (d) the full step processed a larger batch.",
)
def _check_interpret_sparse(answer) -> tuple[bool, str]:
    return judge_choice(answer, {
        "a": "both steps run the encoder at every position: each labelled position's prediction reads the whole "
             "sequence through attention, so no position can be skipped there – only the output head is",
        "b": "the head multiplies every position's vector by the 8,000 × 128 embedding matrix and normalises over "
             "the whole vocabulary, more arithmetic per position than both encoder layers; with BERT's 15% masking "
             "most positions carry no label, and the sparse step does not compute the head there",
        "c": "both steps compute the same loss, the mean over the same labelled positions (masked_lm_loss skips the "
             "-100 labels), so the same gradient reaches the encoder; what differs is the head's work at positions "
             "whose predictions no loss uses",
        "d": "both steps are timed on the same batch of 32 chunks, `batch`, as medians after a warm-up",
    }, right="b")


@register(
    "05-shuffled-words",
    5,
    "Extend: write shuffled_mask_loss(model, tokenizer, texts, config, seed): shuffle the words of each text "
    "(text.split(), one random.Random(seed) for all texts, in order, joined by spaces), mask them as the run's "
    "validation text (eval_batches(tokenizer, shuffled, config)) and return the model's loss at the [MASK] "
    "positions (evaluate(...)['mask_loss']).",
)
def _check_shuffled_words(answer, *, model, tokenizer, texts, config, unigram=None) -> tuple[bool, str]:
    import torch

    from ...training import eval_batches, evaluate

    texts = list(texts)
    before = list(texts)
    cpu = torch.device("cpu")
    as_is = evaluate(model, eval_batches(tokenizer, texts, config), cpu)["mask_loss"]
    # a text of one word is the same text shuffled: words are shuffled, not characters
    single = [t.split()[0] for t in texts[:64] if t.split()]

    def one_word_kept() -> bool:
        got_single = as_number(call_answer(answer, model, tokenizer, single, config, 0))
        return abs(got_single - evaluate(model, eval_batches(tokenizer, single, config), cpu)["mask_loss"]) < 1e-6

    shuffled = []
    for seed in (0, 1):
        ref = shuffled_evaluation(model, tokenizer, texts, config, seed)
        got = as_number(call_answer(answer, model, tokenizer, texts, config, seed))
        shuffled.append(got)
        if texts != before:
            return False, "your function changed the list `texts`; shuffle a copy of each text's words and leave the list as it is"
        want = ref["mask_loss"]
        if abs(got - want) > 0.05:  # the measurement is not printed: it is what the function should find
            side = "high" if got > want else "low"
            if abs(got - ref["loss"]) < 0.02:
                hint = " – that is the loss over all selected positions; return the loss at the [MASK] positions, evaluate(...)['mask_loss']"
            elif abs(got - as_is) < 0.3 and abs(want - as_is) > 0.6:
                hint = (" – that is about the loss of the texts in order: shuffle the words inside each text (shuffling "
                        "the order of the texts changes little)")
            elif side == "high" and not one_word_kept():
                hint = (" – a text of one word must stay as it is, and with your function it does not: shuffle the words "
                        "(text.split()), not the characters")
            elif abs(got - want) < 0.4:
                hint = (" – close, but not the package's shuffle: one random.Random(seed) for all the texts, in order, "
                        "rng.shuffle(words) for each text's words = text.split(), joined by single spaces")
            else:
                hint = ""
            return False, (f"with seed {seed} your loss, {got:.3f}, is too {side} (more than 0.05 nats from the package's "
                           f"measurement){hint}")
    if not one_word_kept():
        return False, ("on texts of one word each your function's loss differs from that of the texts as they are, but "
                       "shuffling the words of a one-word text leaves it unchanged – shuffle the words (text.split()), "
                       "not the characters")
    got = shuffled[0]
    message = f"shuffling the words moves the model's [MASK] loss from {as_is:.2f} to {got:.2f} nats (seed 0)"
    if unigram is not None and got > as_is and unigram > as_is:
        kept = (unigram - got) / (unigram - as_is)
        if 0 < kept < 1:
            message += (f"; the unigram guess, which reads no context, scores {unigram:.2f}: {kept:.0%} of the model's gain "
                        f"over it survives the shuffle – what the words present, as a bag, tell – and the rest needs their order")
        elif kept <= 0:
            message += (f", worse than the unigram guess ({unigram:.2f}), which reads no context at all: the model leans on "
                        f"the order of the words, and shuffled, its context points it the wrong way")
    return True, message
