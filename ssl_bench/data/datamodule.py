"""Datamodules. Images are kept as uint8 tensors; augmentation happens on the training device.

``InMemoryDataModule`` serves any (images, labels) tensors: the training loader yields raw
uint8 batches (one tensor gather per batch, no per-sample Python), and the validation loaders
are ``[bank, val]``: the unaugmented training images whose features form the kNN bank, then the
held-out split the monitors are scored on.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ssl_bench.data.shapes import SHAPE_CLASSES, generate_shapes


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


class InMemoryDataModule(pl.LightningDataModule):
    def __init__(self, splits: dict[str, tuple[torch.Tensor, torch.Tensor]], classes: tuple[str, ...],
                 batch_size: int, eval_batch_size: int, num_workers: int = 0, pin_memory: bool = False):
        super().__init__()
        self.splits = {k: TensorImages(*v) for k, v in splits.items()}
        self.classes = classes
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.pin_memory = pin_memory
        if batch_size > len(self.splits["train"]):
            raise ValueError(
                f"data.batch_size={batch_size} exceeds the {len(self.splits['train'])} training images"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"].images.shape[1:])

    def _loader(self, split: str, train: bool) -> DataLoader:
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            collate_fn=_batch_identity,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> list[DataLoader]:
        return [self._loader("train", False), self._loader("val", False)]

    def eval_loaders(self, split: str = "test") -> tuple[DataLoader, DataLoader]:
        """(bank = unaugmented train, queries = ``split``) for the initial / final evaluation."""
        return self._loader("train", False), self._loader(split, False)


@lru_cache(maxsize=4)
def _shapes(n: int, size: int, seed: int, contrast: float) -> tuple[torch.Tensor, torch.Tensor]:
    return generate_shapes(n, image_size=size, seed=seed, contrast=contrast)


def build_datamodule(cfg: Any) -> Any:
    """The datamodule named by ``data.name`` (cached across runs of one process, e.g. a sweep);
    text corpora (``text_*``) are served by ``ssl_bench.text.datamodule``."""
    if str(cfg.name).startswith("text_"):
        from ssl_bench.text.datamodule import build_text_datamodule

        return build_text_datamodule(cfg)
    if cfg.name == "shapes":
        s = int(cfg.generator_seed)
        splits = {
            "train": _shapes(cfg.train_size, cfg.image_size, s, cfg.contrast),
            "val": _shapes(cfg.val_size, cfg.image_size, s + 1, cfg.contrast),
            "test": _shapes(cfg.test_size, cfg.image_size, s + 2, cfg.contrast),
        }
        return InMemoryDataModule(splits, SHAPE_CLASSES, cfg.batch_size, cfg.eval_batch_size, cfg.num_workers,
                                  cfg.pin_memory)
    raise ValueError(f"data.name={cfg.name!r}; allowed: shapes, text_embedded, text_files")
