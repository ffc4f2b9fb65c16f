"""Datamodules. Images are kept as uint8 tensors; augmentation happens on the training device.
Image folders (``data=imagefolder|imagenet|imagenet100``) may instead stream from files or shards
(``data.storage``; ``ssl_bench.data.storage``).

``InMemoryDataModule`` serves any (images, labels) tensors: the training loader yields raw
uint8 batches (one tensor gather per batch, no per-sample Python), and the validation loaders
are ``[bank, val]``: the unaugmented training images whose features form the kNN bank, then the
held-out split the monitors are scored on.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from ssl_bench.data.shapes import generate_shapes, shape_classes
from ssl_bench.distributed import shard_range
from ssl_bench.errors import DataError

FOLDER_DATASETS = ("imagefolder", "imagenet", "imagenet100")  # data.storage: memory | stream | shards | auto


class TensorImages(Dataset):
    """(uint8 images [N,C,H,W], int64 labels [N]); fetches whole batches with one index op."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(idx)
        return self.images[index], self.labels[index]


def _batch_identity(batch: Any) -> Any:
    return batch


class ViewImages(Dataset):
    """Per-image path (``augment.backend=torchvision``): each item is (list of views, label)."""

    def __init__(self, base: TensorImages, transform: Any):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        x, y = self.base[i]
        return self.transform(x), y


class InMemoryDataModule(pl.LightningDataModule):
    """Named splits of uint8 images: ``train`` (pretraining; label -1 = unlabelled), optional
    ``bank`` (labelled training images for kNN / linear evaluation; default: ``train``), optional
    ``monitor_bank`` (a smaller bank for the in-training kNN monitor), ``val`` and ``test``.

    With ``views`` (a per-image transform), training batches are lists of augmented views built in
    the DataLoader workers instead of raw images augmented on the training device."""

    def __init__(
        self,
        splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
        classes: tuple[str, ...],
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        views: Any = None,
    ):
        super().__init__()
        self.splits = {k: TensorImages(*v) for k, v in splits.items()}
        self.classes = classes
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.pin_memory = pin_memory
        self.views = views
        if batch_size > len(self.splits["train"]):
            raise DataError(f"data.batch_size={batch_size} exceeds the {len(self.splits['train'])} training images")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"].images.shape[1:])

    def _split(self, *names: str) -> str:
        return next(n for n in names if n in self.splits)

    def _loader(self, split: str, train: bool, shard: bool = False) -> DataLoader:
        """A split's loader. Under torch.distributed the training loader is a ``DistributedSampler``
        (seeded, so the global batch of step k holds the same images whatever the number of ranks)
        and ``shard=True`` gives this rank its contiguous part of an evaluation split."""
        data: Dataset = self.splits[split]
        per_image = train and self.views is not None
        if per_image:
            data = ViewImages(self.splits[split], self.views)
        sampler = None
        if train and dist.is_available() and dist.is_initialized():
            sampler = DistributedSampler(
                data, shuffle=True, seed=int(os.environ.get("PL_GLOBAL_SEED", 0)), drop_last=True
            )
        elif shard:
            data = Subset(data, shard_range(len(data)))
        return DataLoader(
            data,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            drop_last=train,
            num_workers=self.num_workers,
            collate_fn=None if per_image else _batch_identity,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> list[DataLoader]:
        """[kNN bank, monitored split], each sharded over the ranks (the method gathers the features)."""
        return [
            self._loader(self._split("monitor_bank", "bank", "train"), False, shard=True),
            self._loader("val", False, shard=True),
        ]

    def eval_loaders(self, split: str = "test") -> tuple[DataLoader, DataLoader]:
        """(bank = unaugmented labelled training images, queries = ``split``) for the initial / final
        evaluation."""
        return self._loader(self._split("bank", "train"), False), self._loader(split, False)


@lru_cache(maxsize=4)
def _shapes(
    n: int, size: int, seed: int, contrast: float, num_classes: int = 10, palette: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    return generate_shapes(n, image_size=size, seed=seed, contrast=contrast, num_classes=num_classes, palette=palette)


@lru_cache(maxsize=2)
def _real(key: str) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], tuple[str, ...]]:
    """Loaded once per process (a sweep's jobs share it); ``key`` is the JSON of the data config."""
    import json

    from ssl_bench.data import images

    c = json.loads(key)
    if c["name"] in ("cifar10", "cifar100"):
        return images.load_cifar(c["name"], c["root"], c["download"], c["verify"])
    if c["name"] == "stl10":
        return images.load_stl10(c["root"], c["pretrain_splits"], c["download"], c["verify"])
    return images.load_imagefolder(
        c["root"],
        c["train"],
        c["eval_train"],
        c["test"],
        c["image_size"],
        c["labels"],
        c["on_corrupt"],
        c["cache_dir"],
        c["decode_workers"],
    )


def _real_splits(cfg: Any) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], tuple[str, ...]]:
    import json

    from omegaconf import OmegaConf

    from ssl_bench.data.images import subset

    keys = (
        "name",
        "root",
        "download",
        "verify",
        "pretrain_splits",
        "train",
        "eval_train",
        "test",
        "image_size",
        "labels",
        "on_corrupt",
        "cache_dir",
        "decode_workers",
    )
    c = OmegaConf.to_container(cfg, resolve=True)
    loaded, classes = _real(json.dumps({k: c.get(k) for k in keys}, sort_keys=True))
    splits = dict(loaded)
    seed = int(cfg.split_seed)
    splits.setdefault("bank", splits["train"])  # evaluation always uses the whole labelled training set
    splits["train"] = subset(splits["train"], fraction=cfg.fraction, seed=seed)
    splits["val"] = subset(splits["test"], size=cfg.val_size, seed=seed + 1)
    if cfg.bank_size is not None:
        splits["monitor_bank"] = subset(splits["bank"], size=cfg.bank_size, seed=seed + 2)
    return splits, classes


def build_datamodule(cfg: Any, augment: Any = None) -> Any:
    """The datamodule named by ``data.name`` (data cached across runs of one process, e.g. a sweep);
    text corpora (``text_*``) are served by ``ssl_bench.text.datamodule``. ``augment`` (the augment
    config) switches training batches to per-image torchvision views when ``augment.backend=torchvision``."""
    if str(cfg.name).startswith("text_"):
        from ssl_bench.text.datamodule import build_text_datamodule

        return build_text_datamodule(cfg)
    views = None
    if augment is not None and augment.get("backend", "batched") == "torchvision":
        from ssl_bench.data.augment import TorchvisionViews, views_from_config

        views = TorchvisionViews(views_from_config(augment, cfg.image_size), cfg.image_size, cfg.mean, cfg.std)
    if cfg.name in FOLDER_DATASETS:  # data.storage: memory (below), or files / shards streamed
        from ssl_bench.data.storage import build_stream_datamodule, resolve_storage

        storage = resolve_storage(cfg)
        if storage != "memory":
            return build_stream_datamodule(cfg, augment, storage)
    if cfg.name == "shapes":
        s, variant = int(cfg.generator_seed), (int(cfg.get("num_classes", 10)), int(cfg.get("palette", 0)))
        splits = {
            "train": _shapes(cfg.train_size, cfg.image_size, s, cfg.contrast, *variant),
            "val": _shapes(cfg.val_size, cfg.image_size, s + 1, cfg.contrast, *variant),
            "test": _shapes(cfg.test_size, cfg.image_size, s + 2, cfg.contrast, *variant),
        }
        classes: tuple[str, ...] = shape_classes(variant[0])
    elif cfg.name in ("cifar10", "cifar100", "stl10", *FOLDER_DATASETS):
        splits, classes = _real_splits(cfg)
    else:
        raise ValueError(
            f"data.name={cfg.name!r}; allowed: shapes, cifar10, cifar100, stl10, imagefolder, imagenet, "
            "imagenet100, text_embedded, text_files"
        )
    return InMemoryDataModule(
        splits, classes, cfg.batch_size, cfg.eval_batch_size, cfg.num_workers, cfg.pin_memory, views
    )
