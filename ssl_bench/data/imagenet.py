"""ImageNet (ILSVRC-2012, ``data=imagenet``) and ImageNet-100 (``data=imagenet100``) are image folders with
a fixed layout: ``<root>/train/<wnid>/*.JPEG`` and ``<root>/val/<wnid>/*.JPEG`` (the validation images
sorted into class folders, as torchvision's ImageFolder expects), or a sharded copy of it
(``python -m ssl_bench.data.shard``). ``check_layout`` says in one line what is missing and how to get it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ssl_bench.data.images import DatasetMissing

log = logging.getLogger("ssl_bench")

URL = "https://image-net.org/download-images.php"


def _how(name: str) -> str:
    get = f"download ILSVRC-2012 from {URL} (registration needed), sort val into class folders, and set data.root"
    if name == "imagenet100":
        return (
            f"build it from an ImageNet folder with `python -m ssl_bench.data.imagenet100 IMAGENET_ROOT DST` "
            f"(class folders linked, nothing copied) and set data.root=DST; for ImageNet itself, {get}"
        )
    return get


def check_layout(name: str, root: Path, splits: list[str], classes: tuple[str, ...] | None = None) -> None:
    """Raise ``DatasetMissing`` (one line: what is missing, the expected layout, how to get it) unless
    every split folder is there; for ImageNet-100 the class folders must be the 100 listed ones."""
    layout = f"expected {root}/{{{','.join(dict.fromkeys(splits))}}}/<wnid>/*.JPEG"
    for split in dict.fromkeys(splits):
        folder = root / split
        if not folder.is_dir():
            where = f"{root} (data.root) does not exist" if not root.is_dir() else f"{folder} is missing"
            raise DatasetMissing(f"data={name}: {where}; {layout}; {_how(name)}")
        found = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
        check_classes(name, str(folder), found)


def check_classes(name: str, where: str, found: tuple[str, ...] | Any) -> None:
    found = tuple(found)
    if name == "imagenet100":
        from ssl_bench.data.imagenet100 import CLASSES

        extra = sorted(set(found) - set(CLASSES))
        missing = sorted(set(CLASSES) - set(found))
        if extra or missing:
            raise DatasetMissing(
                f"data=imagenet100: {where} has {len(found)} class folders, {len(missing)} of the 100 ImageNet-100 "
                f"classes missing{f' (e.g. {missing[0]})' if missing else ''} and {len(extra)} others"
                f"{f' (e.g. {extra[0]})' if extra else ''}; {_how(name)}"
            )
    elif name == "imagenet" and len(found) != 1000:
        log.warning("data=imagenet: %s has %d class folders, ImageNet-1k has 1000", where, len(found))
