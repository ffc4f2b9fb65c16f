"""Streaming image data (``data.storage=stream|shards``): only file lists are held in memory; images are
decoded in DataLoader workers.

Training items are the image's views, cropped at decode time (``decode.random_crops``: the crop is drawn
first and the JPEG decoded at the scale it allows), as uint8 ``[V, 3, size, size]``; the rest of the
augmentation runs batched on the training device (``BatchAugment`` on pre-cropped views). With
``augment.backend=torchvision`` the worker runs the per-image torchvision pipeline on the whole image
instead, and with ``data.decode=device`` it only reads the bytes and draws the crops, and the batch is
decoded on the GPU in ``on_before_batch_transfer``. Evaluation items (kNN bank, monitored val split, final
test split) are decoded exactly as the memory path decodes them (``images.decode``: shorter side to
``size``, centre crop), so a seed gives the same evaluation images and the same training order in both
modes.

Every item carries the index of the image it holds and, for an unreadable file, its index and the error
(``Item``). The datamodule strips that before the batch reaches the model: in training an unreadable file
is replaced by the next readable one, in evaluation it is left out; either way it is counted, and one
warning per epoch gives the count (``data.on_corrupt=skip``), or the run stops naming the file
(``data.on_corrupt=error``).

File lists are numpy arrays of encoded paths, not Python lists of strings: forked loader workers read
them without touching reference counts, so the pages stay shared instead of being copied into every
worker (the usual "DataLoader memory leak").
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, Subset, default_collate

from ssl_bench.data import decode as D
from ssl_bench.data.images import CorruptImage, decode, scan_folder

log = logging.getLogger("ssl_bench")

MAX_TRIES = 16  # consecutive unreadable files before a training item gives up


class Encoded(NamedTuple):
    """``data.decode=device``: what a worker hands over instead of pixels."""

    data: Any  # uint8 1-d tensor of the file's bytes (a list of them in a batch)
    boxes: torch.Tensor  # [V, 4] crop boxes (top, left, height, width), [B, V, 4] in a batch


class Item(NamedTuple):
    x: Any  # training: views [V, 3, S, S] uint8 (or normalised float views, or Encoded); eval: [3, S, S]
    label: int
    index: int  # id of the image this item holds (its index in the split listing)
    bad: int  # id of an unreadable file met on the way (-1: none)
    error: str  # its error ("" when none)


def collate_items(items: list[Item]) -> Item:
    """Default collation, except that encoded images (variable length) stay a list."""
    if isinstance(items[0].x, Encoded):
        x = Encoded([it.x.data for it in items], torch.stack([it.x.boxes for it in items]))
        rest = default_collate([it._replace(x=0) for it in items])
        return rest._replace(x=x)
    return default_collate(items)


# --- file lists ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileList:
    """Image files under one root: encoded relative paths (numpy bytes), int64 labels (-1: none) and
    ids (each file's index in its split listing, increasing; items and messages name images by it)."""

    root: str
    rel: np.ndarray
    labels: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, i: int) -> str:
        return os.path.join(self.root, os.fsdecode(self.rel[i]))

    def path_of(self, image_id: int) -> str:
        return self.path(int(np.searchsorted(self.ids, image_id)))

    def take(self, idx: Any) -> FileList:
        idx = np.asarray(idx, dtype=np.int64)
        return FileList(self.root, self.rel[idx], self.labels[idx], self.ids[idx])

    @staticmethod
    def concat(parts: Sequence[FileList]) -> FileList:
        if len({p.root for p in parts}) != 1:
            raise ValueError("file lists under different roots")
        width = max(p.rel.dtype.itemsize for p in parts)
        rel = np.concatenate([p.rel.astype(f"S{width}") for p in parts])
        offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
        ids = np.concatenate([p.ids + o for p, o in zip(parts, offsets)])  # positions in the concatenation
        return FileList(parts[0].root, rel, np.concatenate([p.labels for p in parts]), ids)


@lru_cache(maxsize=8)
def scan(root: str, split: str, labels: str) -> tuple[FileList, tuple[str, ...]]:
    """The image files of ``root/split`` (``images.scan_folder``: class subfolders, sorted), as a
    ``FileList`` relative to ``root``; cached per process (the auto storage check and the loader share it)."""
    files, targets, classes = scan_folder(Path(root) / split, labels)
    rel = np.array([os.fsencode(os.path.relpath(f, root)) for f in files])
    return FileList(root, rel, np.asarray(targets, dtype=np.int64), np.arange(len(files), dtype=np.int64)), classes


# --- readers: one image file -> what an item holds (picklable, run in the workers) ---------------------------
class CropReader:
    """Random resized crops per view, decoded at the reduced scale they allow (``decode.random_crops``)."""

    def __init__(self, scales: Sequence[tuple[float, float]], size: int, draft: bool = True):
        self.scales, self.size, self.draft = [tuple(s) for s in scales], size, draft

    def __call__(self, src: Any) -> torch.Tensor:
        return D.random_crops(src, self.scales, self.size, draft=self.draft)

    def blank(self) -> torch.Tensor:
        return torch.zeros(len(self.scales), 3, self.size, self.size, dtype=torch.uint8)


class TorchvisionReader:
    """The per-image torchvision v2 pipeline (``augment.backend=torchvision``) on the whole decoded image."""

    def __init__(self, views: Any, size: int):
        self.views, self.size = views, size

    def __call__(self, src: Any) -> list[torch.Tensor]:
        return self.views(D.full_image(src))

    def blank(self) -> list[torch.Tensor]:
        return [torch.zeros(3, self.size, self.size) for _ in self.views.pipelines]


class DeviceReader:
    """``data.decode=device``: the file's bytes and its crop boxes; the GPU decodes the batch."""

    def __init__(self, scales: Sequence[tuple[float, float]], size: int):
        self.scales, self.size = [tuple(s) for s in scales], size

    def __call__(self, src: Any) -> Encoded:
        return Encoded(*D.read_for_device(src, self.scales))

    def blank(self) -> Encoded:
        return Encoded(torch.zeros(0, dtype=torch.uint8), torch.zeros(len(self.scales), 4, dtype=torch.int64))


class EvalReader:
    """Evaluation images: shorter side to ``size``, centre crop (as the memory path decodes)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, src: Any) -> torch.Tensor:
        return decode(src, self.size)

    def blank(self) -> torch.Tensor:
        return torch.zeros(3, self.size, self.size, dtype=torch.uint8)


def error_text(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# --- datasets over file lists -----------------------------------------------------------------------------
class TrainFiles(Dataset):
    """Pretraining images from files; an unreadable file is replaced by the next readable one."""

    def __init__(self, files: FileList, reader: Any):
        self.files, self.reader = files, reader

    def __len__(self) -> int:
        return len(self.files)

    def describe(self, image_id: int) -> str:
        return self.files.path_of(image_id)

    def __getitem__(self, i: int) -> Item:
        f = self.files
        bad, error = -1, ""
        for k in range(MAX_TRIES):
            j = (i + k) % len(f)
            try:
                return Item(self.reader(f.path(j)), int(f.labels[j]), int(f.ids[j]), bad, error)
            except Exception as err:  # PIL raises several types for truncated / non-image files
                if bad < 0:
                    bad, error = int(f.ids[j]), error_text(err)
        raise CorruptImage(
            f"{MAX_TRIES} unreadable images in a row from {self.files.path(i)} on "
            f"(first: {error}); is the data folder intact?"
        )


class EvalFiles(Dataset):
    """Evaluation images from files; an unreadable one comes back blank and flagged (then dropped)."""

    def __init__(self, files: FileList, size: int):
        self.files, self.reader = files, EvalReader(size)

    def __len__(self) -> int:
        return len(self.files)

    def describe(self, image_id: int) -> str:
        return self.files.path_of(image_id)

    def __getitem__(self, i: int) -> Item:
        image_id = int(self.files.ids[i])
        try:
            return Item(self.reader(self.files.path(i)), int(self.files.labels[i]), image_id, -1, "")
        except Exception as err:
            return Item(self.reader.blank(), -1, image_id, image_id, error_text(err))


class EpochLoader(DataLoader):
    """A DataLoader that gives its dataset the epoch before each pass (Lightning calls ``set_epoch`` on
    samplers only, and an IterableDataset has none): the shard order of an epoch is a function of the
    seed and the epoch, so a resumed run reads what an uninterrupted one would."""

    def __init__(self, *args: Any, epoch_fn: Callable[[], int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.epoch_fn = epoch_fn
        self.passes = 0

    def __iter__(self) -> Any:
        self.dataset.set_epoch(self.epoch_fn() if self.epoch_fn is not None else self.passes)
        self.passes += 1
        return super().__iter__()


class Checked:
    """An evaluation loader outside Lightning (``eval_loaders``): yields ``(x, y)`` with unreadable images
    left out, and reports them after the pass."""

    def __init__(self, loader: DataLoader, dm: StreamDataModule, name: str):
        self.loader, self.dm, self.name = loader, dm, name

    def __len__(self) -> int:
        return len(self.loader)

    def sharded(self) -> Checked:
        """This rank's part of the split (``ssl_bench.eval.frozen.shard``)."""
        return Checked(self.dm._loader(self.name, False, split_ranks=True, persistent=False), self.dm, self.name)

    def __iter__(self) -> Any:
        for batch in self.loader:
            yield self.dm.clean(batch, self.name)
        self.dm.flush()


# --- the datamodule -----------------------------------------------------------------------------------------
class StreamDataModule(pl.LightningDataModule):
    """``train`` (pretraining), ``bank`` (labelled training images: kNN bank and linear probe), optional
    ``monitor_bank``, ``val`` and ``test`` datasets over files or shards, with the interface of
    ``InMemoryDataModule``: ``train_dataloader``, ``val_dataloader`` (``[bank, val]``), ``eval_loaders``."""

    def __init__(
        self,
        datasets: dict[str, Dataset],
        classes: tuple[str, ...],
        image_size: int,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        on_corrupt: str = "skip",
        decode_device: str | None = None,
    ):
        super().__init__()
        self.datasets, self.classes = datasets, classes
        self.image_size = image_size
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.pin_memory, self.on_corrupt, self.decode_device = pin_memory, on_corrupt, decode_device
        self._bad: dict[str, dict[int, str]] = {}
        self._reported: dict[str, set[int]] = {}
        self._epoch: int | None = None
        if batch_size > len(datasets["train"]):
            raise ValueError(f"data.batch_size={batch_size} exceeds the {len(datasets['train'])} training images")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return (3, self.image_size, self.image_size)

    def _split(self, *names: str) -> str:
        return next(n for n in names if n in self.datasets)

    def _dist(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is not None:
            return int(trainer.global_rank), int(trainer.world_size)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _loader(self, name: str, train: bool, split_ranks: bool = True, persistent: bool = True) -> DataLoader:
        ds = self.datasets[name]
        kwargs: dict[str, Any] = dict(
            batch_size=self.batch_size if train else self.eval_batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_items,
            pin_memory=self.pin_memory,
            persistent_workers=persistent and self.num_workers > 0,
            drop_last=train,
        )
        if isinstance(ds, IterableDataset):  # shards: the dataset splits itself by rank and worker
            rank, world = self._dist() if split_ranks else (0, 1)
            ds = copy.copy(ds).configure(rank=rank, world_size=world, batch_size=kwargs["batch_size"])
            epoch_fn = (lambda: int(self.trainer.current_epoch)) if self.trainer is not None else None
            return EpochLoader(ds, epoch_fn=epoch_fn, **kwargs)
        rank, world = self._dist()
        if world > 1 and train:  # file lists: the seeded sampler of memory mode (same global order)
            sampler = DistributedSampler(
                ds,
                num_replicas=world,
                rank=rank,
                shuffle=True,
                drop_last=True,
                seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),
            )
            return DataLoader(ds, sampler=sampler, **kwargs)
        if world > 1 and split_ranks:  # evaluation: this rank's contiguous part, gathered in rank order
            n = len(ds)
            ds = Subset(ds, range(n * rank // world, n * (rank + 1) // world))
        return DataLoader(ds, shuffle=train, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> list[DataLoader]:
        # workers started per monitor pass: persistent ones would sit idle, holding memory, between passes
        return [
            self._loader(self._split("monitor_bank", "bank", "train"), False, persistent=False),
            self._loader("val", False, persistent=False),
        ]

    def eval_loaders(self, split: str = "test") -> tuple[Checked, Checked]:
        """(bank = unaugmented labelled training images, queries = ``split``), whole splits, yielding
        ``(x, y)``: the initial / final evaluation and ``ssl-bench-eval``."""
        bank = self._split("bank", "train")
        if split not in self.datasets:
            raise KeyError(split)
        return (
            Checked(self._loader(bank, False, split_ranks=False, persistent=False), self, bank),
            Checked(self._loader(split, False, split_ranks=False, persistent=False), self, split),
        )

    # --- batches: unreadable images, device decoding ------------------------------------------------------
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if not isinstance(batch, Item):
            return batch
        trainer = self.trainer
        if trainer is not None and self._epoch != trainer.current_epoch:
            self.flush()
            self._epoch = trainer.current_epoch
        if trainer is None or trainer.training:
            name = "train"
        else:
            name = [self._split("monitor_bank", "bank", "train"), "val"][dataloader_idx]
        return self.clean(batch, name)

    def teardown(self, stage: str) -> None:
        self.flush()

    def _device(self) -> torch.device:
        if self.trainer is not None and self.trainer.strategy.root_device.type == "cuda":
            return self.trainer.strategy.root_device
        return torch.device(self.decode_device or "cpu")

    def clean(self, batch: Item, name: str) -> tuple[Any, torch.Tensor]:
        """``(x, y)`` of a batch: unreadable files counted (or fatal); in evaluation their rows dropped."""
        x, y, bad = batch.x, batch.label, batch.bad.clone()
        errors = list(batch.error)
        if isinstance(x, Encoded):
            x, failed = D.decode_views(x.data, x.boxes, self.image_size, self._device())
            ok = [k for k, e in enumerate(failed) if not e]
            for k, e in enumerate(failed):
                if e:
                    bad[k], errors[k] = batch.index[k], e
                    if not ok:
                        raise CorruptImage(
                            f"no image of a training batch could be decoded on the device (first: "
                            f"{self.datasets[name].describe(int(batch.index[k]))}: {e})"
                        )
                    x[k], y[k] = x[ok[k % len(ok)]], y[ok[k % len(ok)]]  # in place of the unreadable one
        flagged = (bad >= 0).nonzero().flatten().tolist()
        if flagged:
            self._note(name, [(int(bad[k]), errors[k]) for k in flagged])
            if name != "train":
                keep = bad < 0
                x, y = x[keep], y[keep]
        return x, y

    def _note(self, name: str, found: list[tuple[int, str]]) -> None:
        ds = self.datasets[name]
        if self.on_corrupt == "error":
            i, err = found[0]
            raise CorruptImage(
                f"unreadable image {ds.describe(i)} ({err}); set data.on_corrupt=skip to skip unreadable files"
            )
        seen = self._bad.setdefault(name, {})
        for i, err in found:
            seen.setdefault(i, err)

    def flush(self) -> None:
        """One warning per split for the unreadable files met since the last report."""
        for name, seen in self._bad.items():
            done = self._reported.setdefault(name, set())
            new = [i for i in seen if i not in done]
            if not new:
                continue
            done.update(new)
            ds = self.datasets[name]
            what = "training used the next readable images instead" if name == "train" else "left out of the evaluation"
            log.warning(
                "skipped %d unreadable image%s of %d in %s (first: %s: %s); %s",
                len(new),
                "s" * (len(new) > 1),
                len(ds),
                name,
                ds.describe(new[0]),
                seen[new[0]],
                what,
            )
