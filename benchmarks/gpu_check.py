"""The GPU check: one command, about 8 minutes on one GPU, a table and a JSON file.

    python benchmarks/gpu_check.py                       # CIFAR-10 JPEGs from ../shared/datasets/cifar10
    python benchmarks/gpu_check.py --data /path/cifar10-jpg --out gpu.json
    python benchmarks/gpu_check.py --smoke               # CPU, tiny embedded data, about a minute (tests)

1. Epoch time of SimCLR, ResNet-18 with the CIFAR stem, batch 512 (``recipe=cifar10_simclr``), through
   ``ssl-bench`` itself: fp32, then channels_last + bf16, then + ``torch.compile``. Each run trains
   two epochs; the figure is the second epoch's time (training batches only: augmentation, forward,
   backward, optimizer), from the run record.
2. Batched augmentation throughput on the device (``augment=simclr``, two views), 32 and 224 px.
3. A short SimSiam CIFAR-10 run (``recipe=cifar10_simsiam``, bf16): kNN accuracy after every epoch,
   as a sanity curve (it must rise well above the random-init network's).

Beside ours, two published anchors: 11.9 s/epoch (a tuned single-file SimCLR, ResNet-18, batch 512,
A100) and about 25-30 s/epoch (lightly's CIFAR-10 benchmark, A6000, kNN pass included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = ROOT.parent / "shared" / "datasets" / "cifar10" / "cifar10-jpg.zip"
ANCHORS = [
    ("tuned single-file SimCLR, ResNet-18, batch 512, A100", 11.9),
    ("lightly CIFAR-10 benchmark, A6000, kNN pass included", 27.5),
]
COMMON = ["logger=none", "trainer.enable_progress_bar=false", "trainer.checkpoint=false"]


def cifar_folder(data: str | None, work: Path) -> Path:
    """An ImageFolder of CIFAR-10 (``train/<class>/``, ``test/<class>/``): given, or unzipped once."""
    if data:
        return Path(data)
    target = work / "cifar10-jpg"
    if not (target / "train").is_dir():
        if not DEFAULT_ZIP.is_file():
            raise SystemExit(f"gpu_check: no CIFAR-10 at {DEFAULT_ZIP}; pass --data FOLDER (train/<class>/*.jpg)")
        with zipfile.ZipFile(DEFAULT_ZIP) as zf:
            zf.extractall(work)
        found = next(p.parent for p in work.rglob("train") if (p / "airplane").is_dir())
        if found != target:
            found.rename(target)
    return target


def ssl_bench(run_dir: Path, *overrides: str, timeout: float = 900) -> dict[str, Any]:
    """``ssl-bench OVERRIDES`` into ``run_dir``; its record."""
    cmd = [sys.executable, "-m", "ssl_bench.app", *COMMON, f"hydra.run.dir={run_dir}", *overrides]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(overrides)}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    record = json.loads((run_dir / "record.json").read_text())
    record["_wall_s"] = time.perf_counter() - t0
    return record


def epoch_seconds(record: dict[str, Any], n_images: int) -> float:
    """The last epoch's training time from its throughput (``train/img_per_s``)."""
    return n_images / record["epochs"][-1]["train/img_per_s"]


def augmentation(device: str, sizes: list[int], batch: int, rounds: int) -> list[dict[str, Any]]:
    """Source images per second through the batched SimCLR pipeline (two views) on ``device``."""
    import torch
    from hydra import compose, initialize_config_dir

    from ssl_bench.config import config_dir
    from ssl_bench.data.augment import BatchAugment, views_from_config

    out = []
    for size in sizes:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=["augment=simclr", f"data.image_size={size}", f"augment.blur_min_size={min(size, 64)}"],
            )
        aug = BatchAugment(views_from_config(cfg.augment, size), size, cfg.data.mean, cfg.data.std).to(device)
        x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
        times = []
        for _ in range(rounds + 2):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            aug(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        best = sorted(times[2:])[len(times[2:]) // 2]
        out.append({"image_size": size, "batch": batch, "img_per_s": batch / best})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CIFAR-10 as an image folder (default: unzip ../shared/datasets/cifar10)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ssl-bench-gpu-check"))
    parser.add_argument("--simsiam-epochs", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny embedded data: checks the script")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import torch

    gpu = torch.cuda.is_available() and not args.smoke
    if not gpu and not args.smoke:
        raise SystemExit("gpu_check: no CUDA GPU here; run with --smoke to check the script on the CPU")
    rows: list[dict[str, Any]] = []
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "gpu": torch.cuda.get_device_name(0) if gpu else None,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "rows": rows,
    }
    if args.smoke:
        data = [
            "backbone.model_kwargs.widths=[8,16,16,32]",
            "data.train_size=256",
            "data.val_size=64",
            "data.test_size=64",
            "data.batch_size=64",
            "method.projector.hidden_dim=64",
            "method.projector.out_dim=32",
            "eval.linear_epochs=5",
            "eval.knn_k=20",
            "trainer.num_threads=1",
        ]
        simclr, simsiam, n_images = ["method=simclr", *data], ["method=simsiam", *data], 256
        variants = [
            ("fp32", []),
            ("channels_last + bf16", ["trainer.channels_last=true", "trainer.precision=bf16-mixed"]),
        ]
        aug_sizes, aug_batch = [32, 64], 64
    else:
        folder = cifar_folder(args.data, work)
        data = ["data=imagefolder", f"data.root={folder}", f"data.cache_dir={work / 'cache'}", "data.decode_workers=8"]
        simclr = ["recipe=cifar10_simclr", *data, "data.batch_size=512"]
        simsiam = ["recipe=cifar10_simsiam", *data, "trainer.precision=bf16-mixed", "trainer.channels_last=true"]
        n_images = 50000
        variants = [
            ("fp32", ["trainer.channels_last=false", "trainer.precision=32-true"]),
            ("channels_last + bf16", ["trainer.channels_last=true", "trainer.precision=bf16-mixed"]),
            (
                "channels_last + bf16 + compile",
                ["trainer.channels_last=true", "trainer.precision=bf16-mixed", "trainer.compile=true"],
            ),
        ]
        aug_sizes, aug_batch = [32, 224], 512
    device = "cuda" if gpu else "cpu"
    trainer = ["trainer=gpu"] if gpu else ["trainer=cpu"]

    print(
        "1. SimCLR epoch time (ResNet-18, CIFAR stem, batch 512)" if gpu else "1. SimCLR epoch time (smoke)", flush=True
    )
    for name, extra in variants:
        rec = ssl_bench(
            work / f"simclr-{len(rows)}",
            *simclr,
            *trainer,
            *extra,
            "trainer.max_epochs=2",
            "eval.initial=false",
            "eval.final=false",
            "eval.every_n_epochs=1000",
        )
        seconds = epoch_seconds(rec, n_images)
        rows.append(
            {
                "section": "epoch",
                "case": f"SimCLR {name}",
                "seconds": seconds,
                "img_per_s": rec["epochs"][-1]["train/img_per_s"],
                "wall_s": rec["_wall_s"],
            }
        )
        print(f"   {name}: {seconds:.1f} s/epoch", flush=True)
    for label, seconds in ANCHORS:
        rows.append(
            {"section": "epoch", "case": f"anchor: {label}", "seconds": seconds, "img_per_s": None, "wall_s": None}
        )

    print("2. batched augmentation on the device", flush=True)
    for r in augmentation(device, aug_sizes, aug_batch, rounds=20 if gpu else 3):
        rows.append({"section": "augment", "case": f"simclr, {r['image_size']} px, batch {r['batch']}", **r})
        print(f"   {r['image_size']} px: {r['img_per_s']:,.0f} img/s", flush=True)

    epochs = args.simsiam_epochs if gpu else 2
    print(f"3. SimSiam sanity curve ({epochs} epochs)", flush=True)
    rec = ssl_bench(
        work / "simsiam",
        *simsiam,
        *trainer,
        f"trainer.max_epochs={epochs}",
        "eval.every_n_epochs=1",
        "eval.final=false",
    )
    curve = [round(100 * e["val/knn_acc"], 2) for e in rec["epochs"] if "val/knn_acc" in e]
    rows.append(
        {
            "section": "simsiam",
            "case": "kNN % by epoch",
            "curve": curve,
            "random_init": round(100 * rec["init"]["knn_acc"], 2),
            "wall_s": rec["_wall_s"],
        }
    )
    print(f"   kNN %: random init {rows[-1]['random_init']}, then {curve}", flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"written: {out}")
    return 0


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ssl-bench GPU check: {result['gpu'] or 'CPU (smoke)'}")
    for col in ("section", "case", "figure"):
        table.add_column(col)
    for r in result["rows"]:
        if r["section"] == "epoch":
            fig = f"{r['seconds']:.1f} s/epoch"
        elif r["section"] == "augment":
            fig = f"{r['img_per_s']:,.0f} img/s"
        else:
            fig = f"random init {r['random_init']} -> " + " ".join(map(str, r["curve"]))
        table.add_row(r["section"], r["case"], fig)
    Console(width=max(100, os.get_terminal_size().columns if sys.stdout.isatty() else 100)).print(table)


if __name__ == "__main__":
    sys.exit(main())
