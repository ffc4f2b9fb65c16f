"""Resuming an interrupted run (``resume=auto`` or ``resume=PATH.ckpt``): the RNG state and what a
checkpoint says about itself (``ssl_bench.runfolder`` decides whether to resume).

Lightning's checkpoint restores the weights, optimizer, LR scheduler and loop counters, but not
the random number generators. The batched augmentation draws from the global torch RNG (CUDA's on
a GPU) and the training loader's shuffling seeds itself from the global torch RNG at the start of
every epoch, so ``RngState`` stores those generators (torch CPU and CUDA, numpy, Python) in the
checkpoint and puts them back on load: a resumed run then draws the same views in the same order
as one that was never interrupted.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from ssl_bench.errors import RunFolderError

log = logging.getLogger("ssl_bench")


class RngState(pl.Callback):
    """Saves the global RNG states with every checkpoint and restores them on resume.

    The states are those of the process that writes the checkpoint (rank 0). Every rank seeds the
    same way and draws the same number of values, so under DDP they are the same on every rank.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state: dict[str, Any] = {  # plain tensors and numbers: loads with weights_only=True
            "torch": torch.get_rng_state(),
            "numpy": [str(kind), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself: the run config it was trained with, the epoch whose end it
    holds (0-based), the global step and the run id it was stamped with."""

    path: Path
    config: dict[str, Any]
    epoch: int
    step: int
    run_id: str | None


def read_checkpoint(path: str | Path) -> CheckpointInfo:
    """Open a checkpoint (memory-mapped: the weights are not read) for its config and position;
    ``RunFolderError`` in one line when the file is truncated, corrupt or not an ssl-bench checkpoint."""
    from ssl_bench.tracking.record import checkpoint_run_id

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # truncated zip, pickle errors, not a torch file: all say "unreadable"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RunFolderError(f"checkpoint {path} is unreadable ({type(err).__name__}: {first[:200]})") from None
    cfg = (ckpt.get("hyper_parameters") or {}).get("cfg") if isinstance(ckpt, dict) else None
    if not isinstance(cfg, dict) or "epoch" not in ckpt:
        raise RunFolderError(f"checkpoint {path} is not an ssl-bench checkpoint (no run config in it)")
    return CheckpointInfo(path, cfg, int(ckpt["epoch"]), int(ckpt.get("global_step", 0)), checkpoint_run_id(ckpt))
