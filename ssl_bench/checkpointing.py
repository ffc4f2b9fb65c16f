"""Checkpoints that name their run and never leave half a file.

``AtomicCheckpointIO`` (a Lightning ``CheckpointIO`` plugin) writes every checkpoint to a temporary
file, flushes it to disk and renames it over the old one, so a kill during a save leaves the previous
complete checkpoint; it then tells the run record which file it wrote (path, epoch, step). A full
disk (or quota) while saving is a ``RunFolderError``: one line naming the checkpoint and the space
left, the partial file removed, the previous checkpoint kept for ``resume=auto``.
``RunIdentity`` stamps each checkpoint with the run id of its record, which ``ssl-bench-eval`` and
``resume`` check. ``epoch_checkpoint`` is the one ``checkpoints/last.ckpt`` a run keeps, overwritten
at the end of every epoch (never ``last-v1.ckpt``).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from ssl_bench.errors import RunFolderError
from ssl_bench.tracking.record import CHECKPOINT_DIR, IDENTITY_KEY, LAST_CHECKPOINT

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a full device, a full quota


def _size(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def no_space(path: Path, err: OSError) -> RunFolderError:
    """The one-line error for a checkpoint that did not fit: the file, the space left where it goes
    (measured once the partial file is gone), what to do."""
    try:
        free = f"{_size(shutil.disk_usage(path.parent).free)} free there"
    except OSError:
        free = "free space unknown"
    kept = "the previous checkpoint is kept and " if path.is_file() else ""
    reason = "no space left on the device" if err.errno == errno.ENOSPC else "disk quota exceeded"
    return RunFolderError(
        f"{reason} writing the checkpoint {path} ({free}): {kept}resume=auto continues once there is room"
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to ``.<name>.tmp``, fsync, rename; then ``on_saved(path, checkpoint)``."""

    def __init__(self, on_saved: Callable[[Path, dict[str, Any]], None] | None = None):
        super().__init__()
        self.on_saved = on_saved

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            if isinstance(err, OSError) and err.errno in NO_SPACE:
                raise no_space(path, err) from err
            raise
        if self.on_saved is not None:
            self.on_saved(path, checkpoint)


class RunIdentity(pl.Callback):
    """Writes the run id into every checkpoint (``checkpoint["ssl_bench"]["run_id"]``)."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[IDENTITY_KEY] = {"run_id": self.run_id}


def epoch_checkpoint(run_dir: str | Path) -> ModelCheckpoint:
    """``<run dir>/checkpoints/last.ckpt`` at the end of every training epoch, overwritten in place."""
    return ModelCheckpoint(
        dirpath=Path(run_dir) / CHECKPOINT_DIR,
        filename=LAST_CHECKPOINT.stem,
        save_top_k=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
