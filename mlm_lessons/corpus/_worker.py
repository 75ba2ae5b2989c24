"""``python -m mlm_lessons.corpus._worker NAME MIN_WORDS OUT``: build a named corpus into OUT.

:func:`mlm_lessons.corpus.load_corpus` runs this in a fresh interpreter, so that the hundreds of
modules the harvest imports never touch the caller's process.
"""

import sys
import warnings

from .build import write_documents, build_documents


def main(argv: list[str]) -> None:
    name, min_words, out = argv[0], int(argv[1]), argv[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs, meta = build_documents(name, min_words)
    write_documents(docs, meta, out)


if __name__ == "__main__":
    main(sys.argv[1:])
