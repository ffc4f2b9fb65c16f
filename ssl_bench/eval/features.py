"""Frozen-backbone features for offline evaluation, extracted once and cached.

The cache file is ``<run dir>/features/<key>.pt``; the key covers the checkpoint file (path, size,
mtime), the data config (minus loader settings, which do not change features) and the split.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("ssl_bench")

FEATURES_DIR = "features"
CACHE_VERSION = 1
LOADER_KEYS = ("batch_size", "eval_batch_size", "num_workers", "pin_memory")  # do not change features


def feature_key(checkpoint: Path, data: DictConfig, split: str) -> str:
    from ssl_bench.eval.export import checkpoint_stamp

    content = {k: v for k, v in OmegaConf.to_container(data, resolve=True).items() if k not in LOADER_KEYS}
    blob = json.dumps(
        {"version": CACHE_VERSION, "checkpoint": checkpoint_stamp(checkpoint), "data": content, "split": split},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
    )


def tracked(loader: Iterable[Any], bar: Any, description: str) -> Iterator[Any]:
    task = bar.add_task(description, total=len(loader), info="")  # type: ignore[arg-type]
    for batch in loader:
        yield batch
        bar.advance(task)


def extract_features(model: Any, split: str, data: DictConfig, device: Any) -> dict[str, Any]:
    """Features of the labelled training split and of ``split``, on the CPU. ``KeyError`` when the
    dataset has no such split."""
    from ssl_bench.data.datamodule import build_datamodule
    from ssl_bench.eval.frozen import extract

    dm = build_datamodule(data)
    train_loader, eval_loader = dm.eval_loaders(split)
    model.to(device)
    with progress() as bar:
        train_x, train_y = extract(model, tracked(train_loader, bar, "features: train"), device)
        eval_x, eval_y = extract(model, tracked(eval_loader, bar, f"features: {split}"), device)
    return {
        "train_x": train_x.cpu(),
        "train_y": train_y.cpu(),
        "eval_x": eval_x.cpu(),
        "eval_y": eval_y.cpu(),
        "num_classes": int(dm.num_classes),
        "split": str(split),
    }


def cached_features(path: Path) -> dict[str, Any] | None:
    import torch

    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a partial or stale file: extract again
        log.warning("features: ignoring unreadable cache %s (%s)", path, err)
        return None


def save_features(path: Path, feats: dict[str, Any]) -> None:
    import os

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(feats, tmp)
    os.replace(tmp, path)
