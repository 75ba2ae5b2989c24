"""Time the corpus builds and the tokenizer training; print sizes and fingerprints.

    python benchmarks/corpus_build.py

Each corpus is built from scratch (an empty cache, a fresh interpreter, as a reader's first run),
then loaded again from the cache, side by side in one run.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time

import mlm_lessons as mlm
from mlm_lessons.teaching.display import Table


def main() -> None:
    rows = []
    corpora = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MLM_LESSONS_CACHE"] = cache
        total = time.perf_counter()
        for name in mlm.CORPUS_NAMES:
            t = time.perf_counter()
            corpora[name] = c = mlm.load_corpus(name)
            built = time.perf_counter() - t
            t = time.perf_counter()
            mlm.load_corpus(name)
            cached = time.perf_counter() - t
            s = c.stats()
            rows.append({
                "corpus": name, "documents": s.documents, "words": s.words, "characters": s.characters,
                "build s": built, "cached load s": cached, "build / cached": built / cached,
                "sha256": s.sha256[:16],
            })
        total = time.perf_counter() - total
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"versions {corpora['pytorch-docs'].meta['versions'].get('torch')} / {corpora['numpy-docs'].meta['versions'].get('numpy')}")
    print(Table(rows, digits=2))
    print(f"all three built and loaded in {total:.1f} s")
    t = time.perf_counter()
    tok = mlm.train_tokenizer(corpora["python-docs"].texts("train"), vocab_size=8000)
    print(f"WordPiece tokenizer (8,000 entries) trained on python-docs train in {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    frag = tok.fragmentation(corpora["pytorch-docs"].texts("train"))
    print(f"fragmentation of pytorch-docs train ({frag.words:,} words) in {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
