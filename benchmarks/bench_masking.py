"""Masking throughput: mlm_lessons' mask_tokens / MLMCollator against Hugging Face's
DataCollatorForLanguageModeling, on identical batches, interleaved, as ratios.

    python benchmarks/bench_masking.py

Two measurements per batch shape:
- masking alone: ``mask_tokens`` vs ``DataCollatorForLanguageModeling.torch_mask_tokens`` on the same
  padded LongTensor (the special-tokens mask handed to Hugging Face precomputed, as a fair start);
- the whole collate step: ``MLMCollator`` vs the Hugging Face collator on the same list of
  unpadded examples (padding, attention mask, masking).
Ratios > 1 mean mlm_lessons is faster. Each timing is the median of interleaved repetitions.
Hugging Face selects positions by Bernoulli draws; ``selection="bernoulli"`` is the like-for-like
comparison, ``"exact"`` (BERT's fixed count per sequence, the package default) adds a top-k.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import torch

import mlm_lessons as mlm
from mlm_lessons.teaching.display import Table
from mlm_lessons.masking import pad_examples


def _median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _interleaved(ours, theirs, reps: int) -> tuple[float, float]:
    ours_t, theirs_t = [], []
    for i in range(reps):
        pair = [(ours, ours_t), (theirs, theirs_t)]
        for fn, sink in pair if i % 2 == 0 else reversed(pair):
            sink.append(_median_time(fn, 1))
    return statistics.median(ours_t), statistics.median(theirs_t)


def main() -> None:
    import transformers

    torch.set_num_threads(1)
    corpus = mlm.load_corpus("python-docs")
    tok = mlm.train_tokenizer(corpus.texts("train"), vocab_size=8000)
    with tempfile.TemporaryDirectory() as folder:
        tok.save_vocab(f"{folder}/vocab.txt")
        hf_tok = transformers.BertTokenizerFast.from_pretrained(folder)
    hf = transformers.DataCollatorForLanguageModeling(tokenizer=hf_tok, mlm_probability=0.15, seed=0)
    texts = corpus.texts("train")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, 1 thread; vocabulary {tok.vocab_size:,}")
    rows = []
    for batch_size, length in ((32, 128), (256, 512)):
        examples = tok.encode_examples(texts[:batch_size], max_length=length)
        ids = pad_examples(examples, pad_id=tok.pad_id)["input_ids"]
        special = torch.isin(ids, torch.tensor(sorted(tok.special_ids))).long()
        tokens = int((ids != tok.pad_id).sum())
        reps = 60 if batch_size == 32 else 20
        gen = torch.Generator().manual_seed(0)
        for selection in ("bernoulli", "exact"):
            config = mlm.MaskingConfig(selection=selection)
            ours, theirs = _interleaved(
                lambda: mlm.mask_tokens(ids, config, mask_token_id=tok.mask_id, vocab_size=tok.vocab_size,
                                        special_ids=tok.special_ids, generator=gen),
                lambda: hf.torch_mask_tokens(ids.clone(), special_tokens_mask=special),
                reps,
            )
            rows.append({"batch": f"{batch_size} x {ids.shape[1]}", "step": f"mask_tokens ({selection})",
                         "ours tokens/s": tokens / ours, "HF tokens/s": tokens / theirs, "ours / HF speed": theirs / ours})
        hf_examples = [{"input_ids": ex["input_ids"]} for ex in examples]
        for selection in ("bernoulli", "exact"):
            ours_collate = mlm.MLMCollator(tok, mlm.MaskingConfig(selection=selection), generator=gen)
            ours, theirs = _interleaved(lambda: ours_collate(examples), lambda: hf(hf_examples), reps)
            rows.append({"batch": f"{batch_size} x {ids.shape[1]}", "step": f"collate: pad + mask ({selection})",
                         "ours tokens/s": tokens / ours, "HF tokens/s": tokens / theirs, "ours / HF speed": theirs / ours})
    print(Table(rows, digits=2))


if __name__ == "__main__":
    main()
