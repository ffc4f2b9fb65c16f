"""Where the images of an image-folder config (``data=imagefolder|imagenet|imagenet100``) live while training:
``data.storage`` = ``memory`` (decoded once, cached, served from memory: ``images.load_imagefolder``),
``stream`` (file lists; decoded in loader workers: ``stream``), ``shards`` (WebDataset shards: ``shards``)
or ``auto``: shards when ``data.root`` holds a shard index, else memory when the decoded images
(count x 3 x image_size^2 bytes, every split loaded) fit ``data.memory_budget_gb``, else stream.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ssl_bench.data.images import DatasetMissing, DataUnavailable, _root, check_folder_root, subset_indices
from ssl_bench.data.stream import (
    CropReader,
    DeviceReader,
    EvalFiles,
    FileList,
    StreamDataModule,
    TorchvisionReader,
    TrainFiles,
    scan,
)

log = logging.getLogger("ssl_bench")


def _splits(cfg: Any) -> list[str]:
    return list(dict.fromkeys([*[str(s) for s in cfg.train], str(cfg.eval_train), str(cfg.test)]))


def check_root(cfg: Any) -> Path:
    """The data root, checked: the expected layout of ``data=imagenet*`` (one actionable line when it is not
    there), any folder for ``data=imagefolder``."""
    from ssl_bench.data import imagenet
    from ssl_bench.data.shards import has_index, load_index

    root = _root(cfg.root)
    if has_index(root):
        if cfg.name in ("imagenet", "imagenet100"):
            for name, entry in load_index(root)["splits"].items():
                if name in (str(cfg.eval_train), str(cfg.test)):
                    imagenet.check_classes(cfg.name, f"the {name} shards under {root}", entry["classes"])
        return root
    if cfg.name in ("imagenet", "imagenet100"):
        imagenet.check_layout(cfg.name, root, _splits(cfg))
    else:
        check_folder_root(root, cfg.train, str(cfg.eval_train), str(cfg.test))
    return root


def decoded_gb(cfg: Any) -> tuple[int, float]:
    """(images, GB) the memory path would hold: every split folder once, uint8 3 x size x size."""
    root = str(_root(cfg.root))
    n = sum(
        len(scan(root, split, "true" if split in (str(cfg.eval_train), str(cfg.test)) else str(cfg.labels))[0])
        for split in _splits(cfg)
    )
    return n, n * 3 * int(cfg.image_size) ** 2 / 1e9


def resolve_storage(cfg: Any) -> str:
    """``memory``, ``stream`` or ``shards`` for this config (``auto`` decided as the module says); the
    layout is checked first, so a missing dataset gives its one-line message in every mode."""
    storage = str(cfg.get("storage", "memory"))
    root = check_root(cfg)
    from ssl_bench.data.shards import has_index

    if storage == "auto":
        if has_index(root):
            storage = "shards"
        else:
            n, gb = decoded_gb(cfg)
            budget = float(cfg.get("memory_budget_gb", 8.0))
            storage = "memory" if gb <= budget else "stream"
            log.info(
                "data.storage=auto: %d images at %d px = %.2f GB decoded, data.memory_budget_gb=%g -> %s",
                n,
                int(cfg.image_size),
                gb,
                budget,
                storage,
            )
    elif storage == "shards" and not has_index(root):
        from ssl_bench.data.shards import load_index

        load_index(root)  # raises, naming the missing index and the command that writes it
    elif storage != "shards" and has_index(root):
        raise DatasetMissing(
            f"{root} holds shards ({root}/index.json), not image folders; use data.storage=shards or auto"
        )
    if str(cfg.get("decode", "cpu")) == "device" and storage == "memory":
        raise DataUnavailable(
            "data.decode=device decodes streamed files on the GPU; it needs data.storage=stream "
            "or shards (the memory path decodes once, on the CPU)"
        )
    return storage


def train_reader(cfg: Any, augment: Any, device: bool) -> Any:
    """What a training item holds: crops for the batched augmentation, the per-image torchvision views,
    or (``data.decode=device``) the encoded file and its crop boxes."""
    from ssl_bench.data.augment import TorchvisionViews, views_from_config

    size = int(cfg.image_size)
    if augment is None:  # evaluation only (ssl-bench-eval): the training set is never read
        return CropReader([(float(cfg.crop_min_scale), 1.0)] * 2, size)
    per_view = views_from_config(augment, size)
    if augment.get("backend", "batched") == "torchvision":
        if device:
            raise DataUnavailable(
                "data.decode=device needs augment.backend=batched (the per-image torchvision "
                "pipeline runs in the loader workers, on the CPU)"
            )
        return TorchvisionReader(TorchvisionViews(per_view, size, cfg.mean, cfg.std), size)
    scales = [(v.crop_min_scale, v.crop_max_scale) for v in per_view]
    return DeviceReader(scales, size) if device else CropReader(scales, size)


def folder_lists(cfg: Any) -> tuple[dict[str, FileList], tuple[str, ...]]:
    """``train`` (the pretraining splits, concatenated), ``bank`` (``data.eval_train``) and ``test`` file
    lists; a split named twice is listed once, with the labels of its first use (as the memory path)."""
    root = str(_root(cfg.root))
    listed: dict[str, tuple[FileList, tuple[str, ...]]] = {}

    def get(name: str, need_labels: bool) -> tuple[FileList, tuple[str, ...]]:
        if name not in listed:
            listed[name] = scan(root, name, "true" if need_labels else str(cfg.get("labels", "auto")))
        return listed[name]

    bank, classes = get(str(cfg.eval_train), True)
    test, test_classes = get(str(cfg.test), True)
    if test_classes != classes:
        raise DatasetMissing(
            f"{Path(root) / str(cfg.test)} has classes {list(test_classes)}, "
            f"{Path(root) / str(cfg.eval_train)} has {list(classes)}; the evaluation splits need the "
            "same class folders"
        )
    train = FileList.concat([get(str(name), False)[0] for name in cfg.train])
    return {"train": train, "bank": bank, "test": test}, classes


def _take(files: FileList, idx: Any) -> FileList:
    return files if idx is None else files.take(idx.numpy())


def build_stream_datamodule(cfg: Any, augment: Any = None, storage: str = "stream") -> StreamDataModule:
    """The streaming datamodule of an image-folder config (``storage=stream``) or of its shards; the same
    seeded subsets (``data.fraction``, ``val_size``, ``bank_size``) as the memory path."""
    from ssl_bench.data import decode

    device = str(cfg.get("decode", "cpu")) == "device"
    if device:
        decode.require_cuda()
    reader = train_reader(cfg, augment, device)
    size, seed = int(cfg.image_size), int(cfg.split_seed)
    if storage == "shards":
        from ssl_bench.data.shards import shard_datasets

        datasets, classes = shard_datasets(cfg, reader)
    else:
        lists, classes = folder_lists(cfg)
        train, bank, test = lists["train"], lists["bank"], lists["test"]
        datasets = {
            "train": TrainFiles(_take(train, subset_indices(len(train), fraction=cfg.fraction, seed=seed)), reader),
            "bank": EvalFiles(bank, size),
            "test": EvalFiles(test, size),
            "val": EvalFiles(_take(test, subset_indices(len(test), size=cfg.val_size, seed=seed + 1)), size),
        }
        if cfg.bank_size is not None:
            datasets["monitor_bank"] = EvalFiles(
                _take(bank, subset_indices(len(bank), size=cfg.bank_size, seed=seed + 2)), size
            )
    workers = int(cfg.num_workers)
    if workers == 0:
        log.warning(
            "data.storage=%s with data.num_workers=0: images are decoded in the training process; set "
            "data.num_workers to the CPU cores the loader may use",
            storage,
        )
    return StreamDataModule(
        datasets,
        classes,
        size,
        int(cfg.batch_size),
        int(cfg.eval_batch_size),
        workers,
        bool(cfg.pin_memory),
        str(cfg.get("on_corrupt", "skip")),
        "cuda" if device else None,
    )
