"""Write a sharded copy of an image folder (WebDataset tar shards) for cluster file systems.

    python -m ssl_bench.data.shard SRC DST [--splits train,val] [--shard-size 1000] [--workers 4]

``SRC`` is a data root as ``data=imagefolder`` reads it (``SRC/<split>/<class>/*.jpg``, or unlabelled
``SRC/<split>/*.jpg``); every split folder becomes ``DST/<split>/<split>-NNNNNN.tar``, plus
``DST/<split>/order.npy`` and one ``DST/index.json`` (classes, per-class counts, shard files and their
image counts). Each sample keeps the original file's bytes (no re-encoding) under its suffix (``jpg``,
``png``...), its label as ``cls`` and, as its key, its index in the sorted folder listing, so a seed selects
the same evaluation subsets as the other storage modes. The images are written in a seeded random order
(``--seed``): every shard is a random sample of the split, which is what makes shard-level shuffling
(``ssl_bench.data.shards``) shuffle well. Every file is decoded once while writing (``--no-verify`` skips
that); unreadable files are left out with a count, or stop the command with ``--on-corrupt error``.

WebDataset (plain POSIX tar files read sequentially, no server, no index service) over LitData: its
shards are ordinary tar archives that any file system, object store or ``tar tf`` can read, and reading
them needs nothing but the ``webdataset`` package that is already a dependency.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

INDEX = "index.json"
FORMAT = "ssl-bench-webdataset-1"


class ShardError(ValueError):
    pass


class _Reader(torch.utils.data.Dataset):
    """Reads (and optionally decodes, to verify) the files in writing order, in loader workers."""

    def __init__(self, files: list[Path], order: np.ndarray, verify: bool):
        self.files, self.order, self.verify = files, order, verify

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int) -> tuple[int, bytes | None, str]:
        i = int(self.order[k])
        try:
            data = self.files[i].read_bytes()
            if self.verify:
                from PIL import Image

                with Image.open(io.BytesIO(data)) as im:
                    im.convert("RGB")
            return i, data, ""
        except Exception as err:  # PIL raises several types for truncated / non-image files
            return i, None, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def write_split(
    src: Path,
    dst: Path,
    split: str,
    shard_size: int = 1000,
    seed: int = 0,
    workers: int = 0,
    verify: bool = True,
    on_corrupt: str = "skip",
    progress: bool = True,
) -> dict[str, Any]:
    """Shard ``src/split`` into ``dst/split``; returns the split's entry of the index."""
    import webdataset as wds
    from rich.progress import Progress

    from ssl_bench.data.images import scan_folder

    files, targets, classes = scan_folder(src / split, "auto")
    out = dst / split
    if out.is_dir() and any(out.glob("*.tar")):
        raise ShardError(f"{out} already holds shards; remove it or choose another DST")
    out.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(files))
    loader = torch.utils.data.DataLoader(
        _Reader(files, order, verify), batch_size=64, num_workers=workers, collate_fn=lambda b: b
    )
    counts: dict[str, int] = {}
    written: list[int] = []
    bad: list[tuple[Path, str]] = []
    pattern = str(out / f"{split}-%06d.tar")
    with (
        wds.ShardWriter(pattern, maxcount=shard_size, maxsize=float("inf"), verbose=0) as sink,
        Progress(transient=True, disable=not progress) as bar,
    ):
        task = bar.add_task(f"sharding {src / split}", total=len(files))
        for batch in loader:
            for i, data, err in batch:
                if data is None:
                    if on_corrupt == "error":
                        raise ShardError(
                            f"unreadable image {files[i]} ({err}); --on-corrupt skip leaves such files out"
                        )
                    bad.append((files[i], err))
                    continue
                sink.write({"__key__": f"{i:08d}", files[i].suffix.lower().lstrip("."): data, "cls": int(targets[i])})
                counts[sink.fname] = counts.get(sink.fname, 0) + 1
                written.append(i)
            bar.advance(task, len(batch))
    if not written:
        raise ShardError(f"no readable image under {src / split}")
    if bad:
        print(
            f"shard: skipped {len(bad)} unreadable image{'s' * (len(bad) > 1)} of {len(files)} under {src / split} "
            f"(first: {bad[0][0]}: {bad[0][1]})",
            file=sys.stderr,
        )
    np.save(out / "order.npy", np.asarray(written, dtype=np.int64))
    kept = np.asarray([targets[i] for i in written], dtype=np.int64)
    return {
        "classes": list(classes),
        "class_counts": [int((kept == k).sum()) for k in range(len(classes))],
        "count": len(written),
        "source_count": len(files),
        "skipped": len(bad),
        "order": f"{split}/order.npy",
        "shards": [{"file": str(Path(f).relative_to(dst)), "count": c} for f, c in counts.items()],
    }


def write_shards(
    src: str | Path,
    dst: str | Path,
    splits: list[str] | None = None,
    shard_size: int = 1000,
    seed: int = 0,
    workers: int = 0,
    verify: bool = True,
    on_corrupt: str = "skip",
    progress: bool = True,
) -> dict[str, Any]:
    """Shard every split folder of ``src`` (or ``splits``) into ``dst`` and write ``dst/index.json``."""
    src, dst = Path(src).expanduser().absolute(), Path(dst).expanduser().absolute()
    if not src.is_dir():
        raise ShardError(f"{src} does not exist")
    names = splits or sorted(p.name for p in src.iterdir() if p.is_dir())
    if not names:
        raise ShardError(f"{src} has no split folders (expected {src}/<split>/<class>/*.jpg)")
    dst.mkdir(parents=True, exist_ok=True)
    index = {"format": FORMAT, "shard_size": shard_size, "seed": seed, "splits": {}}
    for split in names:
        if not (src / split).is_dir():
            raise ShardError(f"{src / split} does not exist")
        index["splits"][split] = write_split(src, dst, split, shard_size, seed, workers, verify, on_corrupt, progress)
    (dst / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return index


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ssl_bench.data.shard", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="image folder root: SRC/<split>/<class>/*.jpg")
    p.add_argument("dst", help="output folder: DST/<split>/*.tar and DST/index.json")
    p.add_argument("--splits", default=None, help="comma-separated split folders (default: every subfolder of SRC)")
    p.add_argument("--shard-size", type=int, default=1000, help="images per shard (default 1000, ~100 MB of ImageNet)")
    p.add_argument("--seed", type=int, default=0, help="seed of the writing order (default 0)")
    p.add_argument("--workers", type=int, default=0, help="processes reading and verifying the files (default 0)")
    p.add_argument("--no-verify", action="store_true", help="do not decode each file while writing")
    p.add_argument("--on-corrupt", choices=("skip", "error"), default="skip")
    args = p.parse_args(argv)
    if args.shard_size < 1:
        p.error("--shard-size must be >= 1")
    from ssl_bench.data.images import DatasetMissing

    try:
        index = write_shards(
            args.src,
            args.dst,
            [s for s in args.splits.split(",") if s] if args.splits else None,
            args.shard_size,
            args.seed,
            args.workers,
            not args.no_verify,
            args.on_corrupt,
        )
    except (ShardError, DatasetMissing) as err:
        print(f"shard: {err}", file=sys.stderr)
        return 2
    for split, entry in index["splits"].items():
        print(
            f"{Path(args.dst) / split}: {entry['count']:,} images in {len(entry['shards'])} shards, "
            f"{len(entry['classes'])} classes" + (f", {entry['skipped']} skipped" if entry["skipped"] else "")
        )
    print(f"use it with: ssl-bench data=imagefolder data.root={args.dst}   (data.storage=auto finds {INDEX})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
