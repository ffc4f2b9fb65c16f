"""Write a labelled image folder (``train/<class>/*``, ``test/<class>/*``) as CIFAR-10's python
layout (``cifar-10-batches-py``: five pickled training batches, ``test_batch``, ``batches.meta``),
so torchvision's CIFAR-10 reader (``data=cifar10 data.verify=false``) can load it::

    python -m ssl_bench.data.convert SRC_FOLDER DST_ROOT

Each batch is a dict with ``data`` (uint8 ``[N, 3072]``: the red, green and blue 32x32 planes, row
major), ``labels``, ``filenames`` and ``batch_label``, as in the published archive.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from ssl_bench.data.images import decode_all, scan_folder

TRAIN_BATCHES = 5


def _write(path: Path, images: np.ndarray, labels: list[int], names: list[str], label: str) -> None:
    blob = {"batch_label": label, "labels": labels, "data": images.reshape(len(images), -1), "filenames": names}
    with open(path, "wb") as fh:
        pickle.dump(blob, fh)


def imagefolder_to_cifar(src: str | Path, dst: str | Path, workers: int = 2) -> Path:
    """Convert ``src`` (train/ and test/ with class folders) into ``dst/cifar-10-batches-py``."""
    src, out = Path(src), Path(dst) / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    classes: tuple[str, ...] = ()
    for split in ("train", "test"):
        files, targets, classes = scan_folder(src / split, "true")
        images, kept = decode_all(files, 32, workers, on_corrupt="error", progress=f"reading {src / split}")
        order = np.random.default_rng(0).permutation(len(kept))  # classes mixed across batches, as published
        x = images.numpy()[order]  # [N, 3, 32, 32]: planes in CIFAR's order
        y = [targets[kept[i]] for i in order]
        names = [files[kept[i]].name for i in order]
        if split == "test":
            _write(out / "test_batch", x, y, names, "testing batch 1 of 1")
            continue
        for b, idx in enumerate(np.array_split(np.arange(len(x)), TRAIN_BATCHES)):
            _write(
                out / f"data_batch_{b + 1}",
                x[idx],
                [y[i] for i in idx],
                [names[i] for i in idx],
                f"training batch {b + 1} of {TRAIN_BATCHES}",
            )
    with open(out / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(classes), "num_cases_per_batch": 10000, "num_vis": 3072}, fh)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ssl_bench.data.convert", description=__doc__.splitlines()[0])
    ap.add_argument("src", help="image folder with train/<class>/ and test/<class>/")
    ap.add_argument("dst", help="data.root to write cifar-10-batches-py into")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    print(imagefolder_to_cifar(args.src, args.dst, args.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
