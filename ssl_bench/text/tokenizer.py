"""Byte-level BPE (RoBERTa / GPT-2 style) trained on the corpus with HF ``tokenizers``.

Any UTF-8 text is representable (bytes are the base alphabet), so ``<unk>`` never appears.
Special tokens come first, in RoBERTa's order: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3,
``<mask>`` 4; every id >= ``NUM_SPECIAL`` is a regular token. A trained tokenizer is cached by a
hash of the training text and the settings, so a sweep trains it once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import tokenizers
from tokenizers import ByteLevelBPETokenizer

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
BOS, PAD, EOS, UNK, MASK = range(len(SPECIAL_TOKENS))
NUM_SPECIAL = len(SPECIAL_TOKENS)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ssl-bench" / "tokenizers"


def corpus_key(texts: Iterable[str], vocab_size: int, min_frequency: int) -> str:
    """Content hash of the training text and every setting that changes the result."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {
                "vocab_size": vocab_size,
                "min_frequency": min_frequency,
                "special": SPECIAL_TOKENS,
                "tokenizers": tokenizers.__version__,
            }
        ).encode()
    )
    for text in texts:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:24]


def train_bpe(texts: list[str], vocab_size: int, min_frequency: int = 2, cache_dir: str | Path | None = None) -> Path:
    """Train (or reuse from the cache) a byte-level BPE; returns the folder holding
    ``vocab.json`` and ``merges.txt``."""
    folder = Path(cache_dir or default_cache_dir()).expanduser() / corpus_key(texts, vocab_size, min_frequency)
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return folder
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        length=len(texts),
    )
    vocab = bpe.get_vocab()
    for i, tok in enumerate(SPECIAL_TOKENS):
        if vocab.get(tok) != i:
            raise RuntimeError(f"special token {tok!r} got id {vocab.get(tok)}, expected {i}")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(exist_ok=True)
    bpe.save_model(str(tmp))
    for name in ("vocab.json", "merges.txt"):  # atomic per file: concurrent sweep jobs are safe
        (tmp / name).replace(folder / name)
    tmp.rmdir()
    return folder


def load_tokenizer(folder: str | Path):
    """The trained BPE as a ``transformers`` RoBERTa tokenizer (what the export ships)."""
    from transformers import RobertaTokenizerFast

    folder = Path(folder)
    return RobertaTokenizerFast(str(folder / "vocab.json"), str(folder / "merges.txt"), add_prefix_space=False)
