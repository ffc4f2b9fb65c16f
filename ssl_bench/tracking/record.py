"""One run = one record: ``record.json`` in the run's output folder.

Written when the run starts (status ``running``), after every epoch and when it ends, so a
killed job still leaves what it had. Schema (``schema_version`` 1) is documented in the README;
reports read these files, and W&B mirrors the same data.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

RECORD_FILE = "record.json"
SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "collapsed", "diverged", "failed")
_PACKAGES = ("ssl-bench", "torch", "torchvision", "pytorch-lightning", "hydra-core", "omegaconf", "timm",
             "wandb", "numpy", "transformers", "tokenizers")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(start: Path | None = None) -> dict[str, Any]:
    """Revision and dirty flag of the source checkout this package runs from (None if installed)."""
    root = start or Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip() != ""
        return {"revision": rev, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def machine() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "gpu": gpu, "gpu_count": torch.cuda.device_count()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunRecord:
    """The machine-readable record of one run."""

    def __init__(self, out_dir: str | Path, cfg: DictConfig, overrides: list[str], name: str):
        self.path = Path(out_dir) / RECORD_FILE
        self._t0 = time.perf_counter()
        self.data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": name,
            "method": cfg.method.name,
            "status": "running",
            "started_at": _now(),
            "ended_at": None,
            "seed": int(cfg.seed),
            "overrides": list(overrides),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "git": git_state(),
            "versions": package_versions(),
            "machine": machine(),
            "epochs": [],
            "init": {},
            "final": {},
            "best": {},
            "timings": {},
            "wandb": None,
            "checkpoint": None,
            "export": None,
            "error": None,
            "resumed_from": None,
        }

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def add_epoch(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        self._add_epoch({"epoch": epoch, "step": step, **metrics})
        self.save()

    def _add_epoch(self, entry: dict[str, Any]) -> None:
        self.data["epochs"].append(entry)
        best = self.data["best"]
        for key, value in entry.items():
            if key.endswith("_acc"):
                best[key] = max(best.get(key, value), value)
            elif key.endswith("loss") and not key.endswith("probe_loss"):
                best[key] = min(best.get(key, value), value)

    def resume(self, previous: dict[str, Any] | None, checkpoint: str | Path, last_epoch: int) -> None:
        """Continue the record of an interrupted run from a checkpoint taken at the end of epoch
        ``last_epoch``: keep its start time, random-init evaluation, W&B run and the epochs up to
        the checkpoint's (later ones are trained again), and name the checkpoint in ``resumed_from``."""
        self.data["resumed_from"] = str(checkpoint)
        if not previous:
            return
        self.data["started_at"] = previous.get("started_at", self.data["started_at"])
        self.data["init"] = previous.get("init") or {}
        self.data["wandb"] = previous.get("wandb")
        self.data["epochs"], self.data["best"] = [], {}
        for entry in previous.get("epochs", []):
            if entry["epoch"] <= last_epoch:
                self._add_epoch(dict(entry))

    def finish(self, status: str, error: BaseException | None = None, **timings: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.data["status"] = status
        self.data["ended_at"] = _now()
        self.data["timings"].update({"wall_s": round(time.perf_counter() - self._t0, 3), **timings})
        if error is not None:
            self.data["error"] = {"type": type(error).__name__, "message": str(error)}
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=_jsonable))
        tmp.replace(self.path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def load_record(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return json.loads((p / RECORD_FILE if p.is_dir() else p).read_text())


def find_records(root: str | Path) -> list[Path]:
    """Every record under ``root`` (a run folder or a sweep folder), in path order."""
    return sorted(Path(root).rglob(RECORD_FILE))
