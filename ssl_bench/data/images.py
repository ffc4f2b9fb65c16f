"""Real image datasets: CIFAR-10/100 and STL-10 (torchvision's own loaders and layouts) and any
image folder. Each loader returns named splits of uint8 tensors ``[N, 3, H, W]`` plus int64 labels
(``-1`` = unlabelled), which ``InMemoryDataModule`` serves; augmentation then runs batched on the
training device, or per image through torchvision transforms (``augment.backend``).

Split names: ``train`` (pretraining images, labels may be -1), ``bank`` (labelled training images:
the kNN bank and the linear probe's training set), ``val`` (a seeded subset of the evaluation split,
scored during training) and ``test`` (the final evaluation split).

A dataset that is not on disk raises ``DatasetMissing`` with the expected path and how to get it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ssl_bench.errors import DataError

log = logging.getLogger("ssl_bench")

Split = tuple[torch.Tensor, torch.Tensor]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class DatasetMissing(DataError, FileNotFoundError):
    """The dataset is not where the config says; the message says where and how to get it."""


class CorruptImage(DataError, ValueError):
    """An image file that cannot be decoded (``data.on_corrupt=error``)."""


class DataUnavailable(DatasetMissing):
    """The data cannot be served as configured (e.g. ``data.decode=device`` without a GPU); reported
    like a missing dataset: one line, exit code 2."""


def _root(root: Any) -> Path:
    return Path(os.path.expandvars(str(root))).expanduser().absolute()


# --- torchvision datasets ------------------------------------------------------------------------
CIFAR_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "stl10": "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
}


def _tv_dataset(name: str, root: Path, download: bool, verify: bool, **kwargs: Any) -> Any:
    """torchvision's CIFAR10 / CIFAR100 / STL10 reader. ``verify=False`` accepts files whose MD5
    differs from the published archive (a converted or re-encoded copy in the same layout)."""
    from torchvision import datasets

    base = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100, "stl10": datasets.STL10}[name]
    cls = base
    if not verify:

        def _exists(self: Any) -> bool:
            files = [*getattr(self, "train_list", []), *getattr(self, "test_list", [])]
            return all((Path(self.root) / self.base_folder / f[0]).is_file() for f in files)

        def _meta(self: Any) -> None:  # CIFAR's meta file, read without its checksum
            import pickle

            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as fh:
                self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

        overrides: dict[str, Any] = {"_check_integrity": _exists}
        if name != "stl10":
            overrides["_load_meta"] = _meta
        cls = type(base.__name__, (base,), overrides)
    folder = root / base.base_folder
    try:
        return cls(str(root), download=download, **kwargs)
    except RuntimeError as err:
        if "not found" not in str(err) and "corrupted" not in str(err):
            raise
        present = folder.is_dir() and any(folder.iterdir())
        what = (
            "is there but does not match the published files (MD5); if it is a converted copy, set data.verify=false"
            if present
            else "is missing"
        )
        raise DatasetMissing(
            f"data={name}: {folder} {what}. Get it with data.download=true (needs a network), or download "
            f"{CIFAR_URLS[name]} and extract it into {root} (data.root)"
        ) from None
    except OSError as err:  # download=true without a network
        raise DatasetMissing(
            f"data={name}: could not download into {root} ({err.__class__.__name__}: {err}). Without a network, "
            f"fetch {CIFAR_URLS[name]} elsewhere and extract it into {root} (data.root)"
        ) from None


def load_cifar(
    name: str, root: Any, download: bool = False, verify: bool = True
) -> tuple[dict[str, Split], tuple[str, ...]]:
    """CIFAR-10 / CIFAR-100 in torchvision's pickle layout (``<root>/cifar-10-batches-py``)."""
    root = _root(root)
    out: dict[str, Split] = {}
    classes: tuple[str, ...] = ()
    for split, train in (("train", True), ("test", False)):
        ds = _tv_dataset(name, root, download, verify, train=train)
        out[split] = (
            torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2))),
            torch.as_tensor(ds.targets, dtype=torch.long),
        )
        classes = tuple(ds.classes)
    return out, classes


def load_stl10(
    root: Any, pretrain_splits: Iterable[str], download: bool = False, verify: bool = True
) -> tuple[dict[str, Split], tuple[str, ...]]:
    """STL-10 (96 px): pretraining on ``pretrain_splits`` (e.g. unlabeled + train), evaluation on
    train (bank) / test."""
    root = _root(root)
    loaded: dict[str, Split] = {}
    classes: tuple[str, ...] = ()
    for split in {*pretrain_splits, "train", "test"}:
        ds = _tv_dataset("stl10", root, download, verify, split=split)
        loaded[split] = (torch.from_numpy(np.ascontiguousarray(ds.data)), torch.as_tensor(ds.labels, dtype=torch.long))
        classes = tuple(ds.classes) if ds.classes else classes
    pre = [loaded[s] for s in pretrain_splits]
    train = (torch.cat([x for x, _ in pre]), torch.cat([y for _, y in pre]))
    return {"train": train, "bank": loaded["train"], "test": loaded["test"]}, classes


# --- image folders -------------------------------------------------------------------------------
def scan_folder(folder: Path, labels: str = "auto") -> tuple[list[Path], list[int], tuple[str, ...]]:
    """Image files under ``folder``: labelled by their first-level subfolder (class name, sorted) or
    unlabelled (-1) when images sit directly in ``folder`` or ``labels="false"``."""
    if not folder.is_dir():
        raise DatasetMissing(f"image folder {folder} does not exist")
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    labelled = labels == "true" or (
        labels == "auto" and bool(subdirs) and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())
    )
    if labels == "true" and not subdirs:
        raise DatasetMissing(f"{folder} has no class subfolders but data.labels=true")
    files: list[Path] = []
    targets: list[int] = []
    if labelled:
        classes = tuple(p.name for p in subdirs)
        for k, sub in enumerate(subdirs):
            found = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            files += found
            targets += [k] * len(found)
    else:
        classes = ()
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        targets = [-1] * len(files)
    if not files:
        raise DatasetMissing(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return files, targets, classes


def decode(path: Path | BinaryIO, size: int) -> torch.Tensor:
    """One file (a path or an open binary file) -> uint8 [3, size, size]: shorter side resized to
    ``size``, then centre crop. The evaluation images of every storage mode (memory, stream, shards)."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    with Image.open(path) as im:
        im = im.convert("RGB")
        x = TF.pil_to_tensor(im)
    if x.shape[-2:] != (size, size):
        x = TF.center_crop(TF.resize(x, size, antialias=True), [size, size])
    return x


class _Decoder(torch.utils.data.Dataset):
    def __init__(self, files: list[Path], size: int):
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return i, decode(self.files[i], self.size), None
        except Exception as err:  # PIL raises several types for truncated / non-image files
            return i, None, f"{type(err).__name__}: {err}"


def decode_all(
    files: list[Path], size: int, workers: int = 0, on_corrupt: str = "skip", progress: str | None = None
) -> tuple[torch.Tensor, list[int]]:
    """Decode every file (in ``workers`` processes); returns the images and the kept indices.
    Unreadable files are skipped with one counted warning, or raise ``CorruptImage`` naming the file."""
    from rich.progress import Progress

    loader = torch.utils.data.DataLoader(
        _Decoder(files, size), batch_size=256, num_workers=workers, collate_fn=lambda b: b, generator=torch.Generator()
    )  # leaves the global RNG (seeded run) alone
    out = torch.empty(len(files), 3, size, size, dtype=torch.uint8)
    ok = torch.zeros(len(files), dtype=torch.bool)
    bad: list[tuple[Path, str]] = []
    with Progress(transient=True, disable=progress is None) as bar:
        task = bar.add_task(progress or "", total=len(files))
        for batch in loader:
            for i, x, err in batch:
                if x is None:
                    if on_corrupt == "error":
                        raise CorruptImage(
                            f"unreadable image {files[i]} ({err}); set data.on_corrupt=skip to skip unreadable files"
                        )
                    bad.append((files[i], str(err)))
                else:
                    out[i], ok[i] = x, True
            bar.advance(task, len(batch))
    if bad and len(bad) == len(files):
        raise CorruptImage(f"none of the {len(files)} images could be read (first: {bad[0][0]}: {bad[0][1]})")
    if bad:
        log.warning(
            "skipped %d unreadable image%s of %d (first: %s: %s)",
            len(bad),
            "s" * (len(bad) > 1),
            len(files),
            bad[0][0],
            bad[0][1],
        )
    keep = ok.nonzero().flatten()
    return out[keep], keep.tolist()


def _cache_key(files: list[Path], size: int, labels: list[int]) -> str:
    h = hashlib.sha1(f"{size}".encode())
    for f, y in zip(files, labels):
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}|{y}\n".encode())
    return h.hexdigest()[:16]


def load_folder_split(
    folder: Path, size: int, labels: str, on_corrupt: str, cache_dir: Any, workers: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """One split of an image folder as tensors; decoded once and cached (keyed by the files'
    paths, sizes and modification times, the image size and the labels)."""
    files, targets, classes = scan_folder(folder, labels)
    cache = None
    if cache_dir:
        cache = _root(cache_dir) / f"{folder.name}-{size}px-{_cache_key(files, size, targets)}.pt"
        if cache.is_file():
            blob = torch.load(cache, weights_only=True)
            log.info("%s: %d images from the cache %s", folder, len(blob["labels"]), cache)
            if blob["skipped"]:
                log.warning(
                    "skipped %d unreadable image%s of %d under %s (cached decode)",
                    blob["skipped"],
                    "s" * (blob["skipped"] > 1),
                    len(files),
                    folder,
                )
            if on_corrupt == "error" and blob["skipped"]:
                raise CorruptImage(
                    f"{blob['skipped']} unreadable images under {folder} (first: {blob['first_bad']}); "
                    "set data.on_corrupt=skip to skip them"
                )
            return blob["images"], blob["labels"], classes
    images, kept = decode_all(files, size, workers, on_corrupt, progress=f"decoding {folder}")
    y = torch.as_tensor([targets[i] for i in kept], dtype=torch.long)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        missing = sorted(set(range(len(files))) - set(kept))
        tmp = cache.with_suffix(".tmp")
        torch.save(
            {
                "images": images,
                "labels": y,
                "skipped": len(missing),
                "first_bad": str(files[missing[0]]) if missing else None,
            },
            tmp,
        )
        tmp.replace(cache)
    return images, y, classes


def check_folder_root(root: Path, train: Iterable[str], eval_train: str, test: str, name: str = "imagefolder") -> None:
    if not root.is_dir():
        raise DatasetMissing(
            f"data={name}: {root} (data.root) does not exist; expected {root}/<split>/<class>/*.jpg "
            f"with splits {', '.join(dict.fromkeys([*train, eval_train, test]))}"
        )


def load_imagefolder(
    root: Any,
    train: Iterable[str],
    eval_train: str,
    test: str,
    image_size: int,
    labels: str = "auto",
    on_corrupt: str = "skip",
    cache_dir: Any = None,
    workers: int = 0,
) -> tuple[dict[str, Split], tuple[str, ...]]:
    """``root/<train...>`` for pretraining (labels optional), ``root/<eval_train>`` and ``root/<test>``
    (class subfolders) for evaluation. A split named twice is decoded once."""
    root = _root(root)
    check_folder_root(root, train, eval_train, test)
    loaded: dict[str, tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]] = {}

    def get(name: str, need_labels: bool) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
        if name not in loaded:
            loaded[name] = load_folder_split(
                root / name, image_size, "true" if need_labels else labels, on_corrupt, cache_dir, workers
            )
        return loaded[name]

    bank_x, bank_y, classes = get(eval_train, True)
    test_x, test_y, test_classes = get(test, True)
    if test_classes != classes:
        raise DatasetMissing(
            f"{root / test} has classes {list(test_classes)}, "
            f"{root / eval_train} has {list(classes)}; "
            "the evaluation splits need the same class folders"
        )
    parts = [get(name, False)[:2] for name in train]
    pre = (torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts]))
    return {"train": pre, "bank": (bank_x, bank_y), "test": (test_x, test_y)}, classes


# --- split helpers -------------------------------------------------------------------------------
def subset_indices(
    n: int, fraction: float | None = None, size: int | None = None, seed: int = 0
) -> torch.Tensor | None:
    """Sorted indices of a seeded random subset of ``range(n)`` (``fraction`` of it, or ``size``
    elements); None when the subset is everything. Shared by every storage mode, so a seed selects
    the same images from memory, from files and from shards."""
    k = n if size is None and fraction is None else min(n, size if size is not None else max(1, round(n * fraction)))
    if k >= n:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


def subset(split: Split, fraction: float | None = None, size: int | None = None, seed: int = 0) -> Split:
    """A seeded random subset (``fraction`` of the images, or ``size`` of them), in original order."""
    x, y = split
    idx = subset_indices(x.shape[0], fraction, size, seed)
    return split if idx is None else (x[idx], y[idx])
