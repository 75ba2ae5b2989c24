"""The command line: ``python -m mlm_lessons <command> ...`` (or ``mlm-lessons <command>``).

Commands follow the book: ``corpus`` (build, inspect, export a corpus), ``tokenizer`` (train one),
``fragmentation`` (how a tokenizer cuts a corpus's words), ``pretrain`` (MLM pretraining into a run
directory), ``fill-mask`` (ask a trained model to fill in ``[MASK]``), ``dapt`` (continue pretraining
on a domain), ``finetune`` (train a classification or token-labeling head) and ``export`` (any of
those runs as a Hugging Face folder; ``dapt --hf`` and ``finetune --hf`` start from a published
``transformers`` model instead and write Hugging Face folders themselves); for instructors, ``coursework student-edition`` (the notebooks
with solutions replaced by stubs).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from ._checks import require_choice
from .corpus import CORPUS_NAMES, HUB_CORPUS_NAMES, Corpus, load_corpus
from .corpus.documents import SPLITS
from .corpus.hub import HubUnavailable
from .settings import (CLASSIFIER_POOLINGS, DAPT_DEFAULTS, DEFAULT_PRESET, MIN_FREQUENCY, PRESET_NAMES, PUBLISHED_DEFAULTS, TASK_NAMES,
                       VOCAB_SIZE, FinetuneConfig, TrainConfig)
from .teaching.display import Table
from .tokenizer import MLMTokenizer, train_tokenizer

# The parser is built from torch-free modules only (settings, corpus, tokenizer), so `--help` and a bad
# argument answer at once: each cmd_* function imports the modules that import torch (training,
# rundir, finetuning, ...) inside itself, when it runs.

__all__ = ["main", "build_parser", "MADE_BY"]


def __getattr__(name: str):
    """``MADE_BY`` (the run's record of the commands that made it) is :mod:`mlm_lessons.rundir`'s, re-exported
    here on first use: importing rundir imports torch, which building the parser must not."""
    if name == "MADE_BY":
        from .rundir import MADE_BY

        return MADE_BY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _corpus_sentence(name: str, sha256: str) -> str:
    return f"the corpus {name!r} (sha256 {sha256[:16]}…)"


def _data_of(made_by: dict) -> str | None:
    """What a run's record says its model was (pre)trained on (records written before ``data`` name the corpus alone)."""
    if made_by.get("data"):
        return made_by["data"]
    return _corpus_sentence(made_by["corpus"], made_by["corpus_sha256"]) if made_by.get("corpus") else None


def _record(run, earlier: dict, command_line: str, **fields) -> None:
    """Write ``run``'s made_by record: the commands of the run it started from (``earlier``), this one, and ``fields``."""
    run.write_made_by({"commands": earlier.get("commands", []) + [command_line], **fields})


def _corpus_from_args(args) -> Corpus:
    if args.paths:
        return load_corpus(paths=args.paths)
    if args.corpus in CORPUS_NAMES:
        return load_corpus(args.corpus, rebuild=getattr(args, "rebuild", False), documents=getattr(args, "documents", "book"))
    return load_corpus(args.corpus, rebuild=getattr(args, "rebuild", False))


_CORPUS_HELP = "a corpus built from installed docs, or one streamed from the Hub (needs datasets and a network)"


def _add_corpus_source(p: argparse.ArgumentParser, positional: bool = False) -> None:
    if positional:
        p.add_argument("corpus", nargs="?", choices=CORPUS_NAMES + HUB_CORPUS_NAMES, help=_CORPUS_HELP)
    else:
        p.add_argument("--corpus", choices=CORPUS_NAMES + HUB_CORPUS_NAMES, default=None, help=_CORPUS_HELP)
    p.add_argument("--paths", nargs="+", metavar="PATH", help="your own UTF-8 .txt files or folders instead")


def cmd_corpus(args) -> int:
    if not args.corpus and not args.paths:
        names = CORPUS_NAMES
        corpora = [load_corpus(n, rebuild=args.rebuild, documents=args.documents) for n in names]
    else:
        corpora = [_corpus_from_args(args)]
    if args.write_manifests:
        from .corpus.manifest import write_manifest

        for c in corpora:
            require_choice(c.name, "--write-manifests: the corpus", CORPUS_NAMES,
                           why=" (the book's corpora, whose manifests the package holds)")
            print(f"wrote {write_manifest(c.name)}")
        return 0
    rows = [c.stats().as_row() for c in corpora]
    if args.json:
        print(json.dumps([{**r, "sha256": c.stats().sha256} for r, c in zip(rows, corpora)], indent=2))
    else:
        print(Table(rows))
        for c in corpora:
            if c.manifest_report() is not None:
                print(c.manifest_report().sentence())
    if args.write:
        out = Path(args.write)
        for c in corpora:
            for split in SPLITS:
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


def cmd_pretrain(args) -> int:
    from .rundir import MADE_BY, RunDir
    from .training import preset, pretrain

    if not args.corpus and not args.paths:
        raise ValueError("say what to train on: --corpus NAME or --paths FILE ...")
    run = RunDir(args.out)
    if args.resume:  # the run's own files first: a bad run directory fails before the corpus loads
        if not run.has_checkpoint():
            raise ValueError(f"--resume: no checkpoint in {str(run.path)!r} ({str(run.checkpoint)!r} does not exist); "
                             f"start without --resume")
        tok, earlier = run.load_tokenizer(), run.read_made_by()
    elif run.has_checkpoint():
        raise ValueError(f"{str(run.path)!r} already holds a run; continue it with --resume or choose another --out")
    corpus = _corpus_from_args(args)
    if not corpus.valid:
        raise ValueError(f"the corpus {corpus.name!r} has no validation documents to evaluate on; give it more text")
    if not args.resume:
        tok, earlier = train_tokenizer(corpus.texts("train"), vocab_size=args.vocab_size), {}
    overrides = {"device": args.device, "seed": args.seed}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.compile is not None:
        overrides["compile"] = args.compile
    model_config, train_config = preset(args.preset, tok.vocab_size, **overrides)
    result = pretrain(model_config, tok, corpus.texts("train"), corpus.texts("valid"), train_config,
                      out_dir=run.path, resume=args.resume, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports
    last = result.evaluations()[-1] if result.evaluations() else None
    if last:
        print(f"step {last['step']}: at [MASK] positions valid loss {last['valid_mask_loss']:.3f}, "
              f"accuracy {last['valid_mask_accuracy']:.3f}; at every labelled position (with random and kept "
              f"tokens) loss {last['valid_loss']:.3f}, accuracy {last['valid_accuracy']:.3f}")
    _record(run, earlier, args.command_line, corpus=corpus.name, corpus_sha256=corpus.sha256(),
            data=_corpus_sentence(corpus.name, corpus.sha256()))
    print(f"run written to {run.path} (checkpoint.pt, tokenizer.json, metrics.json, config.json, {MADE_BY}); "
          f"presets: {', '.join(PRESET_NAMES)}")
    return 0


def cmd_export(args) -> int:
    from .hf import run_summary, save_pretrained
    from .rundir import CHECKPOINT, FINETUNED, RunDir, load_finetuned, load_run

    run = RunDir(args.checkpoint)
    has = {CHECKPOINT: run.has_checkpoint(), FINETUNED: run.has_finetuned()}
    if not any(has.values()) or all(has.values()):
        both = all(has.values())
        raise ValueError(f"{str(run.path)!r} holds {'both' if both else 'neither'} {CHECKPOINT} (a pretrain or dapt run) "
                         f"{'and' if both else 'nor'} {FINETUNED} (a finetune run); --checkpoint takes one run "
                         f"directory that pretrain, dapt or finetune wrote (their --out)")
    if args.onnx:
        return _export_onnx(run, has[FINETUNED], args.onnx)
    made_by = run.read_made_by()
    trained_on = args.trained_on or _data_of(made_by)
    commands = made_by.get("commands", []) + [args.command_line]
    if has[FINETUNED]:
        model, tok, ckpt = load_finetuned(run.path)
        metrics = {split: scores for split, scores in (("validation", ckpt.get("valid")), ("test", ckpt.get("test"))) if scores}
        out = save_pretrained(model, tok, args.out, trained_on=trained_on, steps=ckpt.get("best_step"), metrics=metrics,
                              commands=commands, label_names=list(ckpt["label_names"]), task=ckpt.get("task"))
        auto = "AutoModelForSequenceClassification" if ckpt["kind"] == "SequenceClassifier" else "AutoModelForTokenClassification"
    else:
        model, tok, ckpt = load_run(run.path)
        summary = run_summary(ckpt)
        out = save_pretrained(model, tok, args.out, trained_on=trained_on, steps=summary["steps"], metrics=summary["metrics"],
                              commands=commands)
        auto = "AutoModelForMaskedLM"
    print(f"wrote {', '.join(sorted(f.name for f in out.iterdir()))} to {out}; load it with "
          f"transformers.{auto}.from_pretrained({str(out)!r})")
    return 0


def _export_onnx(run, finetuned: bool, path: str) -> int:
    from .rundir import load_run
    from .web import export_onnx

    if finetuned:
        raise ValueError(f"{str(run.path)!r} is a finetune run; --onnx writes masked LMs (a pretrain or dapt run): "
                         f"export a finetune run with --out, as a Hugging Face folder")
    model, _, _ = load_run(run.path)
    out = export_onnx(model, path)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): inputs input_ids, attention_mask [batch, length <= "
          f"{model.config.max_len}] int64; outputs logits, attention; run it with onnxruntime.InferenceSession({str(out)!r})")
    return 0


def cmd_fill_mask(args) -> int:
    from .model import fill_mask
    from .rundir import load_run

    model, tok, _ = load_run(args.checkpoint)
    for i, options in enumerate(fill_mask(model, tok, args.text, top_k=args.top_k, one_at_a_time=args.one_at_a_time)):
        print(f"[MASK] #{i + 1}: " + "  ".join(f"{t} ({p:.3f})" for t, p in options))
    return 0


def _pretrained_run(args):
    """The pretrain or dapt run ``--checkpoint`` names, read once: ``(model, tokenizer, checkpoint, made_by
    record)``; a ``--tokenizer`` must be the run's vocabulary, and is the tokenizer returned."""
    from .model import check_vocabulary
    from .rundir import RunDir, load_run

    model, tok, ckpt = load_run(args.checkpoint)
    made_by = RunDir(args.checkpoint).read_made_by()
    if args.tokenizer:
        tok = MLMTokenizer.load(args.tokenizer)
        check_vocabulary(model.config, tok)
    return model, tok, ckpt, made_by


def _dapt_table(result, domain: Corpus, general: Corpus, patience) -> None:
    """Print a DAPT run's [MASK] losses before (step 0) and at the kept weights, and whether it stopped early."""
    evals = result.evaluations()
    best = next(e for e in evals if e["step"] == (result.best_step if result.best_step is not None else evals[-1]["step"]))
    rows = [{"": label, f"{domain.name} [MASK] loss": e["valid_mask_loss"], f"{general.name} [MASK] loss": e["general_mask_loss"],
             f"{domain.name} loss (all labelled)": e["valid_loss"]}
            for label, e in (("before (step 0)", evals[0]), (f"kept (step {best['step']})", best))]
    print(Table(rows, digits=3))
    if result.stopped_at:
        print(f"stopped early at step {result.stopped_at}: no improvement on {domain.name} for {patience} evaluations")


def _published_record(source: str) -> dict:
    """The record of the commands that made a published model's folder (``dapt --hf`` writes one in its
    ``run/``); empty for any other folder or a Hub id."""
    from .published import RUN_SUBDIR
    from .rundir import RunDir

    run = RunDir(Path(source) / RUN_SUBDIR)
    return run.read_made_by() if run.path.is_dir() else {}


def _not_with_hf(args, *names: str) -> None:
    given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None)]
    if given:
        raise ValueError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for the book's runs (--checkpoint); a "
                         f"published model (--hf) reads with its own tokenizer and trains its own architecture")


def _dapt_published(args) -> int:
    """``dapt --hf``: continue MLM training of a published model, written as a Hugging Face folder with its run in ``run/``."""
    from .adaptation import dapt
    from .published import RUN_SUBDIR, load_published, mask_loss_summary, published_dapt_config, training_summary
    from .rundir import MADE_BY, RunDir

    _not_with_hf(args, "extend_vocab", "tokenizer")
    model, tok = load_published(args.hf)
    domain, general = load_corpus(args.corpus), load_corpus(args.general_corpus)
    config = published_dapt_config(model, tok, args.max_steps, lr=args.lr, eval_every=args.eval_every, device=args.device,
                                   seed=args.seed)
    out = Path(args.out)
    run = RunDir(out / RUN_SUBDIR)
    result = dapt(model, tok, domain.texts("train"), domain.texts("valid"), general.texts("valid"), config,
                  patience=args.patience, out_dir=run.path, progress=not args.quiet)
    _dapt_table(result, domain, general, args.patience)
    base = _published_record(args.hf)
    data = (f"{_data_of(base) or f'the published model {args.hf}'}; then domain-adaptive pretraining on the corpus "
            f"{domain.name!r}, train split (corpus sha256 {domain.sha256()})")
    _record(run, base, args.command_line, corpus=domain.name, corpus_sha256=domain.sha256(), data=data, start=args.hf)
    steps = max(h["step"] for h in result.history)
    losses = mask_loss_summary(result.history, result.best_step, {"valid": domain.name, "general": general.name})
    _write_published(args, result.model, tok, out, base, data=data, steps=steps, metrics=losses, settings=training_summary(config))
    print(f"wrote {', '.join(sorted(f.name for f in out.iterdir() if f.is_file()))} to {out}; {_load_it('AutoModelForMaskedLM', out)}; "
          f"the run (checkpoint.pt, metrics.json, {MADE_BY}) is in {run.path}")
    return 0


def _write_published(args, model, tok, out: Path, base: dict, **card) -> None:
    """The Hugging Face folder of a ``--hf`` run, its card quoting the commands that made it."""
    from .published import save_published

    save_published(model, tok, out, commands=base.get("commands", []) + [args.command_line], **card)


def _load_it(auto: str, out: Path) -> str:
    return f"load it with transformers.{auto}.from_pretrained({str(out)!r})"


def cmd_dapt(args) -> int:
    from .adaptation import dapt, dapt_config, domain_words, extend_vocabulary
    from .rundir import MADE_BY, RunDir

    if args.hf:
        return _dapt_published(args)
    model, tok, ckpt, base = _pretrained_run(args)
    domain, general = load_corpus(args.corpus), load_corpus(args.general_corpus)
    if args.extend_vocab:
        words = domain_words(tok, domain.texts("train"), args.extend_vocab)
        model, tok = extend_vocabulary(model, tok, words)
        print(f"added {len(words)} domain words to the vocabulary, e.g. {', '.join(words[:8])}")
    overrides = {"device": args.device, "seed": args.seed}
    config = dapt_config(TrainConfig(**ckpt["train_config"]), args.max_steps, lr=args.lr, eval_every=args.eval_every, **overrides)
    result = dapt(model, tok, domain.texts("train"), domain.texts("valid"), general.texts("valid"), config,
                  patience=args.patience, out_dir=args.out, progress=not args.quiet)
    _dapt_table(result, domain, general, args.patience)
    general_data = _data_of(base) or "a general corpus (not recorded)"
    _record(RunDir(args.out), base, args.command_line, corpus=domain.name, corpus_sha256=domain.sha256(),
            data=f"{general_data}, {ckpt['step']:,} steps; then domain-adaptive pretraining on "
                 f"{_corpus_sentence(domain.name, domain.sha256())}"
                 f"{f', {len(words)} domain words added to the vocabulary' if args.extend_vocab else ''}")
    print(f"run written to {args.out} (checkpoint.pt, tokenizer.json, metrics.json, config.json, {MADE_BY})")
    return 0


def _finetune_published(args) -> int:
    """``finetune --hf``: a published model's classification or token-labeling head, written as a Hugging Face folder."""
    from .finetuning import finetune
    from .published import RUN_SUBDIR, published_classifier, published_finetune_lr, training_summary
    from .rundir import MADE_BY, RunDir
    from .tasks import load_task

    _not_with_hf(args, "from_scratch", "tokenizer")
    task = load_task(args.task).subsample(args.labels_per_class, seed=args.seed)
    model, tok = published_classifier(args.hf, task, seed=args.seed, pooling=args.pooling)
    lr = args.lr if "lr" in getattr(args, "given", ()) else published_finetune_lr()  # a published model's own default
    config = FinetuneConfig(lr=lr, max_steps=args.max_steps, seed=args.seed, device=args.device,
                            max_length=min(args.max_length, model.config.max_len))
    result = finetune(model, tok, task, config, progress=not args.quiet)
    out = Path(args.out)
    run = RunDir(out / RUN_SUBDIR)
    base = _published_record(args.hf)
    data = _data_of(base) or f"the published model {args.hf}"
    _write_published(args, result.model, tok, out, base, data=data, steps=result.best_step, task=task.name,
                     settings=training_summary(config),
                     metrics={split: scores for split, scores in (("validation", result.valid), ("test", result.test)) if scores})
    run.path.mkdir(parents=True, exist_ok=True)
    run.metrics.write_text(json.dumps({"history": result.history, "valid": result.valid, "test": result.test}, indent=1))
    _record(run, base, args.command_line, task=task.name, data=data, start=args.hf)
    print(Table([{"split": "valid (best)", **result.valid}, {"split": "test", **result.test}], digits=3))
    print(f"{task.name}: {len(task.train)} training examples, best step {result.best_step}, {result.seconds:.0f} s; "
          f"written to {out}: {_load_it(task.kind.auto_class, out)} (the run's metrics.json and {MADE_BY} are in {run.path})")
    return 0


def cmd_finetune(args) -> int:
    from .finetuning import build_model, finetune
    from .model import EncoderConfig
    from .rundir import FINETUNED, MADE_BY, RunDir
    from .tasks import load_task

    if args.hf:
        return _finetune_published(args)
    pretrained, tok, _, base = _pretrained_run(args)
    task = load_task(args.task).subsample(args.labels_per_class, seed=args.seed)
    init = EncoderConfig(**pretrained.config.to_dict()) if args.from_scratch else pretrained
    model = build_model(task, init, pooling=args.pooling, seed=args.seed)
    config = FinetuneConfig(lr=args.lr, max_steps=args.max_steps, seed=args.seed, device=args.device,
                            max_length=min(args.max_length, pretrained.config.max_len))
    result = finetune(model, tok, task, config, progress=not args.quiet)
    run = RunDir(args.out)
    run.save_finetuned(result.model, tok, task=task.name, label_names=task.label_names, config=config,
                       history=result.history, valid=result.valid, test=result.test, best_step=result.best_step)
    data = ("none: the encoder was trained from scratch on the task (--from-scratch)" if args.from_scratch
            else _data_of(base) or "not recorded")
    _record(run, base, args.command_line, task=task.name, data=data)
    print(Table([{"split": "valid (best)", **result.valid}, {"split": "test", **result.test}], digits=3))
    print(f"{task.name}: {len(task.train)} training examples, best step {result.best_step}, {result.seconds:.0f} s; "
          f"written to {run.path} ({FINETUNED}, tokenizer.json, metrics.json, {MADE_BY})")
    return 0


BOOK_DIR = Path(__file__).resolve().parents[1] / "book"  # the book next to the package, in a checkout


def cmd_student_edition(args) -> int:
    from .teaching.coursework import student_edition

    if args.book is None:
        book = BOOK_DIR
        if not book.is_dir():
            raise ValueError(f"no book/ directory next to the package ({book}): the package is not run from a "
                             f"checkout of the book's repository; say where the notebooks are with --book DIR")
    else:
        book = Path(args.book)
        if not book.is_dir():
            raise ValueError(f"--book: {str(book)!r} is not a directory")
    written = student_edition(book, args.out_dir)
    for path in written:
        print(f"wrote {path}")
    print(f"student edition: {len(written)} notebooks from {book} written to {args.out_dir} "
          f"(solutions replaced by stubs, outputs cleared)")
    return 0


def _add_corpus_command(sub) -> None:
    p = sub.add_parser("corpus", help="build (or load from cache) a corpus and print its statistics")
    _add_corpus_source(p, positional=True)
    p.add_argument("--rebuild", action="store_true", help="ignore the cache and harvest again")
    p.add_argument("--json", action="store_true", help="print statistics as JSON, with the full sha256")
    p.add_argument("--write", metavar="DIR", help="also write train/valid/test.txt, one document per line")
    p.add_argument("--documents", choices=("book", "installed"), default="book",
                   help="the book's documents where still installed (default), or every installed document")
    p.add_argument("--write-manifests", action="store_true",
                   help="for maintainers: write the package's manifests of the book's documents from the corpora built here")
    p.set_defaults(func=cmd_corpus)


def _add_tokenizer_command(sub) -> None:
    p = sub.add_parser("tokenizer", help="train a WordPiece tokenizer on a corpus's train split")
    _add_corpus_source(p)
    p.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    p.add_argument("--min-frequency", type=int, default=MIN_FREQUENCY)
    p.add_argument("--out", required=True, help="where to write the tokenizer JSON")
    p.set_defaults(func=cmd_tokenizer)


def _add_fragmentation_command(sub) -> None:
    p = sub.add_parser("fragmentation", help="how a tokenizer cuts words: pieces per word, share split")
    p.add_argument("--tokenizer", required=True, help="a tokenizer JSON file")
    _add_corpus_source(p)
    p.add_argument("--split", choices=SPLITS, default="valid")
    p.add_argument("--words", nargs="+", help="also show the pieces of these words")
    p.set_defaults(func=cmd_fragmentation)


def _add_pretrain_command(sub) -> None:
    defaults = TrainConfig()
    p = sub.add_parser(
        "pretrain", help="pretrain an encoder with masked language modeling",
        description=f"Train a tokenizer on the corpus's train split, then pretrain a MaskedLM with a preset: "
                    f"{', '.join(PRESET_NAMES)} ({DEFAULT_PRESET}: minutes on a laptop CPU). Under torchrun the same "
                    f"command runs data-parallel on several GPUs.",
    )
    _add_corpus_source(p)
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESET_NAMES,
                   help=f"model size and training settings, every one in ModernBERT's layout, which `export` writes "
                        f"as ModernBertForMaskedLM (default: {DEFAULT_PRESET})")
    p.add_argument("--out", required=True, help="the run directory: checkpoint.pt, tokenizer.json, metrics.json, config.json")
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: the preset's)")
    p.add_argument("--device", default=defaults.device, help="auto (CUDA, else Apple MPS, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seeds initialisation, data order, masks and dropout")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the model")
    p.add_argument("--vocab-size", type=int, default=VOCAB_SIZE, help="size of the tokenizer trained for a new run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_pretrain)


def _add_export_command(sub) -> None:
    p = sub.add_parser(
        "export", help="write a run (pretrain, dapt or finetune) as a Hugging Face folder (config.json, safetensors, "
                       "tokenizer, model card)",
        description="Copy a trained model into its exact transformers class and save it with its tokenizer and a model "
                    "card, ready for the Auto classes, pipelines and the Hub. A pretrain or dapt run (checkpoint.pt) "
                    "becomes ModernBertForMaskedLM (BertForMaskedLM for norm='post'): AutoModelForMaskedLM, "
                    "pipeline('fill-mask'). A finetune run (finetuned.pt) becomes ModernBertForSequenceClassification "
                    "(its pooling kept) or ModernBertForTokenClassification, labelled with the task's label names: "
                    "AutoModelForSequenceClassification / AutoModelForTokenClassification, "
                    "pipeline('text-classification') / pipeline('token-classification'); its card gives the task and "
                    "its validation and test scores.",
    )
    p.add_argument("--checkpoint", required=True, help="a run directory written by pretrain, dapt or finetune (their --out)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="the folder to write")
    where.add_argument("--onnx", help="write a pretrain or dapt run's masked LM as one ONNX file instead (mlm_lessons.web."
                                      "export_onnx: inputs input_ids and attention_mask, outputs logits and attention), "
                                      "for onnxruntime in Python, C++ or a web page")
    p.add_argument("--trained-on", default=None, help="what the model was (pre)trained on, for the model card "
                                                       "(default: what pretrain, dapt or finetune recorded in the run directory)")
    p.set_defaults(func=cmd_export)


def _add_fill_mask_command(sub) -> None:
    p = sub.add_parser("fill-mask", help="the most likely pieces for each [MASK] in a sentence")
    p.add_argument("--checkpoint", required=True, help="a run directory written by pretrain")
    p.add_argument("text", help='a sentence with [MASK], e.g. "Return a new [MASK] with the same size."')
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--one-at-a-time", action="store_true",
                   help="several masks: fill the surest first and predict the others again with it in place "
                        "(default: all at once, each blind to the others)")
    p.set_defaults(func=cmd_fill_mask)


def _add_dapt_command(sub) -> None:
    defaults = TrainConfig()
    p = sub.add_parser(
        "dapt", help="domain-adaptive pretraining: continue MLM on a domain's text",
        description="Continue masked-LM training of a pretrained run on the train split of a domain corpus, "
                    "evaluating on the domain's and the general corpus's validation text, with early stopping "
                    "on the domain loss; optionally add frequent domain words to the vocabulary first. With --hf the "
                    "start is a published transformers masked LM (BERT, DistilBERT, RoBERTa, ModernBERT, ...) read with "
                    "its own tokenizer, and --out becomes a Hugging Face folder (AutoModelForMaskedLM loads it) with a "
                    "model card and the run in its run/.",
    )
    _add_start(p, "the run directory of the general model (pretrain --out)", "e.g. a model saved by transformers")
    p.add_argument("--corpus", required=True, choices=CORPUS_NAMES + HUB_CORPUS_NAMES, help="the domain corpus, e.g. pytorch-docs")
    p.add_argument("--general-corpus", default=DAPT_DEFAULTS.general_corpus, choices=CORPUS_NAMES + HUB_CORPUS_NAMES,
                   help=f"the corpus whose validation loss shows what the model forgets "
                        f"(default: {DAPT_DEFAULTS.general_corpus})")
    p.add_argument("--out", required=True, help="the new run directory (with --hf: the Hugging Face folder to write)")
    p.add_argument("--tokenizer", help="check the checkpoint against this tokenizer JSON (default: the run's own)")
    p.add_argument("--max-steps", type=int, default=DAPT_DEFAULTS.max_steps)
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default: half the pretraining one; with --hf {PUBLISHED_DEFAULTS.dapt_lr:g})")
    p.add_argument("--eval-every", type=int, default=DAPT_DEFAULTS.eval_every)
    p.add_argument("--patience", type=int, default=DAPT_DEFAULTS.patience, help="evaluations without improvement before stopping")
    p.add_argument("--extend-vocab", type=int, default=0, metavar="K", help="add the K most useful domain words as tokens")
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dapt)


class _Given(argparse.Action):
    """Store the value and note that it was given (``args.given``): a published model's default differs from the book's."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def _add_start(p: argparse.ArgumentParser, checkpoint_help: str, hf_example: str) -> None:
    """Where training starts: one of ``--checkpoint`` (a run of this package) and ``--hf`` (a published model)."""
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--checkpoint", help=checkpoint_help)
    start.add_argument("--hf", metavar="PATH_OR_ID",
                       help=f"a published masked LM instead: a folder written by save_pretrained ({hf_example}) or a Hub id "
                            f"already in the Hugging Face cache (with a network: downloaded), with its fast tokenizer")


def _add_finetune_command(sub) -> None:
    defaults = FinetuneConfig()
    p = sub.add_parser(
        "finetune", help="fine-tune a classification or token-labeling head on a provenance-labelled task",
        description="torch-subpackage: which torch sub-package a documentation paragraph comes from; "
                    "code-spans: which words of a paragraph are code. Labels come from the documentation itself. With "
                    "--hf the head is AutoModelForSequenceClassification / AutoModelForTokenClassification made from a "
                    "published masked LM, and --out becomes a Hugging Face folder with the task's label names.",
    )
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    _add_start(p, "a run directory (pretrain or dapt --out)", "e.g. the folder dapt --hf wrote")
    p.add_argument("--out", required=True, help="where to write finetuned.pt, tokenizer.json, metrics.json, made_by.json "
                                                "(with --hf: a Hugging Face folder, the run's files in its run/)")
    p.add_argument("--from-scratch", action="store_true",
                   help="use the checkpoint's tokenizer and model size but not its weights (the baseline)")
    p.add_argument("--tokenizer", help="check the checkpoint against this tokenizer JSON (default: the run's own)")
    p.add_argument("--labels-per-class", type=int, default=None, help="few labels: at most N training examples per class")
    # the first pooling, the [CLS] state, is BERT's and SequenceClassifier's default (tests/test_cli.py checks it)
    p.add_argument("--pooling", choices=CLASSIFIER_POOLINGS, default=CLASSIFIER_POOLINGS[0],
                   help="sequence classification pooling")
    p.add_argument("--lr", type=float, default=defaults.lr, action=_Given,
                   help=f"peak learning rate (default: {defaults.lr:g}; with --hf {PUBLISHED_DEFAULTS.finetune_lr:g})")
    p.add_argument("--max-steps", type=int, default=defaults.max_steps)
    p.add_argument("--max-length", type=int, default=defaults.max_length)
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)


def _add_coursework_command(sub) -> None:
    p = sub.add_parser("coursework", help="for instructors: what to hand out to students")
    coursework = p.add_subparsers(dest="coursework_command", required=True)
    p = coursework.add_parser(
        "student-edition", help="copies of the notebooks with solutions replaced by stubs, outputs cleared",
        description="Write every notebook of the book to OUT_DIR with each exercise's solution replaced by a "
                    "stub that raises NotImplementedError (signatures, docstrings and the check call kept), "
                    "the placeholder attempts and hidden solution asserts dropped, and all outputs cleared.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="where to write the student notebooks (not the book directory)")
    p.add_argument("--book", metavar="DIR", default=None,
                   help="the directory of the book's notebooks (default: book/ of this repository checkout)")
    p.set_defaults(func=cmd_student_edition)


#: One function per command, in the order ``--help`` lists them.
COMMANDS = (_add_corpus_command, _add_tokenizer_command, _add_fragmentation_command, _add_pretrain_command,
            _add_export_command, _add_fill_mask_command, _add_dapt_command, _add_finetune_command, _add_coursework_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlm_lessons", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser

def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = "python -m mlm_lessons " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except (ValueError, ImportError, HubUnavailable) as exc:  # bad input, or an optional library or network missing
        print(f"error: {exc}", file=sys.stderr)
        return 2
