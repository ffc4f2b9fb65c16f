"""The text datamodule: corpus -> held-out split by document -> byte-level BPE (trained on the
training split, cached) -> packed ``<s> ... </s>`` sequences as one padded id tensor per split.

The training loader yields (ids, attention mask, labels) batches masked on the fly (dynamic) or
with fixed per-epoch copies (static); the masking settings come from the method
(``configure_masking``, called by the MLM when it is built for this datamodule). The held-out
split is masked once with its own fixed seed (``data.heldout_mask_*``), so its perplexity is
comparable across runs, seeds and masking ablations.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from tokenizers import ByteLevelBPETokenizer
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ssl_bench.distributed import world
from ssl_bench.errors import DataError
from ssl_bench.text.corpus import embedded_documents, heldout_split, pack, read_text_files, sentences
from ssl_bench.text.masking import IGNORE, MaskingCollator, MaskSpec, StaticMasks, masked_batch
from ssl_bench.text.tokenizer import BOS, EOS, NUM_SPECIAL, PAD, load_tokenizer, train_bpe

log = logging.getLogger("ssl_bench")


class Rows(Dataset):
    """Rows of equally long tensors; fetches whole batches with one index op."""

    def __init__(self, *tensors: torch.Tensor):
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, i: int) -> Any:
        return tuple(t[i] for t in self.tensors) if len(self.tensors) > 1 else self.tensors[0][i]

    def __getitems__(self, idx: list[int]) -> Any:
        index = torch.as_tensor(idx)
        return tuple(t[index] for t in self.tensors) if len(self.tensors) > 1 else self.tensors[0][index]


class StaticRows(Dataset):
    """Statically masked sequences; index ``c * N + i`` is sequence i under mask copy c."""

    def __init__(self, static: StaticMasks):
        self.static, self.n = static, static.input_ids.shape[0]

    def __len__(self) -> int:
        return self.static.copies * self.n

    def __getitem__(self, i: int) -> Any:
        return self.__getitems__([i])

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(idx)
        copy, row = index // self.n, index % self.n
        corrupted = torch.empty((len(idx), self.static.input_ids.shape[1]), dtype=torch.long)
        labels = torch.empty_like(corrupted)
        for c in copy.unique().tolist():
            sel = copy == c
            ids, lab = self.static.copy(c)
            corrupted[sel], labels[sel] = ids[row[sel]], lab[row[sel]]
        return corrupted, (self.static.input_ids[row] != PAD).long(), labels


class EpochCopySampler(Sampler[int]):
    """Shuffles the N sequences each epoch (seeded by seed and epoch) and points them at mask copy
    ``epoch % copies``. Lightning calls ``set_epoch`` before every epoch. Under torch.distributed rank
    r takes positions r, r + world, ... of the epoch's order (as ``DistributedSampler`` does)."""

    def __init__(self, n: int, copies: int, seed: int):
        self.n, self.copies, self.seed, self.epoch = n, copies, seed, 0
        self.rank, self.world = world()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.world

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        offset = (self.epoch % self.copies) * self.n
        order = torch.randperm(self.n, generator=g) + offset
        return iter(order[: len(self) * self.world][self.rank :: self.world].tolist())


def _identity(batch: Any) -> Any:
    return batch


def to_tensor(seqs: list[list[int]], max_length: int) -> torch.Tensor:
    """[N, max_length] int64 ids, right-padded with ``<pad>``."""
    out = np.full((len(seqs), max_length), PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return torch.from_numpy(out)


class TextDataModule(pl.LightningDataModule):
    def __init__(self, train_docs: list[str], heldout_docs: list[str], cfg: Any):
        super().__init__()
        self.cfg = cfg
        self.batch_size, self.eval_batch_size, self.num_workers = cfg.batch_size, cfg.eval_batch_size, cfg.num_workers
        self.tokenizer_dir = train_bpe(train_docs, cfg.vocab_size, cfg.min_frequency, cfg.tokenizer_cache)
        self.tokenizer = load_tokenizer(self.tokenizer_dir)
        self.vocab_size = len(self.tokenizer)
        bpe = ByteLevelBPETokenizer(str(self.tokenizer_dir / "vocab.json"), str(self.tokenizer_dir / "merges.txt"))
        self.train_ids = self._encode(bpe, train_docs)
        self.heldout_ids = self._encode(bpe, heldout_docs)
        if self.batch_size > self.train_ids.shape[0]:
            raise DataError(
                f"data.batch_size={self.batch_size} exceeds the {self.train_ids.shape[0]} training "
                f"sequences of data.max_length={cfg.max_length}"
            )
        counts = torch.bincount(self.train_ids.flatten(), minlength=self.vocab_size).double()
        counts[:NUM_SPECIAL] = 0
        self.train_tokens = int(counts.sum().item())
        # unigram baseline: add-one smoothing over the regular (non-special) vocabulary
        regular = counts[NUM_SPECIAL:] + 1
        self.unigram_logp = torch.full((self.vocab_size,), -math.inf, dtype=torch.float64)
        self.unigram_logp[NUM_SPECIAL:] = (regular / regular.sum()).log()
        self.heldout_spec = MaskSpec(
            self.vocab_size, cfg.heldout_mask_prob, cfg.heldout_mask_token_prob, cfg.heldout_random_token_prob
        )
        g = torch.Generator().manual_seed(int(cfg.heldout_mask_seed))
        self.heldout = Rows(*masked_batch(self.heldout_ids, self.heldout_spec, g))
        self.spec: MaskSpec | None = None
        self.stats = {
            "documents": len(train_docs) + len(heldout_docs),
            "heldout_documents": len(heldout_docs),
            "train_sequences": int(self.train_ids.shape[0]),
            "heldout_sequences": int(self.heldout_ids.shape[0]),
            "train_tokens": self.train_tokens,
            "heldout_masked_tokens": int((self.heldout.tensors[2] != IGNORE).sum()),
            "vocab_size": self.vocab_size,
        }
        log.info("text data: %s", ", ".join(f"{k} {v}" for k, v in self.stats.items()))

    def _encode(self, bpe: ByteLevelBPETokenizer, docs: list[str]) -> torch.Tensor:
        sents = [sentences(d) for d in docs]
        flat = bpe.encode_batch([s for doc in sents for s in doc], add_special_tokens=False)
        it = iter(flat)
        tokenised = [[next(it).ids for _ in doc] for doc in sents]
        seqs = pack(tokenised, self.cfg.max_length, self.cfg.packing, BOS, EOS)
        return to_tensor(seqs, self.cfg.max_length)

    def configure_masking(
        self, spec: MaskSpec, masking: str = "dynamic", static_copies: int = 1, seed: int = 0
    ) -> None:
        """Set how training sequences are masked (the method's knobs)."""
        if masking not in ("dynamic", "static"):
            raise ValueError(f"method.masking={masking!r}; allowed: dynamic, static")
        self.spec, self.masking, self.static_copies, self.seed = spec, masking, static_copies, seed

    def train_dataloader(self) -> DataLoader:
        if self.spec is None:
            raise RuntimeError("TextDataModule.configure_masking must be called before training")
        common = dict(
            batch_size=self.batch_size,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
        if self.masking == "static":
            static = StaticMasks(self.train_ids, self.spec, self.static_copies, self.seed)
            sampler = EpochCopySampler(self.train_ids.shape[0], self.static_copies, self.seed)
            return DataLoader(StaticRows(static), sampler=sampler, collate_fn=_identity, **common)
        rows = Rows(self.train_ids)
        if torch.distributed.is_initialized():
            sampler = DistributedSampler(rows, shuffle=True, seed=self.seed, drop_last=True)
            return DataLoader(rows, sampler=sampler, collate_fn=MaskingCollator(self.spec), **common)
        return DataLoader(rows, shuffle=True, collate_fn=MaskingCollator(self.spec), **common)

    def heldout_loader(self) -> DataLoader:
        return DataLoader(
            self.heldout,
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=_identity,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        """The held-out split, sharded over the ranks (the module adds up their sums)."""
        from ssl_bench.eval.frozen import shard

        return shard(self.heldout_loader())


def build_text_datamodule(cfg: Any) -> TextDataModule:
    """``data.name``: ``text_embedded`` (Python's documentation topics) or ``text_files``."""
    if cfg.name == "text_embedded":
        docs = embedded_documents()
    elif cfg.name == "text_files":
        docs = read_text_files(list(cfg.paths), cfg.documents, cfg.pattern)
    else:
        raise ValueError(f"data.name={cfg.name!r}; allowed: text_embedded, text_files")
    train, heldout = heldout_split(docs, cfg.heldout_fraction, cfg.split_seed)
    return TextDataModule(train, heldout, cfg)
