"""Lightning callbacks of a run: epoch throughput and per-epoch metrics for the record, and the job's
signal handlers taken back from the Trainer."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl

from ssl_bench.tracking.record import RunRecord


class EpochThroughput(pl.Callback):
    """Logs ``train/img_per_s`` (training batches only, evaluation excluded) and ``train/lr``.

    ``unit`` names what one batch element is (``img``); a method whose batch elements hold many
    items (tokens) logs its own finer throughput beside this one."""

    def __init__(self, batch_size: int, unit: str = "img"):
        self.batch_size = batch_size
        self.unit = unit
        self._start = self._end = 0.0
        self.train_seconds = 0.0
        self.images = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._end = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._end = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds = max(self._end - self._start, 1e-9)
        images = trainer.num_training_batches * self.batch_size * trainer.world_size
        self.train_seconds += seconds
        self.images += images
        sync = trainer.world_size > 1  # global figures: the ranks' values agree (mean over them)
        pl_module.log(f"train/{self.unit}_per_s", images / seconds, sync_dist=sync)
        pl_module.log("train/lr", trainer.optimizers[0].param_groups[0]["lr"], sync_dist=sync)


class EpochRecorder(pl.Callback):
    """Appends the epoch's logged metrics (epoch aggregates, not per-step values) to the record."""

    def __init__(self, record: RunRecord):
        self.record = record

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {
            k.removesuffix("_epoch"): float(v)
            for k, v in trainer.callback_metrics.items()
            if "/" in k and not k.endswith("_step")
        }
        self.record.add_epoch(trainer.current_epoch, trainer.global_step, metrics)


class TakeSignals(pl.Callback):
    """At the start of training (after the Trainer installed its signal handlers) the job's handlers
    are put back: SIGTERM / SIGINT end the run as ``interrupted`` and SIGUSR1 requeues a SLURM job,
    with no collective call inside a handler (``ssl_bench.tracking.lifecycle``). Lightning restores
    the job's handlers when fit ends."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from ssl_bench.tracking.lifecycle import take_back_signals

        take_back_signals()
