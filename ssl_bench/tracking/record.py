"""One run = one record: ``record.json`` in the run's output folder.

Written when the run starts (status ``running``), after every epoch, whenever a checkpoint is saved
and when it ends, so a killed job still leaves what it had. Every write is atomic (a temporary file,
flushed to disk, then renamed over the record): a reader or a crash never sees half a record.

A run folder holds one run (``run_id``) that may take several attempts: a resumed run keeps its
record, moves the previous attempt's summary into ``attempts`` and continues; an earlier attempt
whose record still says ``running`` ended without closing it (``kill -9``, out of memory, its machine
lost: the new attempt holds the folder's lock, which dies with its owner) and is kept as ``lost``,
with the ``reason``. ``checkpoint`` names the file the run last wrote, relative to the run folder,
with its epoch, step and run id, so evaluation can check that the weights it loads are the ones the
record's metrics came from. Schema (``schema_version`` 2) is documented in docs/guides/evaluation.md
("Run record"); reports read these files and W&B mirrors them.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

RECORD_FILE = "record.json"
SCHEMA_VERSION = 2
STATUSES = ("running", "finished", "collapsed", "diverged", "interrupted", "failed")
RESULT_STATUSES = ("finished", "collapsed", "diverged")  # a run that ended with a result
LOST = "lost"  # an earlier attempt (in ``attempts``) that ended without closing its record
SUPERSEDED_DIR = "superseded"  # <run>/superseded/<time>/: an earlier run's files moved aside (overwrite)
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = Path(CHECKPOINT_DIR) / "last.ckpt"  # the one epoch checkpoint a run keeps
IDENTITY_KEY = "ssl_bench"  # checkpoint["ssl_bench"] = {"run_id": ...}: the run that wrote it
_PACKAGES = (
    "ssl-bench",
    "torch",
    "torchvision",
    "pytorch-lightning",
    "hydra-core",
    "omegaconf",
    "timm",
    "wandb",
    "numpy",
    "transformers",
    "tokenizers",
)


class RecordError(ValueError):
    """A record file that cannot be read (truncated, not JSON, not a record); names the file."""


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
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            != ""
        )
        return {"revision": rev, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def machine() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "gpu_count": torch.cuda.device_count(),
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def write_json_atomic(path: Path, data: Any) -> None:
    """``path`` replaced in one step by ``data`` as JSON: written to a temporary file in the same
    folder, flushed to disk, then renamed (a crash leaves the old file or the new one, never half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=2, default=_jsonable))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class RunRecord:
    """The machine-readable record of one run (``write=False``: kept in memory only, e.g. on the
    non-zero ranks of a multi-process run, where rank 0 writes the record)."""

    def __init__(self, out_dir: str | Path, cfg: DictConfig, overrides: list[str], name: str, write: bool = True):
        self.path = Path(out_dir) / RECORD_FILE
        self.write = write
        self._t0 = time.perf_counter()
        self.data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": name,
            "method": cfg.method.name,
            "status": "running",
            "run_id": new_run_id(),
            "attempt": 1,
            "started_at": _now(),
            "attempt_started_at": _now(),
            "ended_at": None,
            "seed": int(cfg.seed),
            "overrides": list(overrides),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "git": git_state(),
            "versions": package_versions(),
            "machine": machine(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "epochs": [],
            "init": {},
            "final": {},
            "best": {},
            "timings": {},
            "wandb": None,
            "checkpoint": None,
            "evaluated_at": None,
            "export": None,
            "error": None,
            "resumed_from": None,
            "attempts": [],
        }

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    @property
    def run_id(self) -> str:
        return str(self.data["run_id"])

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

    def set_checkpoint(self, path: str | Path, epoch: int, step: int) -> None:
        """Name the checkpoint file the run has just written (epoch and global step it holds)."""
        p = Path(path)
        try:
            shown = str(p.resolve().relative_to(self.path.parent.resolve()))
        except ValueError:
            shown = str(p)
        self.data["checkpoint"] = {
            "path": shown,
            "epoch": int(epoch),
            "step": int(step),
            "run_id": self.run_id,
            "saved_at": _now(),
        }
        self.save()

    def continue_from(
        self, previous: dict[str, Any] | None, checkpoint: str | Path | None, last_epoch: int | None
    ) -> None:
        """Make this record the next attempt of ``previous`` (the folder's record of an interrupted,
        failed or killed attempt): same run id, start time, random-init evaluation and W&B run; the
        previous attempt's summary goes to ``attempts``; epochs after the checkpoint's
        (``last_epoch``, 0-based; None: no checkpoint, start over) are dropped, as they are trained again."""
        self.data["resumed_from"] = None if checkpoint is None else str(checkpoint)
        if not previous:
            return
        for key in ("run_id", "started_at"):
            self.data[key] = previous.get(key) or self.data[key]
        self.data["wandb"] = previous.get("wandb")
        self.data["attempts"] = list(previous.get("attempts") or []) + [attempt_summary(previous)]
        self.data["attempt"] = len(self.data["attempts"]) + 1
        if checkpoint is None:
            return
        self.data["init"] = previous.get("init") or {}
        self.data["checkpoint"] = previous.get("checkpoint")
        self.data["epochs"], self.data["best"] = [], {}
        for entry in previous.get("epochs", []):
            if last_epoch is not None and entry["epoch"] <= last_epoch:
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
        if not self.write:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.data)


def attempt_summary(record: dict[str, Any]) -> dict[str, Any]:
    """What ``attempts`` keeps of an earlier attempt. Called by the attempt that took the folder over
    (under its lock, which dies with its owner): an earlier attempt whose record still says
    ``running`` has ended without closing it, and is kept as ``lost`` with the ``reason``."""
    epochs = record.get("epochs") or []
    status = record.get("status")
    lost = status == "running"
    out = {
        "attempt": record.get("attempt", 1),
        "started_at": record.get("attempt_started_at") or record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "status": LOST if lost else status,
        "error": record.get("error"),
        "resumed_from": record.get("resumed_from"),
        "epochs": len(epochs),
        "last_step": epochs[-1].get("step") if epochs else None,
        "host": record.get("host"),
        "pid": record.get("pid"),
        "wall_s": (record.get("timings") or {}).get("wall_s"),
    }
    if lost:
        seen = (record.get("checkpoint") or {}).get("saved_at")
        out["reason"] = (
            f"pid {record.get('pid')} on {record.get('host')} ended without closing its record "
            "(killed by SIGKILL, out of memory, or its machine lost)"
            + (f"; its last checkpoint was saved at {seen}" if seen else "")
        )
    return out


def checkpoint_path(record: dict[str, Any], run_dir: str | Path) -> Path | None:
    """The checkpoint the record names, resolved inside ``run_dir`` (the folder the record is in):
    never a file of another folder. Records of schema 1 named an absolute path; its part inside the
    run folder (``checkpoints/last.ckpt``) is used."""
    entry = record.get("checkpoint")
    if not entry:
        return None
    named = Path(entry["path"] if isinstance(entry, dict) else str(entry))
    if not named.is_absolute():
        return Path(run_dir) / named
    parts = named.parts
    if "checkpoints" in parts:  # schema 1: <old run dir>/checkpoints/last.ckpt
        return Path(run_dir).joinpath(*parts[len(parts) - 1 - parts[::-1].index("checkpoints") :])
    return Path(run_dir) / named.name


def checkpoint_run_id(checkpoint: dict[str, Any]) -> str | None:
    """The run id a checkpoint was stamped with (None: written before stamps existed)."""
    ident = checkpoint.get(IDENTITY_KEY)
    return ident.get("run_id") if isinstance(ident, dict) else None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def load_record(path: str | Path) -> dict[str, Any]:
    """The record in a run folder (or at a ``record.json`` path); ``RecordError`` naming the file when
    it is not a readable record (truncated, not JSON)."""
    p = Path(path)
    p = p / RECORD_FILE if p.is_dir() else p
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RecordError(f"{p}: not valid JSON ({err.msg} at line {err.lineno}); truncated?") from None
    except UnicodeDecodeError:
        raise RecordError(f"{p}: not valid JSON (not UTF-8 text)") from None
    if not isinstance(data, dict):
        raise RecordError(f"{p}: not a run record (a JSON {type(data).__name__}, not an object)")
    return data


def find_records(root: str | Path) -> list[Path]:
    """Every record under ``root`` (a run folder or a sweep folder), in path order; files moved aside
    by ``overwrite=true`` (``superseded/``) are not runs of the sweep and are left out."""
    root = Path(root)
    return sorted(p for p in root.rglob(RECORD_FILE) if SUPERSEDED_DIR not in p.relative_to(root).parts[:-1])
