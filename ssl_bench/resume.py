"""Resuming an interrupted run (``resume=auto`` or ``resume=PATH.ckpt``).

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
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

log = logging.getLogger("ssl_bench")

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


class RngState(pl.Callback):
    """Saves the global RNG states with every checkpoint and restores them on resume.

    The states are those of the process that writes the checkpoint (rank 0). Every rank seeds the
    same way and draws the same number of values, so under DDP they are the same on every rank.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state: dict[str, Any] = {       # plain tensors and numbers: loads with weights_only=True
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


def resume_checkpoint(cfg: DictConfig, out_dir: Path) -> Path | None:
    """The checkpoint to continue from: ``None`` (fresh run), ``auto`` -> ``<run dir>/checkpoints/
    last.ckpt`` when it exists, or an explicit path (validated to exist)."""
    value = cfg.get("resume")
    if value is None:
        return None
    if value == "auto":
        ckpt = out_dir / LAST_CHECKPOINT
        if not ckpt.is_file():
            log.info("resume=auto: no %s in the run folder, starting fresh", LAST_CHECKPOINT)
            return None
        return ckpt
    return Path(value).resolve()


def checkpoint_epoch(ckpt: Path) -> int:
    """The epoch (0-based) whose end the checkpoint holds."""
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"])
