"""A BERT-style WordPiece tokenizer, trained with Hugging Face ``tokenizers`` on a corpus's train split.

The five special tokens have fixed ids, so that every later chapter can rely on them:
``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``. Encoding adds ``[CLS] ... [SEP]``; batches come back as
padded tensors with an attention mask and the word index of every piece (for whole-word masking).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from ._checks import require_int

__all__ = [
    "SPECIAL_TOKENS", "PAD", "UNK", "CLS", "SEP", "MASK", "MLMTokenizer", "train_tokenizer",
    "tokenizer_from_vocab", "wordpiece_tokenizer", "check_texts", "Fragmentation", "BatchEncoding",
]

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
#: Special tokens in id order: the position in this tuple is the id.
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)


@dataclass(frozen=True)
class Fragmentation:
    """How a tokenizer cuts words into pieces.

    ``pieces_per_word`` is the mean number of pieces per word; ``share_split`` the fraction of words
    cut into two or more pieces; ``unk_rate`` the fraction of words that became ``[UNK]``. Words are
    the pre-tokenizer's units that contain a letter or digit (punctuation is not counted).
    """

    words: int
    pieces: int
    split_words: int
    unk_words: int

    @property
    def pieces_per_word(self) -> float:
        return self.pieces / self.words if self.words else float("nan")

    @property
    def share_split(self) -> float:
        return self.split_words / self.words if self.words else float("nan")

    @property
    def unk_rate(self) -> float:
        return self.unk_words / self.words if self.words else float("nan")

    def as_row(self) -> dict:
        return {
            "words": self.words, "pieces per word": round(self.pieces_per_word, 3),
            "share split": round(self.share_split, 4), "unk rate": round(self.unk_rate, 5),
        }


class BatchEncoding(dict):
    """``input_ids`` and ``attention_mask`` as LongTensors [batch, length], ``word_ids`` as lists.

    A dict (so ``model(**batch)``-style code works) with attribute access for convenience.
    """

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _word_list(words, e: int) -> list[str]:
    """Example ``e`` of :meth:`MLMTokenizer.pieces_by_word` as a list of str, or a ValueError."""
    if isinstance(words, str):
        raise ValueError(f"examples[{e}] is a single str; each example is a list of words: {words!r:.60}")
    words = list(words)
    for w, word in enumerate(words):
        if not isinstance(word, str):
            raise ValueError(f"examples[{e}][{w}] is a {type(word).__name__}, not a str: {word!r:.60}")
    return words


def check_texts(texts, what: str) -> list[str]:
    """``texts`` as a list of strings, or a ValueError naming ``what`` and the fix (a lone str, an empty list, a non-str)."""
    if isinstance(texts, str):
        raise ValueError(f"{what} must be a list of strings, got a single str; wrap it: [text]")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{what} is empty; pass at least one string")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{what}[{i}] is a {type(t).__name__}, not a str: {t!r:.60}")
    return texts


class MLMTokenizer:
    """A thin, documented wrapper around a ``tokenizers.Tokenizer`` with BERT's conventions."""

    def __init__(self, tokenizer: Tokenizer):
        for i, tok in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(tok) != i:
                raise ValueError(
                    f"special token {tok} must have id {i}, found {tokenizer.token_to_id(tok)!r}; "
                    f"train with mlm_lessons.train_tokenizer, which fixes {dict(enumerate(SPECIAL_TOKENS))}"
                )
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    # -- ids ---------------------------------------------------------------------------------
    pad_id, unk_id, cls_id, sep_id, mask_id = range(5)
    special_ids = frozenset(range(len(SPECIAL_TOKENS)))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def token_to_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self.tokenizer.id_to_token(i)

    def get_vocab(self) -> dict[str, int]:
        return self.tokenizer.get_vocab()

    # -- text -> pieces -> ids ----------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """The pieces of ``text``, without ``[CLS]``/``[SEP]``: ``"autograd"`` -> ``['auto', '##grad']``."""
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str, *, add_special_tokens: bool = True, max_length: int | None = None) -> list[int]:
        """Token ids of one text, ``[CLS] ... [SEP]`` included unless ``add_special_tokens=False``."""
        if not isinstance(text, str):
            raise ValueError(f"encode expects a str, got {type(text).__name__}")
        enc = self.tokenizer.encode(text, add_special_tokens=add_special_tokens)
        ids = enc.ids
        if max_length is not None:
            ids = self._truncate(ids, max_length, add_special_tokens)
        return ids

    def _truncate(self, ids: list[int], max_length: int, specials: bool) -> list[int]:
        least = 3 if specials else 1
        if not isinstance(max_length, int) or max_length < least:
            raise ValueError(f"max_length={max_length!r} leaves no room for a token; use at least {least}")
        if len(ids) <= max_length:
            return ids
        return ids[: max_length - 1] + [self.sep_id] if specials else ids[:max_length]

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text from ids; pieces are glued back (``auto ##grad`` -> ``autograd``)."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"id {bad[0]} is outside the vocabulary [0, {self.vocab_size})")
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def __call__(self, texts, **kwargs) -> BatchEncoding:
        return self.encode_batch(texts, **kwargs)

    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        max_length: int = 128,
        padding: str | bool = "longest",
        return_tensors: str | None = "pt",
    ) -> BatchEncoding:
        """Encode texts to ``input_ids``, ``attention_mask`` (1 = real token) and ``word_ids``.

        Sequences longer than ``max_length`` are truncated (their last piece becomes ``[SEP]``).
        ``padding="longest"`` pads to the longest sequence of the batch, ``"max_length"`` to
        ``max_length``, ``False`` leaves lists of different lengths (then no tensors).
        ``word_ids[b][t]`` is the index of the word piece ``t`` belongs to, ``None`` at specials.
        """
        texts = check_texts(texts, "texts")
        require_int(max_length, "max_length", 2, why=" (room for [CLS] and [SEP])")
        if padding not in ("longest", "max_length", False, True):
            raise ValueError(f"padding must be 'longest', 'max_length' or False, got {padding!r}")
        if return_tensors not in ("pt", None):
            raise ValueError(f"return_tensors must be 'pt' or None, got {return_tensors!r}")
        if padding is True:
            padding = "longest"
        self.tokenizer.enable_truncation(max_length=max_length)
        if padding:  # the library's own padding (word id None and attention 0 at the padding)
            self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.id_to_token(self.pad_id),
                                          length=max_length if padding == "max_length" else None)
        try:
            encs = self.tokenizer.encode_batch(texts)
        finally:
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
        ids = [e.ids for e in encs]
        word_ids = [list(e.word_ids) for e in encs]
        mask = [e.attention_mask for e in encs]
        if return_tensors == "pt":
            if not padding and len({len(x) for x in ids}) > 1:
                raise ValueError("sequences of different lengths cannot form a tensor; use padding='longest'")
            import torch  # here, not at the top: the tokenizer itself needs no PyTorch (lists come back without it)

            ids = torch.tensor(ids, dtype=torch.long)
            mask = torch.tensor(mask, dtype=torch.long)
        return BatchEncoding(input_ids=ids, attention_mask=mask, word_ids=word_ids)

    def encode_examples(self, texts: Sequence[str], *, max_length: int = 128) -> list[dict]:
        """One dict per text, ``{"input_ids": [...], "word_ids": [...]}``, unpadded: a dataset for
        :class:`mlm_lessons.masking.MLMCollator`, which pads and masks each batch."""
        enc = self.encode_batch(texts, max_length=max_length, padding=False, return_tensors=None)
        return [{"input_ids": i, "word_ids": w} for i, w in zip(enc["input_ids"], enc["word_ids"])]

    def encode_pair(self, first: str, second: str, *, max_length: int = 128) -> dict:
        """Two segments in one sequence, as BERT read them: ``[CLS] first [SEP] second [SEP]``.

        Returns ``input_ids``, ``token_type_ids`` (the *segment* of each position: 0 for ``[CLS]``,
        the first segment and its ``[SEP]``, 1 for the second segment and the last ``[SEP]``) and
        ``word_ids``, as lists. Longer pairs are cut from the end of the longer segment. The book's
        models read one segment (they have no segment embeddings); this is what BERT's
        next-sentence prediction needs (:mod:`mlm_lessons.segments`).
        """
        first, second = check_texts([first, second], "segments")
        require_int(max_length, "max_length", 5, why=" (room for [CLS], two [SEP] and a piece of each segment)")
        self.tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
        try:
            enc = self.tokenizer.encode(first, second)
        finally:
            self.tokenizer.no_truncation()
        return {"input_ids": list(enc.ids), "token_type_ids": list(enc.type_ids), "word_ids": list(enc.word_ids)}

    def encode_chunks(self, texts: Sequence[str], *, max_length: int = 128) -> list[dict]:
        """Every text cut into consecutive chunks of at most ``max_length`` tokens, ``[CLS]`` and
        ``[SEP]`` included, so that no text is lost to truncation.

        Chunks end at word boundaries (a word longer than a whole chunk is the one exception), and
        ``word_ids`` are renumbered from 0 in each chunk, ready for whole-word masking.
        """
        texts = check_texts(texts, "texts")
        require_int(max_length, "max_length", 3, why=" (room for [CLS], a piece and [SEP])")
        budget = max_length - 2
        chunks = []
        for enc in self.tokenizer.encode_batch(texts, add_special_tokens=False):
            words: list[list[int]] = []
            last = object()
            for piece, w in zip(enc.ids, enc.word_ids):
                if w is None or w != last:
                    words.append([])
                words[-1].append(piece)
                last = w
            current: list[list[int]] = []
            size = 0
            for word in words:
                while len(word) > budget:  # a single word longer than a chunk: cut it
                    if current:
                        chunks.append(self._chunk(current))
                        current, size = [], 0
                    chunks.append(self._chunk([word[:budget]]))
                    word = word[budget:]
                if size + len(word) > budget:
                    chunks.append(self._chunk(current))
                    current, size = [], 0
                current.append(word)
                size += len(word)
            if current:
                chunks.append(self._chunk(current))
        return chunks

    def _chunk(self, words: list[list[int]]) -> dict:
        ids = [self.cls_id] + [p for w in words for p in w] + [self.sep_id]
        word_ids = [None] + [i for i, w in enumerate(words) for _ in w] + [None]
        return {"input_ids": ids, "word_ids": word_ids}

    # -- pieces without special tokens --------------------------------------------------------
    def piece_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """For each text, its piece ids without ``[CLS]``/``[SEP]``, untruncated and unpadded.

        ``tok.piece_ids(["autograd", "the tensor"])`` -> ``[[auto, ##grad], [the, tensor]]`` (as ids).
        An empty list gives an empty list. The texts are encoded as one batch (in parallel), so
        this is the fast way to cut many words or texts into pieces.
        """
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, got a single str; wrap it: [text]")
        texts = list(texts)
        if not texts:
            return []
        texts = check_texts(texts, "texts")
        return [enc.ids for enc in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def piece_ids_with_words(self, text: str) -> tuple[list[int], list[int | None]]:
        """The piece ids of one text without ``[CLS]``/``[SEP]`` and, for each piece, the index of
        the word it belongs to (into :meth:`words`): ``"the autograd"`` -> ``([the, auto, ##grad], [0, 1, 1])``."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        return list(enc.ids), list(enc.word_ids)

    def pieces_by_word(self, examples: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """For each example (a list of words, already split), for each word, its piece ids.

        The words are read as given (``is_pretokenized``: never merged, each normalised and cut on
        its own, without ``[CLS]``/``[SEP]``), so ``out[e][w]`` are the pieces of word ``w`` of
        example ``e`` – what word-level labels (tagging) need. A word the normaliser erases
        entirely (a lone control character such as ``"\\x07"``) gets an empty list. An empty list
        of examples gives an empty list.
        """
        if isinstance(examples, str):
            raise ValueError("examples must be a list of word lists, got a single str")
        examples = [_word_list(ws, e) for e, ws in enumerate(examples)]
        if not examples:
            return []
        encs = self._word_reader().encode_batch(examples, is_pretokenized=True, add_special_tokens=False)
        out = []
        for words, enc in zip(examples, encs):
            pieces: list[list[int]] = [[] for _ in words]
            for piece, w in zip(enc.ids, enc.word_ids):
                pieces[w].append(piece)
            out.append(pieces)
        return out

    def _word_reader(self) -> Tokenizer:
        """The tokenizer that reads words given one by one (:meth:`pieces_by_word`): this one, whose
        pre-tokenizer needs no space before a word to know it starts one."""
        return self.tokenizer

    # -- words ------------------------------------------------------------------------------
    def words(self, text: str) -> list[str]:
        """The words the tokenizer sees after normalisation and pre-tokenisation."""
        norm = self.tokenizer.normalizer.normalize_str(text) if self.tokenizer.normalizer else text
        return [w for w, _ in self.tokenizer.pre_tokenizer.pre_tokenize_str(norm)]

    def fragmentation(self, texts: Iterable[str]) -> Fragmentation:
        """Pieces per word, share of words split and ``[UNK]`` rate over ``texts``."""
        texts = check_texts(texts, "texts")
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(w for w in self.words(t) if any(ch.isalnum() for ch in w))
        return self._fragmentation_of_counts(counts)

    def _fragmentation_of_counts(self, counts: Counter) -> Fragmentation:
        words = pieces = split = unk = 0
        # Tokenize each distinct word once: corpora repeat words a lot.
        vocab = sorted(counts)
        for w, ids in zip(vocab, self.piece_ids(vocab)):
            n = counts[w]
            words += n
            pieces += n * len(ids)
            split += n * (len(ids) > 1)
            unk += n * (self.unk_id in ids)
        return Fragmentation(words, pieces, split, unk)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer as one JSON file (the ``tokenizers`` format)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MLMTokenizer":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"tokenizer file {str(path)!r} does not exist; train one with train_tokenizer(...).save(path)")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a generic Exception on bad JSON
            raise ValueError(f"{str(path)!r} is not a tokenizers JSON file: {exc}") from None
        return cls(tok)

    def save_vocab(self, path: str | os.PathLike) -> Path:
        """Write ``vocab.txt`` (one token per line, in id order), the format of BERT's tokenizers."""
        path = Path(path)
        vocab = sorted(self.get_vocab().items(), key=lambda kv: kv[1])
        path.write_text("".join(tok + "\n" for tok, _ in vocab), encoding="utf-8")
        return path

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    def __eq__(self, other) -> bool:
        return isinstance(other, MLMTokenizer) and json.loads(self.to_json()) == json.loads(other.to_json())

    @property
    def fingerprint(self) -> str:
        """A short hash of the vocabulary (tokens in id order): equal fingerprints, same ids. Models
        record it in their configuration (``EncoderConfig.vocab_fingerprint``)."""
        vocab = sorted(self.get_vocab().items(), key=lambda kv: kv[1])
        return hashlib.sha256("\n".join(t for t, _ in vocab).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MLMTokenizer(vocab_size={self.vocab_size:,}, specials={dict(enumerate(SPECIAL_TOKENS))})"


def _blank_tokenizer(lowercase: bool) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return tok


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    *,
    min_frequency: int = 2,
    lowercase: bool = True,
    limit_alphabet: int | None = 1000,
) -> MLMTokenizer:
    """Train a BERT-style WordPiece tokenizer on ``texts`` (e.g. ``corpus.texts("train")``).

    The vocabulary holds the five special tokens (ids 0-4), every character kept in the alphabet
    (at most ``limit_alphabet`` of the most frequent ones) and the learned pieces, ``vocab_size``
    entries in all. Asking for fewer entries than the specials plus the alphabet is an error, not a
    silently larger vocabulary.
    """
    texts = check_texts(texts, "texts")
    if not any(t.strip() for t in texts):
        raise ValueError(f"all {len(texts)} texts are empty or whitespace; nothing to learn from")
    if not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size={vocab_size!r} cannot hold the {len(SPECIAL_TOKENS)} special tokens "
            f"{', '.join(SPECIAL_TOKENS)} and any text; use a few thousand (the book uses 8000)"
        )
    if not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be a positive int, got {min_frequency!r}")
    tok = _blank_tokenizer(lowercase)
    # The trainer creates the word-continuing pieces "##x" in the iteration order of a hash map, and
    # their ids break ties between equally frequent merges: the same text could give a different
    # vocabulary from run to run (huggingface/tokenizers#1794). Declaring every "##x" up front, in
    # sorted order, fixes their ids; they are turned back into ordinary pieces below.
    continuing = _continuing_pieces(tok, texts)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS) + continuing,
        limit_alphabet=limit_alphabet,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    if tok.get_vocab_size() > vocab_size:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the {len(SPECIAL_TOKENS)} special tokens and the "
            f"alphabet of the training text (each character alone and as a word-continuing \"##\" piece) "
            f"need {tok.get_vocab_size()} entries; raise vocab_size or lower limit_alphabet (now {limit_alphabet})"
        )
    return wordpiece_tokenizer(tok.get_vocab(), lowercase=lowercase)  # only the five real specials stay special


def _continuing_pieces(tok: Tokenizer, texts: list[str]) -> list[str]:
    """``"##x"`` for every character that occurs inside a word (after normalisation), sorted."""
    chars: set[str] = set()
    for t in texts:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(t)):
            chars.update(word[1:])
    return sorted("##" + c for c in chars)


def wordpiece_tokenizer(vocab: dict[str, int], *, lowercase: bool = True) -> MLMTokenizer:
    """A BERT-style WordPiece tokenizer with exactly the pieces and ids of ``vocab`` (the five
    specials at ids 0-4, marked special: never split, skipped by ``decode``), BERT's normaliser and
    pre-tokenizer, and its post-processing: ``[CLS] A [SEP]`` for one text, ``[CLS] A [SEP] B [SEP]``
    for a pair. Training, :func:`tokenizer_from_vocab` and a vocabulary extended for a domain
    (``adaptation.extend_vocabulary``) all end here."""
    tok = _blank_tokenizer(lowercase)
    tok.model = models.WordPiece(vocab=dict(vocab), unk_token=UNK, continuing_subword_prefix="##", max_input_chars_per_word=100)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, SPECIAL_TOKENS.index(CLS)), (SEP, SPECIAL_TOKENS.index(SEP))],
    )
    return MLMTokenizer(tok)


def tokenizer_from_vocab(tokens: Sequence[str], *, lowercase: bool = True) -> MLMTokenizer:
    """A tokenizer with exactly the given pieces (after the five specials, which come first).

    Useful for small worked examples and tests, where you want to know every id in advance:
    ``tokenizer_from_vocab(["auto", "##grad"]).tokenize("autograd") == ["auto", "##grad"]``.
    """
    tokens = list(tokens)
    bad = [t for t in tokens if not isinstance(t, str) or not t or any(ch.isspace() for ch in t)]
    if bad:
        raise ValueError(f"vocabulary entries must be non-empty strings without spaces, got {bad[0]!r}")
    specials_given = [t for t in tokens if t in SPECIAL_TOKENS]
    if specials_given:
        raise ValueError(f"do not list special tokens ({specials_given[0]}); they are added with ids 0-4")
    dupes = sorted({t for t in tokens if tokens.count(t) > 1})
    if dupes:
        raise ValueError(f"vocabulary entries must be unique; repeated: {dupes[:5]}")
    return wordpiece_tokenizer({t: i for i, t in enumerate(list(SPECIAL_TOKENS) + tokens)}, lowercase=lowercase)
