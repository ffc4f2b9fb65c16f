"""What ``ssl-bench-eval source=...`` points at: a pretraining run folder, its ``record.json`` or a
``.ckpt``, resolved to the checkpoint to load, the run folder and its record.

A run folder's checkpoint is the one its record names, inside that very folder: a copied or moved
folder never loads the original folder's file, and a folder whose record names no checkpoint (or
names one that is not there) is an error, not a silent fallback. ``check_identity`` then checks that
the loaded file is the one the record's metrics came from (same run id, same step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssl_bench.errors import UserError
from ssl_bench.tracking.record import (
    LAST_CHECKPOINT,
    RECORD_FILE,
    RecordError,
    checkpoint_path,
    checkpoint_run_id,
    load_record,
)


class EvalError(UserError):
    """An input that cannot be evaluated; the message is meant for the user as-is (one line)."""


@dataclass(frozen=True)
class Source:
    checkpoint: Path
    run_dir: Path | None = None  # the pretraining run folder (None: a checkpoint outside one)
    record: Path | None = None  # its record.json, when there is one
    is_final: bool = False  # the checkpoint the record names (its backbone export belongs to the run)

    @property
    def home(self) -> Path:
        """Where the feature cache lives: the run folder, else the checkpoint's folder."""
        return self.run_dir or self.checkpoint.parent


def _record(path: Path) -> dict[str, Any]:
    try:
        return load_record(path)
    except RecordError as err:
        raise EvalError(str(err)) from None


def _named_checkpoint(run_dir: Path, record_path: Path | None, value: Any) -> Path:
    """The checkpoint of a run folder: the one its record names (resolved inside the folder)."""
    if record_path is None:
        last = run_dir / LAST_CHECKPOINT
        if last.is_file():
            return last.resolve()
        raise EvalError(
            f"source={value}: no checkpoint in {run_dir} (not an ssl-bench run folder: no record.json, "
            f"no {LAST_CHECKPOINT})"
        )
    named = checkpoint_path(_record(record_path), run_dir)
    if named is None:
        raise EvalError(
            f"source={value}: no checkpoint in {run_dir}: its record names none (pretrain with "
            "trainer.checkpoint=true, or pass a .ckpt)"
        )
    if not named.is_file():
        raise EvalError(
            f"source={value}: no checkpoint in {run_dir}: its record names {named.relative_to(run_dir)}, "
            "which is not there (a copied folder needs its checkpoints/ too)"
        )
    return named.resolve()


def resolve_source(value: Any) -> Source:
    """``source`` -> checkpoint, run folder and record; ``EvalError`` when there is nothing to load."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise EvalError(
            "source: missing; give a pretraining run folder, its record.json or a .ckpt "
            "(ssl-bench-eval source=runs/<date>/<time>_<method>)"
        )
    path = Path(str(value)).expanduser().resolve()
    if not path.exists():
        raise EvalError(f"source={value}: no such file or folder")
    if path.is_dir() or path.name == RECORD_FILE:
        run_dir = path if path.is_dir() else path.parent
        record = run_dir / RECORD_FILE
        record_path = record if record.is_file() else None
        return Source(_named_checkpoint(run_dir, record_path, value), run_dir, record_path, is_final=True)
    if path.suffix != ".ckpt":
        raise EvalError(f"source={value}: expected a run folder, its {RECORD_FILE}, or a .ckpt file")
    parent = path.parent.parent if path.parent.name == "checkpoints" else None
    if parent is not None and (parent / RECORD_FILE).is_file():
        record = parent / RECORD_FILE
        named = checkpoint_path(_record(record), parent)
        return Source(path, parent, record, is_final=named is not None and named.resolve() == path)
    return Source(path)


def check_identity(source: Source, ckpt: dict[str, Any]) -> None:
    """For the checkpoint a record names: the file must hold the record's run (run id) at the step the
    record says it wrote; ``EvalError`` otherwise (the file was replaced by another run's)."""
    if not source.is_final or source.record is None:
        return
    entry = _record(source.record).get("checkpoint")
    if not isinstance(entry, dict):  # schema 1 records name a path only
        return
    file_id, file_step = checkpoint_run_id(ckpt), ckpt.get("global_step")
    if entry.get("run_id") and file_id and entry["run_id"] != file_id:
        raise EvalError(
            f"source: {source.checkpoint} belongs to run {file_id}, but {source.record} is run "
            f"{entry['run_id']}: the checkpoint was replaced; evaluate the checkpoint file itself "
            "(source=<path>.ckpt) if that is what you want"
        )
    if entry.get("step") is not None and file_step is not None and int(entry["step"]) != int(file_step):
        raise EvalError(
            f"source: {source.checkpoint} holds step {file_step}, but {source.record} names step "
            f"{entry['step']}: the file is not the one the record's metrics came from"
        )
