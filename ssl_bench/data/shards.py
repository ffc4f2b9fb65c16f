"""Reading the WebDataset shards of ``python -m ssl_bench.data.shard`` (``data.storage=shards``), DDP-aware.

Each epoch lays the split out as one stream: the shards in an order drawn from (seed, epoch) (stored order
for evaluation), each shard's images in their stored order, restricted to the selected images (all, or a
seeded subset such as ``data.val_size``). Rank ``r`` of ``R`` takes one contiguous part of that stream and
each of its loader workers one contiguous piece of that part, so a rank opens only its own shards (and at
most two it shares with a neighbour), and every selected image is read once per epoch across ranks.
Training parts are equal and whole batches (the remainder, fewer than ``R`` x batch images, is dropped, as
``drop_last`` drops a partial batch), so every rank runs the same number of steps, which DDP needs;
evaluation parts are contiguous and differ by at most one image, nothing repeated (the features are
gathered in rank order, so every image counts once, as in memory mode). Within a worker a shuffle buffer
(``data.shuffle_buffer`` images) mixes the shards it reads.

The tar parsing is WebDataset's (``webdataset.tariterators.tarfile_samples``) and so is the shuffle buffer
(``webdataset.filters._shuffle``). The plan is computed here because WebDataset splits by whole shards
(``split_by_node`` / ``split_by_worker``), which gives ranks unequal image counts (DDP then hangs or drops
data); an exact, equal split needs the per-shard counts the index holds.
"""

from __future__ import annotations

import io
import json
import math
import random
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ssl_bench.data.images import DatasetMissing
from ssl_bench.data.shard import FORMAT, INDEX
from ssl_bench.data.stream import EvalReader, Item, error_text

META = {"__key__", "__url__", "__local_path__", "cls"}
# Lightning warns that a sized IterableDataset may be miscounted by workers; these size themselves per worker
warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")


def has_index(root: Path) -> bool:
    return (root / INDEX).is_file()


def load_index(root: Path) -> dict[str, Any]:
    path = root / INDEX
    if not path.is_file():
        raise DatasetMissing(
            f"data.storage=shards: {path} is missing; write the shards with "
            f"`python -m ssl_bench.data.shard IMAGE_FOLDER {root}`"
        )
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT:
        raise DatasetMissing(
            f"{path} is not an ssl-bench shard index (format {index.get('format')!r}, expected {FORMAT!r})"
        )
    return index


class Split:
    """One split of a shard index: shard files, their image counts, and the stored order (original index
    of every stored position)."""

    def __init__(self, root: Path, name: str, entry: dict[str, Any]):
        self.root, self.name = root, name
        self.files = [str(root / s["file"]) for s in entry["shards"]]
        self.counts = np.asarray([s["count"] for s in entry["shards"]], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.classes = tuple(entry["classes"])
        self.source_count = int(entry.get("source_count", entry["count"]))
        order = np.load(root / entry["order"])
        if len(order) != int(self.counts.sum()):
            raise DatasetMissing(
                f"{root / entry['order']} lists {len(order)} images, the shards of {name} "
                f"{int(self.counts.sum())}; write the shards again"
            )
        self.order = order
        self.position = np.full(self.source_count, -1, dtype=np.int64)  # original index -> stored position
        self.position[order] = np.arange(len(order))

    def __len__(self) -> int:
        return len(self.order)

    def positions(self, original: Any) -> np.ndarray:
        """Stored positions of the given original indices (those left out at writing time dropped)."""
        pos = self.position[np.asarray(original, dtype=np.int64)]
        return np.sort(pos[pos >= 0])

    def describe(self, original: int) -> str:
        pos = int(self.position[original])
        s = int(np.searchsorted(self.starts, pos, side="right") - 1)
        return f"{self.files[s]} (image {original:08d})"


def stream(split: Split, keep: np.ndarray | None, shard_order: np.ndarray) -> np.ndarray:
    """The selected stored positions in stream order: shards in ``shard_order``, stored order within each."""
    mask = None
    if keep is not None:
        mask = np.zeros(len(split), dtype=bool)
        mask[keep] = True
    parts = []
    for s in shard_order:
        pos = np.arange(split.starts[s], split.starts[s] + split.counts[s])
        parts.append(pos if mask is None else pos[mask[pos]])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def rank_part(n: int, rank: int, world: int, batch: int, train: bool) -> np.ndarray:
    """Indices into a stream of ``n`` items for one rank: equal whole batches (train) or a contiguous
    share, the shares together exactly ``range(n)`` (evaluation: no repeats to undo after gathering)."""
    if train:
        q = n // world
        return np.arange(rank * q, rank * q + q // batch * batch)
    return np.arange(n * rank // world, n * (rank + 1) // world)


def worker_piece(n: int, worker: int, workers: int, batch: int) -> slice:
    """A worker's contiguous piece of a rank's ``n`` items, cut on batch boundaries (the DataLoader
    batches each worker's items separately)."""
    nb = math.ceil(n / batch)
    b0, b1 = worker * nb // workers, (worker + 1) * nb // workers
    return slice(min(b0 * batch, n), min(b1 * batch, n))


def runs(split: Split, positions: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(shard, increasing offsets within it) for consecutive positions of the same shard."""
    if len(positions) == 0:
        return
    sid = np.searchsorted(split.starts, positions, side="right") - 1
    cut = np.flatnonzero((np.diff(sid) != 0) | (np.diff(positions) <= 0)) + 1
    for part, s in zip(np.split(positions, cut), np.split(sid, cut)):
        yield int(s[0]), part - split.starts[s[0]]


def read(split: Split, positions: np.ndarray) -> Iterator[tuple[int, bytes, int]]:
    """(original index, image bytes, label) at the given stored positions, in that order (read shard by
    shard, each shard from its start up to the last position wanted in it)."""
    from webdataset.tariterators import tarfile_samples

    for s, wanted in runs(split, positions):
        j, w = -1, 0
        for j, sample in enumerate(tarfile_samples([{"url": split.files[s]}])):
            if j != wanted[w]:
                continue
            original = int(split.order[split.starts[s] + j])
            if int(sample["__key__"]) != original:
                raise DatasetMissing(
                    f"{split.files[s]} does not match {split.root / INDEX} (image {j}: key "
                    f"{sample['__key__']}, expected {original:08d}); write the shards again"
                )
            data = next(v for key, v in sample.items() if key not in META)
            yield original, data, int(sample.get("cls", b"-1"))
            w += 1
            if w == len(wanted):
                break
        if w < len(wanted):
            raise DatasetMissing(f"{split.files[s]} has {j + 1} images, {split.root / INDEX} says {split.counts[s]}")


class _Shards(IterableDataset):
    """Shared plan: rank / world size / batch (``configure``), the epoch (shared memory: loader workers that
    persist across epochs see it), and this worker's stored positions."""

    train = False

    def __init__(self, split: Split, keep: np.ndarray | None, seed: int = 0):
        self.split, self.keep, self.seed = split, keep, seed
        self.n = len(split) if keep is None else len(keep)
        self.rank, self.world_size, self.batch_size = 0, 1, 1
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def configure(self, rank: int = 0, world_size: int = 1, batch_size: int = 1) -> _Shards:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of world size {world_size}")
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size
        return self

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(rank_part(self.n, self.rank, self.world_size, self.batch_size, self.train))

    def describe(self, original: int) -> str:
        return self.split.describe(original)

    def shard_order(self, epoch: int) -> np.ndarray:
        n = len(self.split.files)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.train else np.arange(n)

    def plan(self, epoch: int, worker: int = 0, workers: int = 1) -> np.ndarray:
        """This (rank, worker)'s stored positions for ``epoch``, in reading order."""
        order = stream(self.split, self.keep, self.shard_order(epoch))
        mine = order[rank_part(len(order), self.rank, self.world_size, self.batch_size, self.train)]
        return mine[worker_piece(len(mine), worker, workers, self.batch_size)]

    def _worker(self) -> tuple[int, int]:
        info = get_worker_info()
        return (0, 1) if info is None else (info.id, info.num_workers)

    def samples(self) -> Iterator[tuple[int, bytes, int]]:
        worker, workers = self._worker()
        return read(self.split, self.plan(int(self._epoch), worker, workers))


class TrainShards(_Shards):
    """Pretraining images from shards; an unreadable image is replaced by the previous readable one."""

    train = True

    def __init__(
        self,
        split: Split,
        keep: np.ndarray | None,
        reader: Any,
        seed: int = 0,
        shuffle_buffer: int = 1000,
        unlabelled: bool = False,
    ):
        super().__init__(split, keep, seed)
        self.reader, self.shuffle_buffer, self.unlabelled = reader, shuffle_buffer, unlabelled

    def __iter__(self) -> Iterator[Item]:
        from webdataset.filters import _shuffle

        worker, _ = self._worker()
        items: Any = self.samples()
        if self.shuffle_buffer > 1:
            seq = np.random.SeedSequence([self.seed, int(self._epoch), self.rank, worker]).generate_state(1)[0]
            items = _shuffle(
                items, bufsize=self.shuffle_buffer, initial=min(100, self.shuffle_buffer), rng=random.Random(int(seq))
            )
        last: Item | None = None
        pending: list[tuple[int, str]] = []  # unreadable before the first readable one
        for original, data, label in items:
            label = -1 if self.unlabelled else label
            try:
                item = Item(self.reader(io.BytesIO(data)), label, original, -1, "")
            except Exception as err:
                if last is None:
                    pending.append((original, error_text(err)))
                    continue
                yield last._replace(bad=original, error=error_text(err))
                continue
            for bad, error in pending:
                yield item._replace(bad=bad, error=error)
            pending = []
            last = item
            yield item
        if pending:
            raise DatasetMissing(
                f"no readable image in this loader worker's part of {self.split.name} (first "
                f"unreadable: {self.describe(pending[0][0])}: {pending[0][1]})"
            )


class EvalShards(_Shards):
    """Evaluation images from shards, in stored order; an unreadable one comes back blank and flagged."""

    def __init__(self, split: Split, keep: np.ndarray | None, size: int):
        super().__init__(split, keep)
        self.reader = EvalReader(size)

    def __iter__(self) -> Iterator[Item]:
        for original, data, label in self.samples():
            try:
                yield Item(self.reader(io.BytesIO(data)), label, original, -1, "")
            except Exception as err:
                yield Item(self.reader.blank(), -1, original, original, error_text(err))


def shard_datasets(cfg: Any, reader: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The datasets of a shard folder (``data.root``) for ``data.train`` / ``eval_train`` / ``test``, with
    the same seeded subsets as the other storage modes (by original index)."""
    from ssl_bench.data.images import _root, subset_indices

    root = _root(cfg.root)
    index = load_index(root)
    splits: dict[str, Split] = {}

    def get(name: str) -> Split:
        if name not in index["splits"]:
            raise DatasetMissing(
                f"{root / INDEX} has the splits {', '.join(index['splits'])}; {name!r} (data.train, "
                "data.eval_train or data.test) is not among them"
            )
        if name not in splits:
            splits[name] = Split(root, name, index["splits"][name])
        return splits[name]

    bank, test = get(str(cfg.eval_train)), get(str(cfg.test))
    for s in (bank, test):
        if not s.classes:
            raise DatasetMissing(f"the {s.name} shards under {root} have no class labels; evaluation splits need them")
    if test.classes != bank.classes:
        raise DatasetMissing(
            f"the {test.name} shards have classes {list(test.classes)}, the {bank.name} shards "
            f"{list(bank.classes)}; the evaluation splits need the same classes"
        )
    train_names = [str(n) for n in cfg.train]
    if len(train_names) != 1:
        raise DatasetMissing(
            f"data.storage=shards reads one pretraining split (data.train={train_names}); shard the "
            "splits into one folder first"
        )
    train = get(train_names[0])
    seed, size = int(cfg.split_seed), int(cfg.image_size)

    def keep(s: Split, **kw: Any) -> np.ndarray | None:
        idx = subset_indices(s.source_count, seed=seed + kw.pop("offset"), **kw)
        return None if idx is None else s.positions(idx.numpy())

    datasets: dict[str, Any] = {
        "train": TrainShards(
            train,
            keep(train, fraction=cfg.fraction, offset=0),
            reader,
            int(torch.initial_seed()),
            int(cfg.get("shuffle_buffer", 1000)),
            unlabelled=str(cfg.get("labels", "auto")) == "false",
        ),
        "bank": EvalShards(bank, None, size),
        "test": EvalShards(test, None, size),
        "val": EvalShards(test, keep(test, size=cfg.val_size, offset=1), size),
    }
    if cfg.bank_size is not None:
        datasets["monitor_bank"] = EvalShards(bank, keep(bank, size=cfg.bank_size, offset=2), size)
    return datasets, bank.classes
