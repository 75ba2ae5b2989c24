"""The command line: ``python -m mlm_lessons <command> ...`` (or ``mlm-lessons <command>``).

Commands follow the book: ``corpus`` (build, inspect, export a corpus), ``tokenizer`` (train one),
``fragmentation`` (how a tokenizer cuts a corpus's words).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .corpus import CORPUS_NAMES, Corpus, load_corpus
from .display import Table
from .tokenizer import MLMTokenizer, train_tokenizer

__all__ = ["main", "build_parser"]


def _corpus_from_args(args) -> Corpus:
    if args.paths:
        return load_corpus(paths=args.paths)
    return load_corpus(args.corpus, rebuild=getattr(args, "rebuild", False))


def _add_corpus_source(p: argparse.ArgumentParser, positional: bool = False) -> None:
    if positional:
        p.add_argument("corpus", nargs="?", choices=CORPUS_NAMES, help="a corpus built from installed docs")
    else:
        p.add_argument("--corpus", choices=CORPUS_NAMES, default=None, help="a corpus built from installed docs")
    p.add_argument("--paths", nargs="+", metavar="PATH", help="your own UTF-8 .txt files or folders instead")


def cmd_corpus(args) -> int:
    if not args.corpus and not args.paths:
        names = CORPUS_NAMES
        corpora = [load_corpus(n, rebuild=args.rebuild) for n in names]
    else:
        corpora = [_corpus_from_args(args)]
    rows = [c.stats().as_row() for c in corpora]
    if args.json:
        print(json.dumps([{**r, "sha256": c.stats().sha256} for r, c in zip(rows, corpora)], indent=2))
    else:
        print(Table(rows))
    if args.write:
        out = Path(args.write)
        for c in corpora:
            for split in ("train", "valid", "test"):
                f = out / c.name / f"{split}.txt"
                f.parent.mkdir(parents=True, exist_ok=True)
                # one document per line, as most MLM tools read text
                f.write_text("".join(t.replace("\n", " ") + "\n" for t in c.texts(split)), encoding="utf-8")
        print(f"wrote train/valid/test .txt files under {out}")
    return 0


def cmd_tokenizer(args) -> int:
    if not args.corpus and not args.paths:
        raise ValueError("say what to train on: --corpus NAME or --paths FILE ...")
    corpus = _corpus_from_args(args)
    tok = train_tokenizer(corpus.texts("train"), vocab_size=args.vocab_size, min_frequency=args.min_frequency)
    path = tok.save(args.out)
    print(f"trained {tok!r} on {corpus.name} (train split) -> {path}")
    return 0


def cmd_fragmentation(args) -> int:
    tok = MLMTokenizer.load(args.tokenizer)
    if args.words:
        for w in args.words:
            print(f"{w:>20}  {' '.join(tok.tokenize(w))}")
    if args.corpus or args.paths:
        corpus = _corpus_from_args(args)
        texts = corpus.texts(args.split)
        if not texts:
            raise ValueError(
                f"the {args.split} split of {corpus.name!r} is empty ({len(corpus.documents)} documents in all); "
                f"choose another with --split train"
            )
        frag = tok.fragmentation(texts)
        print(Table([{"corpus": corpus.name, "split": args.split, **frag.as_row()}], digits=4))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlm_lessons", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("corpus", help="build (or load from cache) a corpus and print its statistics")
    _add_corpus_source(p, positional=True)
    p.add_argument("--rebuild", action="store_true", help="ignore the cache and harvest again")
    p.add_argument("--json", action="store_true", help="print statistics as JSON, with the full sha256")
    p.add_argument("--write", metavar="DIR", help="also write train/valid/test.txt, one document per line")
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("tokenizer", help="train a WordPiece tokenizer on a corpus's train split")
    _add_corpus_source(p)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--out", required=True, help="where to write the tokenizer JSON")
    p.set_defaults(func=cmd_tokenizer)

    p = sub.add_parser("fragmentation", help="how a tokenizer cuts words: pieces per word, share split")
    p.add_argument("--tokenizer", required=True, help="a tokenizer JSON file")
    _add_corpus_source(p)
    p.add_argument("--split", choices=("train", "valid", "test"), default="valid")
    p.add_argument("--words", nargs="+", help="also show the pieces of these words")
    p.set_defaults(func=cmd_fragmentation)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
