"""Data-pipeline benchmarks: what CPU loader workers deliver at ImageNet scale, and the memory a streamed run
needs as the dataset grows.

    python benchmarks/data_pipeline.py                   # both sections (about 10 minutes on 2 cores)
    python benchmarks/data_pipeline.py --quick           # smoke run (about a minute)
    python benchmarks/data_pipeline.py --only throughput --workers 1,2 --out data.json

Sections:
  throughput  source images per second (each turned into two 224 px training views) from a JPEG folder of
              ImageNet-sized images (about 400 x 350 px, quality 90, upscaled from the real CIFAR-10 photos
              in ../shared/datasets/cifar10), with 1 and 2 loader workers:
                torchvision   ImageFolder + PIL + transforms v2 per image, two views (RandomResizedCrop
                              (0.08, 1), flip, colour jitter 0.4/0.4/0.4/0.1 p 0.8, grayscale 0.2, to float,
                              normalise): the loader everyone writes
                stream        ours: file list, crops drawn first and decoded at the scale they allow, uint8
                              views; flip, jitter and grayscale then run batched on the training device
                stream, full decode   the same without reduced-scale decoding (what the JPEG draft buys;
                              nothing at 400 x 350, where no 224 px crop allows half-scale decoding:
                              try --image-size 1000x880)
                shards        ours from WebDataset shards of the same images
                stream + batched aug on this CPU   the stream loader with the batched augmentation run in the
                              training process on this CPU (one thread), as a CPU-only run would
  memory      peak memory of a short run (``ssl-bench``: 20 training steps of 128 images at 64 px, the initial /
              final evaluation over the whole folder, one monitor pass) on generated image folders of 5,000
              and 20,000 images, the rest equal: stream mode (also without the initial / final evaluation)
              and memory mode. Figures: the proportional set size (PSS) of the training process and its
              loader workers together (shared pages counted once; sampled every 0.2 s; median of the
              repeats) and the training process's own peak RSS (VmHWM)

Cases run alternately (A, B, C, A, B, C, ...) in one process so drift hits all; a figure is the median over
rounds; each round is one pass over the same images, with the loader's workers already started.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from run import machine  # noqa: E402  (benchmarks/run.py: cpu, cores, torch)

CIFAR_ZIP = ROOT.parent / "shared" / "datasets" / "cifar10" / "cifar10-jpg.zip"
SECTIONS = ("throughput", "memory")
ROWS: list[dict[str, Any]] = []


def row(section: str, case: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    r = {"section": section, "case": case, "value": round(value, 3), "unit": unit, **extra}
    ROWS.append(r)
    more = "".join(f"  {k} {v}" for k, v in extra.items() if k in ("per_worker", "ratio", "target", "met"))
    print(f"  [{section}] {case}: {value:,.1f} {unit}{more}", flush=True)
    return r


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


# --- the data -------------------------------------------------------------------------------------------
def imagenet_like(out: Path, n: int, size: tuple[int, int] = (400, 350), seed: int = 0, quality: int = 90) -> Path:
    """``n`` JPEGs of about ``size`` px (400 x 350: each side drawn within +-10%), quality 90, in
    ``out/train/<class>/``: the real CIFAR-10 training photos upscaled (bicubic); 10 classes, ``n / 10`` each."""
    from PIL import Image

    if not CIFAR_ZIP.is_file():
        raise SystemExit(f"{CIFAR_ZIP} is missing: the benchmark upscales the real CIFAR-10 JPEGs from it")
    done = out / f".done-{n}-{size[0]}x{size[1]}-{seed}-{quality}"
    if out.is_dir() and not done.is_file() and any(out.glob(".done-*")):
        raise SystemExit(f"{out} holds other generated images; choose another --data folder")
    if done.is_file():
        return out
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(CIFAR_ZIP) as z:
        names = sorted(m for m in z.namelist() if m.startswith("train/") and m.endswith(".jpg"))
        by_class: dict[str, list[str]] = {}
        for m in names:
            by_class.setdefault(m.split("/")[1], []).append(m)
        for c, members in sorted(by_class.items()):
            (out / "train" / c).mkdir(parents=True, exist_ok=True)
            for k, m in enumerate(members[: n // len(by_class)]):
                w, h = int(size[0] * rng.uniform(0.9, 1.1)), int(size[1] * rng.uniform(0.9, 1.1))
                with Image.open(z.open(m)) as im:
                    im.convert("RGB").resize((w, h), Image.BICUBIC).save(
                        out / "train" / c / f"{k:05d}.jpg", quality=quality
                    )
    done.write_text("")
    return out


def noise_folder(out: Path, n: int, size: int = 64, seed: int = 0) -> Path:
    """``n`` small JPEGs (10 classes) in ``out/train`` and 500 in ``out/test``: the memory section's data."""
    from PIL import Image

    done = out / f".done-{n}"
    if done.is_file():
        return out
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (10, size, size, 3), dtype=np.uint8)
    for split, count in (("train", n), ("test", 500)):
        for i in range(count):
            c = i % 10
            d = out / split / f"c{c}"
            d.mkdir(parents=True, exist_ok=True)
            img = np.clip(base[c].astype(int) + rng.integers(-40, 40, base[c].shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / f"{i:06d}.jpg", quality=90)
    done.write_text("")
    return out


# --- throughput -------------------------------------------------------------------------------------------
class TwoViews:
    def __init__(self, t: Any):
        self.t = t

    def __call__(self, img: Any) -> list[Any]:
        return [self.t(img), self.t(img)]


def torchvision_loader(root: Path, ids: np.ndarray, workers: int, batch: int) -> Any:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    t = v2.Compose(
        [
            v2.RandomResizedCrop(224, scale=(0.08, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    ds = torch.utils.data.Subset(ImageFolder(str(root / "train"), transform=TwoViews(t)), ids.tolist())
    return torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=True
    )


def stream_loader(root: Path, ids: np.ndarray, workers: int, batch: int, draft: bool = True) -> Any:
    from ssl_bench.data.stream import CropReader, TrainFiles, collate_items, scan

    files, _ = scan(str(root), "train", "auto")
    reader = CropReader([(0.08, 1.0)] * 2, 224, draft=draft)
    return torch.utils.data.DataLoader(
        TrainFiles(files.take(ids), reader),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=True,
        collate_fn=collate_items,
    )


def shard_loader(shards: Path, ids: np.ndarray, workers: int, batch: int) -> Any:
    from ssl_bench.data.shards import Split, TrainShards, load_index
    from ssl_bench.data.stream import CropReader, EpochLoader, collate_items

    split = Split(shards, "train", load_index(shards)["splits"]["train"])
    ds = TrainShards(split, split.positions(ids), CropReader([(0.08, 1.0)] * 2, 224), seed=0, shuffle_buffer=256)
    ds.configure(batch_size=batch)
    return EpochLoader(
        ds, batch_size=batch, num_workers=workers, drop_last=True, persistent_workers=True, collate_fn=collate_items
    )


def batched_augment() -> Any:
    from ssl_bench.data.augment import BatchAugment, ViewAug

    v = ViewAug(
        crop_min_scale=0.08,
        flip_p=0.5,
        color_p=0.8,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.1,
        grayscale_p=0.2,
    )
    return BatchAugment([v, v], 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def one_pass(loader: Any, augment: Any = None) -> tuple[float, int]:
    """(seconds, source images) of one pass over the loader's images."""
    n = 0
    t = time.perf_counter()
    for batch in loader:  # (views, labels, ...): torchvision's lists of views or our uint8 crops
        if augment is not None:
            augment(batch[0])
        n += len(batch[1])
    return time.perf_counter() - t, n


def section_throughput(args: argparse.Namespace, tmp: Path) -> None:
    from ssl_bench.data.shard import write_shards

    n_images, per_pass, rounds = args.images, args.pass_images, args.rounds
    size = tuple(int(v) for v in args.image_size.split("x"))
    data = imagenet_like(Path(args.data) if args.data else tmp / "imagenet-like", n_images, size)
    shards = tmp / "shards"
    if not (shards / "index.json").is_file():
        write_shards(data, shards, splits=["train"], shard_size=100, progress=False)
    batch = min(32, per_pass)
    ids = np.sort(np.random.default_rng(0).permutation(n_images)[:per_pass])
    torch.set_num_threads(1)
    for workers in args.workers:
        cases = {
            "torchvision ImageFolder + PIL + v2 per image": lambda: (
                torchvision_loader(data, ids, workers, batch),
                None,
            ),
            "stream (ours)": lambda: (stream_loader(data, ids, workers, batch), None),
            "stream, full decode (no reduced-scale decoding)": lambda: (
                stream_loader(data, ids, workers, batch, False),
                None,
            ),
            "shards (ours)": lambda: (shard_loader(shards, ids, workers, batch), None),
            "stream + batched aug on this CPU (1 thread)": lambda: (
                stream_loader(data, ids, workers, batch),
                batched_augment(),
            ),
        }
        built = {k: f() for k, f in cases.items()}
        for loader, aug in built.values():  # start the workers, warm the caches
            one_pass(loader, aug)
        times: dict[str, list[float]] = {k: [] for k in built}
        for _ in range(rounds):
            for k, (loader, aug) in built.items():
                s, n = one_pass(loader, aug)
                times[k].append(n / s)
        base = statistics.median(times["torchvision ImageFolder + PIL + v2 per image"])
        for k, v in times.items():
            rate = statistics.median(v)
            extra: dict[str, Any] = {
                "workers": workers,
                "per_worker": round(rate / workers, 1),
                "rounds": [round(x, 1) for x in v],
            }
            if not k.startswith("torchvision"):
                extra.update(ratio=round(rate / base, 3))
                if k == "stream (ours)":
                    extra.update(target=2.0, met=bool(rate / base >= 2.0))
            row("throughput", f"{k}, {workers} worker{'s' * (workers > 1)}", rate, "img/s", **extra)
        del built


# --- memory -----------------------------------------------------------------------------------------------
def _field(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def peak_run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[int, int, int, float]:
    """(peak PSS of the process tree, the training process's peak RSS (VmHWM), the most processes seen at
    once, wall s) of one command, sampled every 0.2 s."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, main, procs = 0, 0, 0
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    t = time.perf_counter()
    while proc.poll() is None:
        tree = _tree(proc.pid)
        peak = max(peak, sum(_field(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree))
        main = max(main, _field(f"/proc/{proc.pid}/status", "VmHWM:"))
        procs = max(procs, len(tree))
        time.sleep(0.2)
    reader.join()
    if proc.returncode:
        print("".join(out)[-3000:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode})")
    return peak, main, procs, time.perf_counter() - t


def section_memory(args: argparse.Namespace, tmp: Path) -> None:
    exe = Path(sys.executable).with_name("ssl-bench")
    cmd0 = [str(exe)] if exe.exists() else [sys.executable, "-m", "ssl_bench.app"]
    sizes = (1000, 4000) if args.quick else (5000, 20000)
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    common = [
        "data=imagefolder",
        "data.image_size=64",
        "data.crop_min_scale=0.2",
        "data.batch_size=128",
        "data.val_size=500",
        "data.bank_size=1000",
        "data.eval_batch_size=256",
        "data.num_workers=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=20",
        "trainer.num_threads=1",
        "trainer.enable_progress_bar=false",
        "trainer.checkpoint=false",
        "logger=none",
        "eval.linear_epochs=5",
        "eval.every_n_epochs=1",
        "data.cache_dir=null",
    ]
    variants = {  # name: (overrides, repeats)
        "stream": (["data.storage=stream"], 1 if args.quick else 2),
        "stream, training only (no initial / final evaluation)": (
            ["data.storage=stream", "eval.initial=false", "eval.final=false"],
            1 if args.quick else 2,
        ),
        "memory": (["data.storage=memory"], 1),
    }
    for name, (extra, repeats) in variants.items():
        for n in sizes:
            root = noise_folder(tmp / f"folder-{n}", n)
            runs = [
                peak_run(
                    [*cmd0, *common, *extra, f"data.root={root}", f"hydra.run.dir={tmp / f'run-{n}-{k}'}"], env, tmp
                )
                for k in range(repeats)
            ]
            peak = statistics.median(r[0] for r in runs)
            row(
                "memory",
                f"{name}, {n:,} images",
                peak / 2**20,
                "MiB peak PSS (process tree)",
                images=n,
                runs_mib=[round(r[0] / 2**20, 1) for r in runs],
                main_peak_rss_mib=round(statistics.median(r[1] for r in runs) / 2**20, 1),
                max_processes=max(r[2] for r in runs),
                wall_s=round(statistics.median(r[3] for r in runs), 1),
                decoded_mib=round(n * 3 * 64 * 64 / 2**20, 1),
            )


# --- main -------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: few images, rounds and sizes")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--workers", default="1,2", help="loader worker counts (default 1,2)")
    p.add_argument("--images", type=int, default=None, help="ImageNet-like JPEGs to generate (3000; quick: 300)")
    p.add_argument("--pass-images", type=int, default=None, help="images per timed pass (320; quick: 96)")
    p.add_argument("--rounds", type=int, default=None, help="timed passes per case (5; quick: 2)")
    p.add_argument("--data", default=None, help="folder for the generated JPEGs (kept between runs)")
    p.add_argument("--image-size", default="400x350", help="generated JPEG size WxH, +-10%% (default 400x350)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data_pipeline.json"))
    args = p.parse_args(argv)
    for key, full, quick in (("images", 3000, 300), ("pass_images", 320, 96), ("rounds", 5, 2)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    args.workers = [int(w) for w in args.workers.split(",") if w]
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; allowed: {','.join(SECTIONS)}")
    t0 = time.perf_counter()
    load_before = loadavg()
    print(
        f"ssl-bench data-pipeline benchmarks ({'quick' if args.quick else 'full'}): {', '.join(only)}; "
        f"load {load_before}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in only:
            print(f"== {name}", flush=True)
            {"throughput": section_throughput, "memory": section_memory}[name](args, Path(tmp))
    result = {
        "command": " ".join(["python", "benchmarks/data_pipeline.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "sections": only,
        "machine": machine(),
        "loadavg": [load_before, loadavg()],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.perf_counter() - t0, 1),
        "rows": ROWS,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print()
    for r in ROWS:
        ratio = f"  {r['ratio']:.2f}x torchvision" if r.get("ratio") is not None else ""
        per = f"  ({r['per_worker']:,.1f} per worker)" if "per_worker" in r else ""
        print(f"{r['section']:10} {r['case']:62} {r['value']:>10,.1f} {r['unit']}{per}{ratio}")
    print(f"\nload {load_before} -> {loadavg()}; wall {result['wall_s']} s; JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
