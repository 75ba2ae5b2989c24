"""mlm_lessons: the companion package of the book *Masked Language Modeling, Step by Step*.

The top level is the MLM chain, each module importing only those before it. At its base,
``settings`` holds the plain configurations, presets and lists of allowed values, with no PyTorch
(the command line's parser reads them), checked by the rules of ``_checks``. Then:
``corpus`` (ch. 1) -> ``tokenizer`` (ch. 1) -> ``masking`` (ch. 2; beside it ``segments``: BERT's
segment pairs and next-sentence prediction, which the book's models do without) -> ``objective`` (ch. 3) ->
``model`` (ch. 4) -> the training engine (``seeding``: named random streams, ``batches``: a batch
source per objective, ``engine``: the optimizer step, early stopping and ``fit``, the one training
loop every kind of training runs through, ``rundir``: every file of a run and the run cache) ->
``training`` (pretraining, ch. 5) -> ``adaptation`` (DAPT, ch. 7) -> ``heads`` (classification and
token-labeling heads) -> ``tasks`` (the tasks and their kinds, which own head, encoding, decoding and
metrics) -> ``finetuning`` -> ``retrieval`` and ``comparison`` (ch. 8) -> ``ablations`` (ch. 6, which
judges pretraining by fine-tuning);
``generation`` and ``scoring`` (ch. 9) and ``word_bits`` (ch. 7: bits per character at hidden words,
comparable across tokenizers) build on ``model``; ``hf`` exports to ``transformers`` (BERT's and
ModernBERT's layouts, and the fine-tuned heads on the latter, exactly) and writes Hub-ready folders;
after it ``published`` takes a published ``transformers`` masked LM (a folder or a Hub id, with its own
fast tokenizer) as a starting point that ``dapt`` and ``finetune`` train through the same engine;
``corpus.hub`` streams WikiText-103 and arXiv abstracts from the Hugging Face Hub for readers with a
network (optional); ``synthetic`` (after ``tokenizer``) generates a language from a hidden Markov
model and computes its exact masked, left-to-right and topic conditionals;
``cli`` is the command line.

``teaching/`` is the book's layer on top of the chain: ``display``, ``plots``, ``widgets``,
``explorer`` (the widgets' job in a browser, for the online book), ``exercises`` (a module per
chapter), ``claims`` (the chapters' tolerant checks of trained models) and ``coursework``.

The public names below are imported on first use, so that ``import mlm_lessons`` stays light: the
corpus harvest in particular must run in an interpreter where PyTorch has not been imported
(importing it patches the standard library, e.g. ``inspect.getfile``).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "corpus": ["CORPUS_NAMES", "HUB_CORPUS_NAMES", "Corpus", "CorpusStats", "Document", "clean_docstring", "load_corpus",
               "load_hub_corpus", "split_of", "word_frequencies", "zipf_exponent"],
    "tokenizer": ["SPECIAL_TOKENS", "Fragmentation", "MLMTokenizer", "tokenizer_from_vocab", "train_tokenizer"],
    "masking": ["IGNORE_INDEX", "Fate", "MaskedBatch", "MaskingConfig", "MLMCollator", "expected_counts",
                "mask_once", "mask_tokens", "mask_tokens_explained", "num_to_select", "pack_examples"],
    "segments": ["SentencePair", "next_sentence_pairs", "overlap_baseline", "split_sentences"],
    "objective": ["context_free_baselines", "masked_accuracy", "masked_lm_loss", "perplexity", "token_counts",
                  "uniform_baseline", "unigram_baseline"],
    "synthetic": ["HiddenMarkovLanguage", "random_language"],
    "teaching.claims": ["claim"],
    "teaching.exercises": ["check"],
    "teaching.coursework": ["student_edition"],
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [*_HOME, "__version__"]


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlm_lessons' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
