"""The masked-LM baseline: masking, packing, tokenizer, model, config, a real tiny run and its export."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

from ssl_bench.config import ConfigError
from ssl_bench.optim import warmup_cosine
from ssl_bench.text.corpus import heldout_split, pack, read_text_files, sentences, split_documents
from ssl_bench.text.masking import IGNORE, MaskingCollator, MaskSpec, StaticMasks, mask_tokens
from ssl_bench.text.tokenizer import BOS, EOS, MASK, NUM_SPECIAL, PAD, UNK, load_tokenizer, train_bpe
from tests.conftest import make_cfg

TINY_MLM = [
    "method=mlm",
    "method.hidden_size=32",
    "method.num_layers=1",
    "method.num_heads=2",
    "method.intermediate_size=64",
    "method.hidden_dropout=0",
    "method.attention_dropout=0",
    "data.vocab_size=512",
    "data.max_length=64",
    "data.batch_size=16",
    "data.eval_batch_size=64",
    "optim.base_lr=3e-3",
    "optim.warmup_epochs=0",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=12",
    "trainer.enable_progress_bar=false",
    "trainer.checkpoint=false",
    "trainer.num_threads=1",
    "logger=none",
    "eval.every_n_epochs=1",
]


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """``run`` sets torch's thread count from trainer.num_threads; give the next test files theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def mlm_cfg(tmp_path, *overrides):
    return make_cfg(*TINY_MLM, f"data.tokenizer_cache={tmp_path / 'tok'}", *overrides, tiny=False)


# --- masking -------------------------------------------------------------------------------------
def _ids(n_rows=400, length=256, vocab=1000, seed=0):
    """Rows of regular ids with <s> / </s> and right padding of random length."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(NUM_SPECIAL, vocab, (n_rows, length), generator=g)
    lengths = torch.randint(length // 2, length + 1, (n_rows,), generator=g)
    ids[:, 0] = BOS
    for i, n in enumerate(lengths.tolist()):
        ids[i, n - 1] = EOS
        ids[i, n:] = PAD
    return ids


def test_masking_rates_and_the_80_10_10_split():
    ids = _ids()
    spec = MaskSpec(vocab_size=1000)
    out, labels = mask_tokens(ids, spec, torch.Generator().manual_seed(1))
    regular = ids >= NUM_SPECIAL
    selected = labels != IGNORE
    share = (selected.sum() / regular.sum()).item()
    assert abs(share - 0.15) < 0.01, share
    n = selected.sum().item()
    as_mask = (out[selected] == MASK).sum().item() / n
    unchanged = (out[selected] == ids[selected]).sum().item() / n
    other = 1 - as_mask - unchanged
    assert abs(as_mask - 0.8) < 0.02 and abs(unchanged - 0.1) < 0.02 and abs(other - 0.1) < 0.02
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(out[~selected], ids[~selected])  # unselected positions untouched
    assert (out[selected & (out != MASK) & (out != ids)] >= NUM_SPECIAL).all()  # random tokens are regular
    # other rates are honoured too
    out, labels = mask_tokens(ids, MaskSpec(1000, 0.4, 0.5, 0.5), torch.Generator().manual_seed(2))
    sel = labels != IGNORE
    assert abs(sel.sum().item() / regular.sum().item() - 0.4) < 0.01
    assert abs((out[sel] == MASK).float().mean().item() - 0.5) < 0.02


def test_special_tokens_and_padding_are_never_masked():
    ids = _ids(n_rows=200)
    out, labels = mask_tokens(ids, MaskSpec(1000, mask_prob=1.0), torch.Generator().manual_seed(3))
    special = ids < NUM_SPECIAL
    assert special.any() and (ids == PAD).any()
    assert (labels[special] == IGNORE).all() and torch.equal(out[special], ids[special])
    assert (labels[~special] != IGNORE).all()  # mask_prob 1: every regular token


def test_collator_gives_attention_mask_and_fresh_masks():
    ids = _ids(n_rows=8, length=64)
    collate = MaskingCollator(MaskSpec(1000))
    a, attn, la = collate(ids)
    b, _, lb = collate(list(ids))
    assert torch.equal(attn, (ids != PAD).long())
    assert not torch.equal(la, lb)


def _epoch_labels(loader, epoch):
    """{original sequence: its labels} for one pass of a training loader."""
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    out = {}
    for corrupted, _attn, labels in loader:
        original = torch.where(labels != IGNORE, labels, corrupted)
        for row, lab in zip(original, labels):
            out[tuple(row.tolist())] = lab
    return out


@pytest.fixture(scope="module")
def small_dm(tmp_path_factory):
    from ssl_bench.data.datamodule import build_datamodule

    cfg = mlm_cfg(tmp_path_factory.mktemp("dm"))
    return cfg, build_datamodule(cfg.data)


def test_static_masks_repeat_across_epochs_and_dynamic_ones_do_not(small_dm):
    cfg, dm = small_dm
    counts = Counter(tuple(r.tolist()) for r in dm.train_ids)
    unique = {k for k, n in counts.items() if n == 1}  # the corpus repeats some passages
    spec = MaskSpec(dm.vocab_size)
    dm.configure_masking(spec, "static", static_copies=2, seed=0)
    loader = dm.train_dataloader()
    e0, e1, e2 = (_epoch_labels(loader, e) for e in (0, 1, 2))
    common = set(e0) & set(e1) & set(e2) & unique
    assert len(common) > 100
    assert all(torch.equal(e0[k], e2[k]) for k in common)  # copy 0 again in epoch 2
    assert sum(not torch.equal(e0[k], e1[k]) for k in common) > 0.9 * len(common)
    dm.configure_masking(spec, "static", static_copies=1, seed=0)
    loader = dm.train_dataloader()
    s0, s1 = _epoch_labels(loader, 0), _epoch_labels(loader, 1)
    assert all(torch.equal(s0[k], s1[k]) for k in set(s0) & set(s1) & unique)
    dm.configure_masking(spec, "dynamic")
    loader = dm.train_dataloader()
    d0, d1 = _epoch_labels(loader, 0), _epoch_labels(loader, 1)
    common = set(d0) & set(d1) & unique
    assert sum(not torch.equal(d0[k], d1[k]) for k in common) > 0.9 * len(common)


def test_static_mask_copy_is_reproducible():
    ids = _ids(n_rows=20, length=32)
    a = StaticMasks(ids, MaskSpec(1000), copies=3, seed=7)
    b = StaticMasks(ids, MaskSpec(1000), copies=3, seed=7)
    assert torch.equal(a.for_epoch(4)[1], b.copy(1)[1]) and not torch.equal(a.copy(0)[1], a.copy(1)[1])


# --- packing and corpora ----------------------------------------------------------------------------
def _synthetic_docs(n_docs=30, seed=0):
    """Doc d uses only ids in [1000 d, 1000 d + 1000): any token says which document it came from."""
    rng = np.random.default_rng(seed)
    return [
        [list(1000 * d + rng.integers(0, 1000, rng.integers(3, 25))) for _ in range(rng.integers(1, 12))]
        for d in range(1, n_docs + 1)
    ]


def test_doc_sentences_never_cross_documents():
    docs = _synthetic_docs()
    seqs = pack(docs, 64, "doc_sentences", BOS, EOS)
    for s in seqs:
        assert s[0] == BOS and s[-1] == EOS and len(s) <= 64
        assert len({t // 1000 for t in s[1:-1]}) == 1 and EOS not in s[1:-1]
    flat = [t for s in seqs for t in s if t >= 1000]
    assert flat == [t for d in docs for sent in d for t in sent]  # nothing lost, order kept


def test_full_sentences_fill_sequences_across_documents():
    docs = _synthetic_docs()
    full = pack(docs, 64, "full_sentences", BOS, EOS)
    per_doc = pack(docs, 64, "doc_sentences", BOS, EOS)
    assert len(full) < len(per_doc)
    assert all(len(s) <= 64 and s[0] == BOS and s[-1] == EOS for s in full)
    assert np.mean([len(s) for s in full[:-1]]) > 0.85 * 64
    crossing = [s for s in full if len({t // 1000 for t in s if t >= 1000}) > 1]
    assert crossing
    for s in crossing:  # documents inside a sequence are separated by </s>
        body = s[1:-1]
        for a, b in zip(body, body[1:]):
            if a >= 1000 and b >= 1000:
                assert a // 1000 == b // 1000
    # sentences stay whole unless longer than a sequence
    long_doc = [[[5000 + i for i in range(150)]]]
    assert [len(s) for s in pack(long_doc, 64, "full_sentences", BOS, EOS)] == [64, 64, 28]


def test_text_files_documents_and_heldout_split(tmp_path):
    (tmp_path / "a.txt").write_text("one line\nsecond line\n\n\nthird doc\n \nfourth doc\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("中文文档。\n", encoding="utf-8")
    docs = read_text_files([str(tmp_path)], "blank_line")
    assert docs == ["one line\nsecond line", "third doc", "fourth doc\n", "中文文档。\n"]
    assert read_text_files([str(tmp_path / "a.txt")], "file") == [(tmp_path / "a.txt").read_text()]
    assert sentences(docs[0]) == ["one line", "second line"]
    assert split_documents("a\n\nb") == ["a", "b"]
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        read_text_files([str(tmp_path / "missing.txt")])
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_text_files([str(tmp_path / "bad.txt")])
    many = [f"doc {i} " * (i + 1) for i in range(50)]
    train, held = heldout_split(many, 0.2, seed=0)
    assert set(train).isdisjoint(held) and len(train) + len(held) == 50
    assert 0.2 <= sum(map(len, held)) / sum(map(len, many)) < 0.3
    assert heldout_split(many, 0.2, seed=0) == (train, held)


# --- tokenizer -----------------------------------------------------------------------------------------
def test_tokenizer_round_trips_english_and_chinese_and_is_cached(tmp_path):
    corpus = ["The quick brown fox jumps over the lazy dog.", "In the beginning was the word."] * 50
    folder = train_bpe(corpus, vocab_size=300, min_frequency=2, cache_dir=tmp_path)
    assert train_bpe(corpus, 300, 2, tmp_path) == folder  # cached by content
    assert train_bpe(corpus + ["more"], 300, 2, tmp_path) != folder
    tok = load_tokenizer(folder)
    assert [tok.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] == [
        BOS,
        PAD,
        EOS,
        UNK,
        MASK,
    ]
    for text in ("The lazy fox, quickly!", "机器学习很有趣。深度学习也是。", "mixed 中文 and English ☃"):
        ids = tok(text)["input_ids"]
        assert ids[0] == BOS and ids[-1] == EOS and UNK not in ids
        assert tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False) == text


# --- model ---------------------------------------------------------------------------------------------
def test_logits_at_real_positions_do_not_depend_on_padding():
    from omegaconf import OmegaConf

    from ssl_bench.methods.mlm import build_roberta

    torch.manual_seed(0)
    mcfg = OmegaConf.create(
        {
            "hidden_size": 32,
            "num_layers": 2,
            "num_heads": 2,
            "intermediate_size": 64,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
            "initializer_range": 0.02,
        }
    )
    model = build_roberta(mcfg, vocab_size=300, max_length=64).eval()
    assert model.lm_head.decoder.weight.data_ptr() == model.roberta.embeddings.word_embeddings.weight.data_ptr()
    ids = torch.randint(NUM_SPECIAL, 300, (1, 20))
    ids[0, 0], ids[0, -1] = BOS, EOS
    padded = torch.cat([ids, torch.full((1, 15), PAD)], 1)
    batch = torch.cat([padded, torch.randint(NUM_SPECIAL, 300, (1, 35))])  # a longer neighbour
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        out = model(input_ids=batch, attention_mask=(batch != PAD).long()).logits
    assert torch.allclose(out[0, :20], ref[0], atol=1e-4)


# --- config ----------------------------------------------------------------------------------------------
def test_mlm_config_validates_and_bad_values_give_one_line(tmp_path):
    cfg = mlm_cfg(tmp_path)
    assert cfg.method.name == "mlm" and cfg.data.name == "text_embedded" and cfg.optim.betas == [0.9, 0.98]
    base = make_cfg("method=mlm_base", tiny=False)
    assert base.method.hidden_size == 768 and base.method.num_layers == 12
    files = make_cfg("method=mlm", "data=text_files", "data.paths=[a.txt]", tiny=False)
    assert files.data.name == "text_files" and files.method.name == "mlm"
    for overrides, needle in [
        (["method.mask_prob=1.5"], "method.mask_prob=1.5 is out of range; allowed: > 0 and <= 1"),
        (["method.masking=sometimes"], "method.masking='sometimes' is not allowed; allowed: dynamic, static"),
        (["+method.mask_rate=0.2"], "unknown key 'method.mask_rate'. Did you mean 'method.mask_prob'?"),
        (["data.packing=greedy"], "data.packing='greedy' is not allowed"),
        (["method.mask_token_prob=0.95"], "must be <= 1"),
        (["data=shapes"], "needs text data"),
    ]:
        with pytest.raises(ConfigError) as err:
            make_cfg("method=mlm", *overrides, tiny=False)
        assert needle in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="is text"):
        make_cfg("data=text_embedded", tiny=False)


def test_linear_schedule_decays_to_min_after_warmup():
    assert warmup_cosine(0, 100, 10, schedule="linear") == pytest.approx(0.1)
    assert warmup_cosine(10, 100, 10, schedule="linear") == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10, schedule="linear") == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10, 0.1, schedule="linear") == pytest.approx(0.1)


# --- a real run ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from ssl_bench.train import run

    out = tmp_path_factory.mktemp("mlm_run")
    cfg = mlm_cfg(out)
    return run(cfg, out / "run", [], "mlm-unit"), out


def test_tiny_fit_lowers_the_loss_and_fills_the_record(tiny_run):
    record, _ = tiny_run
    assert record["status"] == "finished" and record["method"] == "mlm"
    init, final = record["init"], record["final"]
    assert final["loss"] < init["loss"] - 0.5 and final["ppl"] < init["ppl"]
    assert final["unigram_ppl"] == pytest.approx(init["unigram_ppl"])  # same tokenizer, same positions
    assert init["masked_tokens"] == final["masked_tokens"] > 100
    assert final["tokens_per_s"] > 0 and record["timings"]["seq_per_s"] > 0
    for key in ("train/loss", "train/masked_acc", "train/tokens_per_s", "val/loss", "val/ppl", "val/masked_acc"):
        assert key in record["epochs"][-1], key
    assert record["epochs"][-1]["val/ppl"] == pytest.approx(final["ppl"], rel=1e-4)
    assert record["epochs"][-1]["train/loss"] < record["epochs"][0]["train/loss"]


def test_unigram_baseline_matches_its_definition(small_dm):
    cfg, dm = small_dm
    counts = Counter(t for t in dm.train_ids.flatten().tolist() if t >= NUM_SPECIAL)
    total = sum(counts.values()) + (dm.vocab_size - NUM_SPECIAL)
    _, _, labels = dm.heldout.tensors
    targets = labels[labels != IGNORE].tolist()
    expected = math.exp(-np.mean([math.log((counts[t] + 1) / total) for t in targets]))
    got = math.exp(-dm.unigram_logp[torch.tensor(targets)].mean().item())
    assert got == pytest.approx(expected, rel=1e-9)


def test_export_loads_in_transformers_and_runs_fill_mask(tiny_run):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    record, out = tiny_run
    assert record["export"] == str(out / "run" / "hf_export")
    model = AutoModelForMaskedLM.from_pretrained(record["export"])
    tok = AutoTokenizer.from_pretrained(record["export"])
    assert tok.mask_token == "<mask>" and tok.mask_token_id == MASK and tok.pad_token_id == PAD
    assert model.config.tie_word_embeddings and len(tok) == model.config.vocab_size
    fill = pipeline("fill-mask", model=model, tokenizer=tok, device="cpu")
    preds = fill("The <mask> statement is used in Python.", top_k=3)
    assert len(preds) == 3 and all(p["token"] >= NUM_SPECIAL for p in preds)


def test_nan_loss_ends_as_diverged(tmp_path, monkeypatch):
    from ssl_bench.methods import mlm
    from ssl_bench.train import run

    original = mlm.masked_nll

    def nan_later(model, *batch):
        nll, correct, target = original(model, *batch)
        return nll * (float("nan") if model.training and nan_later.calls > 2 else 1.0), correct, target

    nan_later.calls = 0

    def counting(model, *batch):
        nan_later.calls += model.training
        return nan_later(model, *batch)

    monkeypatch.setattr(mlm, "masked_nll", counting)
    record = run(mlm_cfg(tmp_path, "eval.initial=false"), tmp_path / "run", [], "nan")
    assert record["status"] == "diverged" and "loss is nan" in record["error"]["message"]
    assert record["export"] is None
