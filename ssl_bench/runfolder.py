"""What a run does with the folder it is given: start fresh, resume, skip, or refuse.

A run folder holds one run. Before anything is written, ``plan_run`` looks at what the folder holds
(its ``record.json`` and ``checkpoints/last.ckpt``) and decides:

- empty folder: a fresh run;
- ``overwrite=true``: the old files are moved to ``superseded/<time>/`` (never deleted, never mixed
  with the new run's), then a fresh run;
- ``resume=auto`` (and every sweep job): a finished result with the same config is left alone (a
  sweep skips it); an interrupted, failed or killed attempt resumes from its checkpoint when the
  checkpoint's config matches on the keys that change results; with no checkpoint it starts again;
- a single run without ``resume`` into a folder that holds a run, a config that differs from the
  checkpoint's (``resume=auto``), or an unreadable checkpoint: ``RunFolderError``, one line, nothing
  touched (a sweep job moves the old files aside instead and starts over).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from ssl_bench.errors import RunFolderError
from ssl_bench.tracking.lock import LOCK_FILE
from ssl_bench.tracking.record import (
    CHECKPOINT_DIR,
    LAST_CHECKPOINT,
    RECORD_FILE,
    RESULT_STATUSES,
    SUPERSEDED_DIR,
    RecordError,
    load_record,
)

if TYPE_CHECKING:
    from ssl_bench.resume import CheckpointInfo


def read_checkpoint(path: Any) -> CheckpointInfo:
    from ssl_bench.resume import read_checkpoint as read  # torch: imported when a checkpoint is read

    return read(path)


log = logging.getLogger("ssl_bench")

# Overrides that change how a job is shown or kept, not what it computes (also conf/config.yaml's
# hydra.job.config.override_dirname.exclude_keys, which names the job folders).
BOOKKEEPING = ("hydra.", "logger", "trainer.enable_progress_bar", "resume", "skip_finished", "overwrite")
# Config keys that do not change a run's result (execution details and bookkeeping); every other key
# must match for a resume or a skip.
NOT_RESULT = {
    "": ("logger", "resume", "skip_finished", "overwrite", "study", "name"),
    "trainer": ("enable_progress_bar", "num_threads"),
    "data": ("num_workers", "pin_memory", "decode_workers", "cache_dir"),
}
KEPT = (".hydra", LOCK_FILE, SUPERSEDED_DIR)  # never moved aside (Hydra's files, the lock, history)


def job_overrides(overrides: list[str]) -> list[str]:
    """The overrides that define a job, in command-line order."""
    return [o for o in overrides if not o.lstrip("+~").startswith(BOOKKEEPING)]


def result_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config without the keys that do not change a run's result."""
    out = {k: v for k, v in config.items() if k not in NOT_RESULT[""]}
    for group, keys in NOT_RESULT.items():
        if group and isinstance(out.get(group), dict):
            out[group] = {k: v for k, v in out[group].items() if k not in keys}
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs (on the keys that change results)."""
    if not prefix:
        old, new = result_config(old), result_config(new)
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def _diff_text(keys: list[str], old: dict[str, Any], new: dict[str, Any]) -> str:
    """``method.name ('simclr' -> 'byol'), seed (0 -> 1)``: a group whose ``name`` changed is shown
    by its name alone (its other keys differ as a consequence)."""

    def value(cfg: dict[str, Any], dotted: str) -> Any:
        node: Any = cfg
        for part in dotted.split("."):
            node = node.get(part, "<absent>") if isinstance(node, dict) else "<absent>"
        return node

    renamed = {k.rsplit(".", 1)[0] for k in keys if k.endswith(".name")}
    keys = [k for k in keys if k.endswith(".name") or k.split(".")[0] not in renamed]
    shown = [f"{k} ({value(old, k)!r} -> {value(new, k)!r})" for k in keys[:6]]
    return ", ".join(shown) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")


@dataclass
class Plan:
    """``action``: fresh | resume | skip. ``previous``: the folder's record (continued on resume,
    returned on skip); ``checkpoint``: what to resume from; ``moved_to``: where old files went."""

    action: str
    previous: dict[str, Any] | None = None
    checkpoint: CheckpointInfo | None = None
    moved_to: Path | None = None
    note: str = ""


def check_writable(folder: Path) -> None:
    """``RunFolderError`` unless files can be created in ``folder`` (made if missing)."""
    probe = folder / f".write-test-{id(folder)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RunFolderError(f"cannot write to {folder}: {err.strerror or err}") from None


def move_aside(out_dir: Path) -> Path | None:
    """Move everything the folder holds (but Hydra's files, logs, the lock and earlier moves) to
    ``superseded/<time>/``; returns that folder (None when there was nothing to move)."""
    items = [p for p in out_dir.iterdir() if p.name not in KEPT and not (p.is_file() and p.suffix == ".log")]
    if not items:
        return None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    dest = out_dir / SUPERSEDED_DIR / stamp
    dest.mkdir(parents=True)
    for p in items:
        shutil.move(str(p), str(dest / p.name))
    log.warning("moved the earlier contents of %s to %s", out_dir, dest)
    return dest


def _holds_run(out_dir: Path, previous: dict[str, Any] | None = None) -> bool:
    """Whether the folder holds something a new run must not mix with: checkpoints, a result, an
    attempt that trained epochs, or a record that cannot be read. A record of an attempt that ended
    before its first epoch (a data error, say) holds nothing and is continued as the next attempt."""
    ckpts = out_dir / CHECKPOINT_DIR
    if ckpts.is_dir() and any(ckpts.iterdir()):
        return True
    if not (out_dir / RECORD_FILE).exists():
        return False
    if previous is None:
        return True
    return previous.get("status") in RESULT_STATUSES or bool(previous.get("epochs"))


def _existing(out_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """(record, what it is) of the folder; an unreadable record is reported as such."""
    path = out_dir / RECORD_FILE
    if not path.exists():
        return None, "checkpoints" if _holds_run(out_dir) else "nothing"
    try:
        rec = load_record(path)
    except (RecordError, OSError) as err:
        return None, f"an unreadable record.json ({err})"
    return rec, f"a {rec.get('status', '?')} run ({len(rec.get('epochs') or [])} epochs)"


def plan_run(cfg: DictConfig, out_dir: str | Path, sweep_job: bool = False) -> Plan:
    """Decide what the run does with ``out_dir`` (see the module docstring); moves files aside when
    the plan says so, raises ``RunFolderError`` when the folder cannot be used as asked."""
    out_dir = Path(out_dir)
    current = OmegaConf.to_container(cfg, resolve=True)
    resume, overwrite = cfg.get("resume"), bool(cfg.get("overwrite", False))
    check_writable(out_dir)
    if bool(cfg.trainer.get("checkpoint", True)):
        check_writable(out_dir / CHECKPOINT_DIR)
    if overwrite:
        if resume is not None:
            raise RunFolderError("overwrite=true starts over and resume=... continues: give one of them")
        return Plan("fresh", moved_to=move_aside(out_dir))
    previous, what = _existing(out_dir)
    own = out_dir / LAST_CHECKPOINT
    if resume not in (None, "auto") and Path(str(resume)).resolve() != own.resolve():
        if _holds_run(out_dir):
            raise RunFolderError(
                f"{out_dir} already holds {what}: resume={resume} continues another run's checkpoint "
                "in a fresh folder only (or overwrite=true moves this folder's files aside)"
            )
        info = read_checkpoint(resume)
        _require_same(info, current, f"resume={resume}")
        return Plan("resume", checkpoint=info)
    if resume is None and not sweep_job:
        if _holds_run(out_dir, previous):
            raise RunFolderError(
                f"{out_dir} already holds {what}: resume=auto continues it, overwrite=true starts "
                f"over (the old files are moved to {out_dir / SUPERSEDED_DIR}/<time>/)"
            )
        return Plan("fresh", previous=previous)
    if previous is None and (out_dir / RECORD_FILE).exists():  # the record cannot be read
        if not sweep_job:
            raise RunFolderError(f"{out_dir} holds {what}: overwrite=true moves it aside and starts over")
        return Plan("fresh", moved_to=move_aside(out_dir), note=f"{out_dir} held {what}; starting over")
    skip_finished = bool(cfg.get("skip_finished", True)) or not sweep_job
    if previous is not None and previous.get("status") in RESULT_STATUSES:
        diff = config_diff(previous.get("config") or {}, current)
        if not diff and skip_finished:
            return Plan("skip", previous=previous)
        if sweep_job:  # a changed grid or skip_finished=false: a new result; the old one is kept aside
            return Plan("fresh", moved_to=move_aside(out_dir), note="config changed" if diff else "rerun")
        raise RunFolderError(
            f"{out_dir} holds a {previous['status']} run with another config: "
            f"{_diff_text(diff, previous.get('config') or {}, current)}; "
            "overwrite=true starts over (the old files are moved aside), or use another folder"
        )
    if own.is_file():
        try:
            info = read_checkpoint(own)
        except RunFolderError as err:
            if not sweep_job:
                _note_failed_resume(out_dir, previous, err)
                raise RunFolderError(f"resume=auto: {err}; overwrite=true starts over") from None
            return Plan("fresh", moved_to=move_aside(out_dir), note=f"{err}; starting over")
        try:
            _require_same(info, current, "resume=auto")
        except RunFolderError as err:
            if not sweep_job:
                raise
            return Plan("fresh", moved_to=move_aside(out_dir), note=f"{err}; starting over")
        if info.run_id and previous is not None and previous.get("run_id") and info.run_id != previous["run_id"]:
            if not sweep_job:
                raise RunFolderError(
                    f"{own} was written by run {info.run_id}, the record is run {previous['run_id']}: "
                    "overwrite=true starts over"
                )
            return Plan("fresh", moved_to=move_aside(out_dir), note="checkpoint of another run")
        return Plan("resume", previous=previous, checkpoint=info)
    if previous is not None or _holds_run(out_dir):
        return Plan("fresh", previous=previous, note=f"no checkpoint to resume in {out_dir}: starting again")
    return Plan("fresh")


def _require_same(info: CheckpointInfo, current: dict[str, Any], how: str) -> None:
    diff = config_diff(info.config, current)
    if diff:
        raise RunFolderError(
            f"{how}: the checkpoint {info.path} was trained with another config: "
            f"{_diff_text(diff, info.config, current)}; resume with the same config, or "
            "overwrite=true to start over"
        )


def _note_failed_resume(out_dir: Path, previous: dict[str, Any] | None, err: Exception) -> None:
    """An unfinished record says that its checkpoint cannot be resumed (a finished one is never rewritten)."""
    if previous is None or previous.get("status") in RESULT_STATUSES:
        return
    from ssl_bench.tracking.record import attempt_summary, write_json_atomic

    failed = dict(previous, status="failed", error={"type": "RunFolderError", "message": str(err)})
    failed["attempts"] = list(previous.get("attempts") or []) + [
        {**attempt_summary(previous), "resume_error": str(err)}
    ]
    write_json_atomic(out_dir / RECORD_FILE, failed)
