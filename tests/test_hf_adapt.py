"""Published ``transformers`` masked LMs as starting points (:mod:`mlm_lessons.published`): tiny random
``BertForMaskedLM``, ``DistilBertForMaskedLM``, ``RobertaForMaskedLM`` and ``ModernBertForMaskedLM`` folders
with tokenizers trained here on python-docs (WordPiece, and byte-level BPE for RoBERTa), adapted to
pytorch-docs through the package's engine and fine-tuned on both tasks, and the CLI's ``--hf``.

Nothing here touches the network: ``HF_HUB_OFFLINE=1`` is set before ``transformers`` is imported."""

from __future__ import annotations

import inspect
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # noqa: E402 – before transformers (and huggingface_hub) read it

import pytest
import torch

transformers = pytest.importorskip("transformers")

from mlm_lessons.adaptation import dapt  # noqa: E402
from mlm_lessons.batches import PretrainBatches  # noqa: E402
from mlm_lessons.cli import main  # noqa: E402
from mlm_lessons.finetuning import FinetuneConfig, finetune  # noqa: E402
from mlm_lessons.masking import Fate, MaskingConfig, mask_tokens_explained, pack_examples, pad_examples  # noqa: E402
from mlm_lessons.published import (  # noqa: E402
    PublishedClassifier,
    PublishedMLM,
    load_published,
    mask_loss_summary,
    published_classifier,
    published_dapt_config,
    save_published,
)
from mlm_lessons.tasks import TaskData, encode_tagging, load_task  # noqa: E402
from mlm_lessons.training import evaluate, eval_batches  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHITECTURES = ("bert", "distilbert", "roberta", "modernbert")
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
MAX_LEN = 128


# -- the tiny published folders -----------------------------------------------------------------------


def wordpiece_tokenizer(texts):
    """A BERT-style WordPiece tokenizer whose special ids are not ours: [UNK] 0, [CLS] 1, [SEP] 2, [PAD] 3, and
    [MASK] added at the end (as RoBERTa's <mask> is)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=1000, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"],
                                                            show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                                pad_token="[PAD]", mask_token="[MASK]", model_max_length=MAX_LEN)


def byte_level_tokenizer(texts, folder):
    """RoBERTa's tokenizer: byte-level BPE with <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 4."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=1000, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    cls = transformers.RobertaTokenizerFast
    if "vocab" in inspect.signature(cls.__init__).parameters:  # transformers 5: the vocabulary and merges themselves
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
        return cls(vocab=vocab, merges=[tuple(line.split(" ")) for line in lines if line], model_max_length=MAX_LEN)
    return cls(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"), model_max_length=MAX_LEN)


def tiny_model(name: str, tok):
    """A random masked LM of ``name``'s architecture for ``tok`` (ModernBERT's with more embedding rows than ids,
    padded to a multiple of 64 as the published ModernBERT's are)."""
    ids = dict(pad_token_id=tok.pad_token_id)
    if name == "bert":
        return transformers.BertForMaskedLM(transformers.BertConfig(vocab_size=len(tok), max_position_embeddings=MAX_LEN, **ids, **TINY))
    if name == "distilbert":
        return transformers.DistilBertForMaskedLM(transformers.DistilBertConfig(
            vocab_size=len(tok), max_position_embeddings=MAX_LEN, dim=32, n_layers=2, n_heads=2, hidden_dim=64, **ids))
    if name == "roberta":  # positions start after the padding id: two more rows than the longest input
        return transformers.RobertaForMaskedLM(transformers.RobertaConfig(
            vocab_size=len(tok), max_position_embeddings=MAX_LEN + 2, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            **ids, **TINY))
    return transformers.ModernBertForMaskedLM(transformers.ModernBertConfig(
        vocab_size=64 * -(-len(tok) // 64), max_position_embeddings=MAX_LEN, cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, global_attn_every_n_layers=1, **ids, **TINY))


@pytest.fixture(scope="module")
def folders(tmp_path_factory, corpora) -> dict:
    """Each architecture saved with save_pretrained, its tokenizer trained on 400 python-docs texts."""
    root = tmp_path_factory.mktemp("published")
    texts = corpora["python-docs"].texts("train")[:400]
    wordpiece, bpe = wordpiece_tokenizer(texts), byte_level_tokenizer(texts, root / "bpe")
    out = {}
    for name in ARCHITECTURES:
        tok = bpe if name == "roberta" else wordpiece
        torch.manual_seed(0)
        out[name] = root / name
        tiny_model(name, tok).save_pretrained(out[name])
        tok.save_pretrained(out[name])
    return out


@pytest.fixture(scope="module")
def texts(corpora) -> dict:
    domain, general = corpora["pytorch-docs"], corpora["python-docs"]
    return {"train": domain.texts("train")[:300], "valid": domain.texts("valid")[:40], "general": general.texts("valid")[:40]}


def _logits(hf, batch) -> torch.Tensor:
    with torch.no_grad():
        return hf.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


# -- the tokenizer adapter ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_the_tokenizer_adapter_reads_each_tokenizer_as_it_is(folders, texts, name):
    model, tok = load_published(folders[name])
    hf_tok = transformers.AutoTokenizer.from_pretrained(folders[name])
    assert isinstance(model, PublishedMLM) and model.config.architecture.lower().startswith(name)
    assert tok.vocab_size == len(hf_tok) <= model.config.embedding_rows == model.hf.get_input_embeddings().weight.shape[0]
    assert tok.special_ids == set(hf_tok.all_special_ids) and tok.mask_id == hf_tok.mask_token_id and tok.pad_id == hf_tok.pad_token_id
    assert (tok.cls_id, tok.sep_id) == (hf_tok.cls_token_id, hf_tok.sep_token_id) and tok.word_level
    assert model.config.max_len == MAX_LEN and model.config.vocab_fingerprint == tok.fingerprint
    if name == "modernbert":
        assert model.config.embedding_rows > tok.vocab_size  # rows no id reaches
    text = texts["valid"][0]
    ours = tok.encode_batch([text], max_length=48, padding=False, return_tensors=None)["input_ids"][0]
    assert ours == hf_tok(text, truncation=True, max_length=48)["input_ids"]  # the same ids and framing as transformers
    for chunk in tok.encode_chunks(texts["valid"][:5], max_length=32):
        ids, words = chunk["input_ids"], chunk["word_ids"]
        assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id and words[0] is None and words[-1] is None and len(ids) <= 32
        assert all(w is not None for w in words[1:-1])
    # words given one by one are read as inside a text: for byte-level BPE, each with the space before it
    words = [w for w in texts["valid"][1].split() if w.isalpha()][:20]
    pieces = [p for word in tok.pieces_by_word([words])[0] for p in word]
    assert pieces == hf_tok((" " if name == "roberta" else "") + " ".join(words), add_special_tokens=False)["input_ids"]
    if name == "roberta":
        assert all(tok.id_to_token(word[0]).startswith("Ġ") for word in tok.pieces_by_word([words])[0])


def test_token_labels_sit_at_each_words_first_piece_for_bpe_as_for_wordpiece(folders):
    task = load_task("code-spans")
    examples = task.valid[:10]
    for name in ("roberta", "bert"):
        _, tok = load_published(folders[name])
        for chunk in encode_tagging(tok, examples, 64):
            example = examples[chunk["example"]]
            labelled = [i for i, y in enumerate(chunk["labels"]) if y != -100]
            assert [chunk["labels"][i] for i in labelled] == [example.labels[w] for w in chunk["words"]]
            firsts = [tok.pieces_by_word([[example.words[w]]])[0][0][0] for w in chunk["words"]]
            assert [chunk["input_ids"][i] for i in labelled] == firsts  # the word's first piece, read on its own
            if name == "roberta":
                assert all(tok.id_to_token(chunk["input_ids"][i]).startswith("Ġ") for i in labelled)


# -- masking: nothing special, random tokens from the vocabulary ----------------------------------------


@pytest.mark.parametrize("name", ("roberta", "bert", "modernbert"))
def test_nothing_special_is_ever_masked_nor_put_in(folders, texts, name):
    """A property over 300 batches: the specials (framing, padding, and special tokens written in the text
    itself) are never selected, random replacements are real non-special ids, with and without whole words."""
    _, tok = load_published(folders[name])
    written = [f"{tok.id_to_token(tok.mask_id)} and {tok.id_to_token(tok.cls_id)} are written here {t[:200]}" for t in texts["train"][:40]]
    rows = pack_examples(tok.encode_chunks(written + texts["train"][:40], max_length=24), max_length=48)
    specials = torch.tensor(sorted(tok.special_ids))
    seen = {"special": 0, "random": 0}
    for trial in range(300):
        config = MaskingConfig(mask_ratio=0.5, p_mask=0.4, p_random=0.4, p_keep=0.2, whole_word=trial % 2 == 1)
        generator = torch.Generator().manual_seed(trial)
        chosen = torch.randperm(len(rows), generator=generator)[:8].tolist()
        batch = pad_examples([rows[i] for i in chosen], pad_id=tok.pad_id)
        masked = mask_tokens_explained(batch["input_ids"], config, mask_token_id=tok.mask_id, vocab_size=tok.vocab_size,
                                       special_ids=tok.special_ids, generator=generator, word_ids=batch["word_ids"])
        is_special = torch.isin(batch["input_ids"], specials)
        assert not (masked.selected & is_special).any()
        put_in = masked.inputs[masked.fate == Fate.RANDOM]
        assert not torch.isin(put_in, specials).any() and bool((put_in < tok.vocab_size).all())
        seen["special"] += int(is_special.sum())
        seen["random"] += put_in.numel()
    assert seen["special"] > 1000 and seen["random"] > 1000  # the property was put to the test
    steps = PretrainBatches(rows, tok, batch_size=8, seed=0, masking=MaskingConfig(whole_word=True))
    for step in range(50):  # the training batches themselves
        (b,) = steps(step)
        original = torch.where(b["labels"] != -100, b["labels"], b["input_ids"])
        assert not torch.isin(b["labels"][b["labels"] != -100], specials).any()
        assert torch.equal(torch.isin(original, specials), torch.isin(b["input_ids"], specials) & (b["labels"] == -100))


def test_a_vocabularys_placeholders_are_never_put_in(texts):
    """BERT's vocabulary reserves [unused0] … as ordinary entries: no text produces them, so a random
    replacement must not either; they count among the special ids (and [MASK] may sit anywhere)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    from mlm_lessons.published import PublishedTokenizer

    words = sorted({w for t in texts["train"][:50] for w in t.lower().split() if w.isalpha()})[:300]
    vocab = {t: i for i, t in enumerate(["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", *words, "[MASK]"])}
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    backend.normalizer, backend.pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 4), ("[SEP]", 5)])
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                              pad_token="[PAD]", mask_token="[MASK]")
    tok = PublishedTokenizer(hf, "a BERT-style vocabulary")
    assert {1, 2, 0, 3, 4, 5, vocab["[MASK]"]} == tok.special_ids and tok.vocab_size == len(vocab)
    batch = pad_examples(tok.encode_chunks(texts["train"][:20], max_length=32), pad_id=tok.pad_id)
    config = MaskingConfig(mask_ratio=1.0, p_mask=0.0, p_random=1.0, p_keep=0.0)
    for seed in range(20):
        masked = mask_tokens_explained(batch["input_ids"], config, mask_token_id=tok.mask_id, vocab_size=tok.vocab_size,
                                       special_ids=tok.special_ids, generator=torch.Generator().manual_seed(seed))
        assert not torch.isin(masked.inputs[masked.fate == Fate.RANDOM], torch.tensor(sorted(tok.special_ids))).any()


# -- domain-adaptive pretraining -------------------------------------------------------------------------


def dapt_config(model, tok, steps: int = 30, seed: int = 0, eval_every: int | None = None, **kw):
    return published_dapt_config(model, tok, steps, lr=2e-3, eval_every=eval_every or steps, max_length=64, eval_sequences=64,
                                 seed=seed, device="cpu", **kw)


# 30 steps at 2e-3 lower the pytorch-docs [MASK] loss of every tiny random model by 0.63 to 0.78 nats (seeds 0, 1
# and 2, all four architectures, from about ln(1000) = 6.9): a margin of 0.3 leaves room for other seeds and versions.
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_dapt_lowers_the_domain_mask_loss_and_writes_a_folder_transformers_loads(folders, texts, tmp_path, name):
    model, tok = load_published(folders[name])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = dapt(model, tok, texts["train"], texts["valid"], texts["general"], dapt_config(model, tok), patience=None,
                  progress=False)
    first, last = result.evaluations()[0], result.evaluations()[-1]
    assert (first["step"], last["step"]) == (0, 30)
    assert last["valid_mask_loss"] < first["valid_mask_loss"] - 0.3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # trained on a copy
    # the adapter's loss is the model's own (labels=), its logits those of the labelled positions only
    (b, *_) = eval_batches(tok, texts["valid"][:8], dapt_config(model, tok))
    with torch.no_grad():
        ours = model.eval()(b["input_ids"], b["attention_mask"], b["labels"])
        theirs = model.hf(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
    assert float(ours.loss) == pytest.approx(float(theirs), rel=1e-5)
    assert ours.logits.shape == (int((b["labels"] != -100).sum()), model.config.embedding_rows)
    # step 0 is the published model itself, scored by the package's evaluation
    assert first["valid_mask_loss"] == pytest.approx(
        evaluate(model, eval_batches(tok, texts["valid"], dapt_config(model, tok)), torch.device("cpu"))["mask_loss"], rel=1e-6)

    summary = mask_loss_summary(result.history, names={"valid": "pytorch-docs", "general": "python-docs"})
    out = save_published(result.model, tok, tmp_path / "adapted", data="pytorch-docs (test slice)", steps=30, metrics=summary)
    loaded = transformers.AutoModelForMaskedLM.from_pretrained(out)
    assert type(loaded) is type(model.hf)
    batch = pad_examples(tok.encode_chunks(texts["valid"][:4], max_length=64), pad_id=tok.pad_id)
    assert torch.equal(_logits(loaded, batch), _logits(result.model.hf, batch))
    assert transformers.AutoTokenizer.from_pretrained(out)(texts["valid"][0])["input_ids"] == tok.encode(texts["valid"][0])
    card = (out / "README.md").read_text(encoding="utf-8")
    assert str(folders[name]) in card and "pytorch-docs [MASK] loss before (step 0)" in card
    assert f"{last['valid_mask_loss']:.4f}" in card


@pytest.mark.parametrize("name", ("roberta", "bert"))
def test_resume_is_exact(folders, texts, tmp_path, name):
    """A run stopped after step 3 and resumed ends with the weights and history of one run in one go (dropout on)."""
    model, tok = load_published(folders[name])
    assert model.hf.config.hidden_dropout_prob > 0
    config = dapt_config(model, tok, steps=6, eval_every=2, log_every=1)
    common = (model, tok, texts["train"][:80], texts["valid"][:10], texts["general"][:10], config)
    whole = dapt(*common, patience=None, out_dir=tmp_path / "whole", progress=False)
    dapt(*common, patience=None, out_dir=tmp_path / "parts", stop_after=3, progress=False)
    resumed = dapt(*common, patience=None, out_dir=tmp_path / "parts", resume=True, progress=False)
    timing = ("tokens_per_s", "mfu")
    assert [{k: v for k, v in h.items() if k not in timing} for h in whole.history] == [
        {k: v for k, v in h.items() if k not in timing} for h in resumed.history]
    theirs = resumed.model.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in whole.model.state_dict().items())


# -- fine-tuning -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_tasks() -> dict:
    """Both tasks with four training examples per class and 40 validation and test examples."""
    out = {}
    for name in ("torch-subpackage", "code-spans"):
        task = load_task(name).subsample(4, seed=0)
        out[name] = TaskData(task.name, task.kind, task.label_names, task.train, task.valid[:40], task.test[:40])
    return out


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("task_name", ("torch-subpackage", "code-spans"))
def test_finetune_and_the_saved_folder_computes_the_same_logits(folders, small_tasks, tmp_path, name, task_name):
    task = small_tasks[task_name]
    model, tok = published_classifier(folders[name], task, seed=0)
    assert isinstance(model, PublishedClassifier) and model.num_labels == task.num_labels
    config = FinetuneConfig(lr=2e-3, batch_size=8, max_steps=4, eval_every=2, max_length=64, device="cpu")
    result = finetune(model, tok, task, config, evaluate_test=False)
    assert [e["step"] for e in result.evaluations()] == [2, 4] and result.model is model
    out = save_published(model, tok, tmp_path / "finetuned", task=task.name, steps=result.best_step, metrics={"validation": result.valid})
    auto = transformers.AutoModelForSequenceClassification if task.kind == "classification" else transformers.AutoModelForTokenClassification
    loaded = auto.from_pretrained(out)
    assert loaded.config.id2label == dict(enumerate(task.label_names))
    batch = pad_examples(task.kind.encode(tok, task.valid[:6], 64), pad_id=tok.pad_id)
    assert torch.equal(_logits(loaded, batch), _logits(model.hf, batch))


def test_published_classifier_draws_its_new_weights_from_the_seed(folders, small_tasks):
    task = small_tasks["torch-subpackage"]
    a, _ = published_classifier(folders["bert"], task, seed=1)
    b, _ = published_classifier(folders["bert"], task, seed=1)
    c, _ = published_classifier(folders["bert"], task, seed=2)
    same = [torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items()]
    assert all(same) and not all(torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    with pytest.raises(ValueError, match="pooling='mean' is ModernBERT's classifier_pooling"):
        published_classifier(folders["bert"], task, pooling="mean")


# -- the Hub guard ---------------------------------------------------------------------------------------


def test_a_hub_id_offline_is_a_clear_error_never_a_fallback(monkeypatch, tmp_path, small_tasks, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for load in (load_published, lambda source: published_classifier(source, small_tasks["code-spans"])):
        with pytest.raises(ValueError) as info:
            load("mlm-lessons-tests/no-such-model")
        message = str(info.value)
        assert "'mlm-lessons-tests/no-such-model' is not a local folder" in message and "offline (HF_HUB_OFFLINE=1)" in message
        assert "download it once" in message and "a local folder written by save_pretrained" in message
    with pytest.raises(ValueError, match="is not a folder; pass a folder written by save_pretrained"):
        load_published(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="cannot be loaded by transformers.AutoTokenizer"):
        load_published(tmp_path / "empty")
    assert main(["dapt", "--hf", "mlm-lessons-tests/no-such-model", "--corpus", "pytorch-docs", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 'mlm-lessons-tests/no-such-model' is not a local folder") and len(err.strip().splitlines()) == 1


# -- the command line --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ("roberta", "bert"))
def test_the_cli_adapts_and_fine_tunes_a_published_folder(folders, tmp_path, capsys, name):
    adapted = tmp_path / "adapted"
    assert main(["dapt", "--hf", str(folders[name]), "--corpus", "pytorch-docs", "--out", str(adapted), "--max-steps", "20",
                 "--eval-every", "10", "--lr", "2e-3", "--device", "cpu", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "pytorch-docs [MASK] loss" in out and "before (step 0)" in out and "AutoModelForMaskedLM.from_pretrained" in out
    history = json.loads((adapted / "run" / "metrics.json").read_text())
    evals = [h for h in history if "valid_mask_loss" in h]
    assert [e["step"] for e in evals] == [0, 10, 20] and evals[-1]["valid_mask_loss"] < evals[0]["valid_mask_loss"] - 0.2
    assert type(transformers.AutoModelForMaskedLM.from_pretrained(adapted)).__name__.lower().startswith(name)
    card = (adapted / "README.md").read_text(encoding="utf-8")
    assert "python -m mlm_lessons dapt --hf" in card and "corpus sha256" in card and "[MASK] loss after (step 20)" in card

    for task, auto in (("torch-subpackage", "AutoModelForSequenceClassification"), ("code-spans", "AutoModelForTokenClassification")):
        tuned = tmp_path / task
        assert main(["finetune", "--hf", str(adapted), "--task", task, "--out", str(tuned), "--labels-per-class", "4",
                     "--max-steps", "3", "--lr", "2e-3", "--max-length", "64", "--device", "cpu", "--quiet"]) == 0
        assert auto in capsys.readouterr().out
        loaded = getattr(transformers, auto).from_pretrained(tuned)
        assert list(loaded.config.id2label.values()) == list(load_task(task).label_names)
        card = (tuned / "README.md").read_text(encoding="utf-8")
        assert card.count("python -m mlm_lessons") == 2 and "domain-adaptive pretraining on the corpus 'pytorch-docs'" in card
        assert json.loads((tuned / "run" / "made_by.json").read_text())["task"] == task


def test_the_cli_takes_exactly_one_start(folders, tmp_path, capsys):
    base = ["dapt", "--corpus", "pytorch-docs", "--out", str(tmp_path / "o")]
    for start, said in (([], "one of the arguments --checkpoint --hf is required"),
                        (["--checkpoint", str(tmp_path), "--hf", str(folders["bert"])], "not allowed with argument")):
        with pytest.raises(SystemExit) as info:  # argparse: exit status 2, the reason on its last line
            main(base + start)
        assert info.value.code == 2 and said in capsys.readouterr().err.strip().splitlines()[-1]
    assert main(base + ["--hf", str(folders["bert"]), "--extend-vocab", "10"]) == 2
    assert "--extend-vocab is for the book's runs (--checkpoint)" in capsys.readouterr().err
    assert main(["finetune", "--task", "code-spans", "--hf", str(folders["bert"]), "--out", str(tmp_path / "f"), "--from-scratch"]) == 2
    assert "--from-scratch is for the book's runs" in capsys.readouterr().err
