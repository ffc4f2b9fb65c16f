"""One pretraining run: plan the folder, build, evaluate the random init, fit, evaluate, record.

The run lives in ``ssl_bench.tracking.lifecycle.Job`` (folder lock, signals, record and W&B close)
and starts with ``ssl_bench.runfolder.plan_run`` (fresh, resume, skip or refuse). A resumed run
continues from its checkpoint in the same folder: same W&B run, same record (earlier epochs kept, the
previous attempt in ``attempts``), no second random-init evaluation.

With several processes (``trainer.devices=N``, torchrun, srun; ``ssl_bench.distributed``) every rank
runs this code: rank 0 alone locks and plans the folder (and tells the others), builds the data first
(caches), writes the record, the checkpoints, the export and the W&B run; the evaluations are sharded
over the ranks.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import RichProgressBar

from ssl_bench import distributed
from ssl_bench.checkpointing import AtomicCheckpointIO, RunIdentity, epoch_checkpoint
from ssl_bench.data.datamodule import build_datamodule
from ssl_bench.errors import UserError
from ssl_bench.methods import method_class
from ssl_bench.methods.base import DivergedError
from ssl_bench.models.syncbn import layer_sync
from ssl_bench.resume import CheckpointInfo, RngState
from ssl_bench.runfolder import Plan, plan_run
from ssl_bench.tracking import wandb as wb
from ssl_bench.tracking.callbacks import EpochRecorder, EpochThroughput, TakeSignals
from ssl_bench.tracking.lifecycle import Interrupted, Job
from ssl_bench.tracking.record import LAST_CHECKPOINT, RunRecord

log = logging.getLogger("ssl_bench")


def run(
    cfg: DictConfig, out_dir: str | Path, overrides: list[str], name: str, sweep_job: bool = False
) -> dict[str, Any]:
    """Run one pretraining job described by a validated config; returns its record."""
    return execute(cfg, out_dir, overrides, name, sweep_job)[0]


def summary(record: RunRecord) -> dict[str, Any]:
    """The W&B run summary: final / best / init metrics and timings."""
    out = {f"final/{k}": v for k, v in record["final"].items()}
    out.update({f"best/{k}": v for k, v in record["best"].items()})
    out.update({f"init/{k}": v for k, v in record["init"].items()})
    out.update({f"timings/{k}": v for k, v in record["timings"].items()})
    return out


class OtherRankFailed(UserError):
    """Raised on the other ranks when rank 0 stopped on bad input (rank 0 reports it)."""


def _uses_gpu(cfg: DictConfig) -> bool:
    acc = str(cfg.trainer.accelerator)
    return acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available())


def build_trainer(
    cfg: DictConfig,
    out_dir: Path,
    logger: Any,
    callbacks: list[pl.Callback],
    record: RunRecord,
    ranks: distributed.Ranks,
) -> pl.Trainer:
    tc = cfg.trainer
    plugins: list[Any] = []
    if tc.checkpoint:
        callbacks = [*callbacks, RunIdentity(record.run_id), epoch_checkpoint(out_dir)]
        own = (out_dir / LAST_CHECKPOINT).resolve()

        def saved(path: Path, checkpoint: dict[str, Any]) -> None:
            if path.resolve() == own:  # the epoch checkpoint (not an hpc / requeue one)
                record.set_checkpoint(path, checkpoint["epoch"], checkpoint["global_step"])

        plugins.append(AtomicCheckpointIO(on_saved=saved))
    if tc.enable_progress_bar and ranks.primary:
        callbacks.append(RichProgressBar(leave=True))
    strategy = tc.strategy
    if ranks.distributed:
        plugins.append(distributed.cluster_environment(ranks))
        strategy = "ddp" if strategy == "auto" else strategy
    if ranks.distributed if str(tc.sync_batchnorm) == "auto" else str(tc.sync_batchnorm) == "true":
        plugins.append(layer_sync(_uses_gpu(cfg)))  # BN statistics of the global batch
    return pl.Trainer(
        max_epochs=tc.max_epochs,
        accelerator=tc.accelerator,
        devices=tc.devices,
        num_nodes=tc.num_nodes,
        strategy=strategy,
        precision=tc.precision,
        accumulate_grad_batches=tc.accumulate_grad_batches,
        gradient_clip_val=tc.gradient_clip_val,
        deterministic=tc.deterministic,
        log_every_n_steps=tc.log_every_n_steps,
        limit_train_batches=tc.limit_train_batches,
        check_val_every_n_epoch=cfg.eval.every_n_epochs,
        num_sanity_val_steps=0,
        enable_progress_bar=tc.enable_progress_bar and ranks.primary,
        enable_model_summary=False,
        enable_checkpointing=tc.checkpoint,
        logger=logger,
        callbacks=callbacks,
        plugins=plugins or None,
        default_root_dir=str(out_dir),
        use_distributed_sampler=False,  # the data modules shard (data order)
    )


def execute(
    cfg: DictConfig, out_dir: str | Path, overrides: list[str], name: str, sweep_job: bool = False
) -> tuple[dict[str, Any], str]:
    """``(record, action)``: action ``fresh`` / ``resume`` (it ran) or ``skip`` (the folder already held
    this job's result, returned unchanged). Never raises for a diverged or collapsed run (both are
    results); other errors are recorded as ``failed`` (a signal: ``interrupted``) and re-raised."""
    out_dir = Path(out_dir)
    ranks = distributed.detect(cfg)
    threads = cfg.trainer.num_threads or (
        max(1, (os.cpu_count() or 1) // ranks.world_size) if ranks.distributed and not _uses_gpu(cfg) else 0
    )
    if threads:
        torch.set_num_threads(threads)
    others = None
    try:
        if ranks.starts_others:
            others = distributed.LocalRanks(cfg, out_dir, overrides, name, sweep_job, ranks)
        distributed.init(ranks, gpu=_uses_gpu(cfg))
        return _execute(cfg, out_dir, overrides, name, sweep_job, ranks, others)
    except BaseException:
        if others is not None:  # the job ended early here: the other ranks end too
            distributed.close()  # their collective calls return (with an error) instead of waiting
            others.signal(signal.SIGTERM)
            others.close(timeout=10)
        raise
    finally:
        if others is not None:
            others.close()
        distributed.close()


def _shared_plan(cfg: DictConfig, out_dir: Path, sweep_job: bool, ranks: distributed.Ranks) -> Plan:
    """Rank 0 plans the folder and tells the others (what to do, which checkpoint to resume from)."""
    if not ranks.distributed:
        return plan_run(cfg, out_dir, sweep_job)
    if ranks.primary:
        try:
            plan = plan_run(cfg, out_dir, sweep_job)
        except BaseException as err:
            distributed.broadcast({"error": f"{type(err).__name__}: {err}"})
            raise
        ckpt = plan.checkpoint
        distributed.broadcast(
            {
                "action": plan.action,
                "ckpt": None if ckpt is None else [str(ckpt.path), ckpt.epoch, ckpt.step, ckpt.run_id],
            }
        )
        return plan
    told = distributed.broadcast(None)
    if "error" in told:
        raise OtherRankFailed(f"rank 0 stopped: {told['error']}")
    ckpt = told["ckpt"]
    return Plan(told["action"], checkpoint=None if ckpt is None else CheckpointInfo(Path(ckpt[0]), {}, *ckpt[1:]))


def _datamodule(cfg: DictConfig, ranks: distributed.Ranks) -> Any:
    """Rank 0 builds the data first (it fills the caches the others then read)."""
    dm, error = None, None
    if ranks.primary:
        try:
            dm = build_datamodule(cfg.data, cfg.augment)
        except BaseException as err:
            error = err
    told = distributed.broadcast(None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    if told is not None:
        raise OtherRankFailed(f"rank 0 stopped: {told}")
    return dm if dm is not None else build_datamodule(cfg.data, cfg.augment)


def _execute(
    cfg: DictConfig,
    out_dir: Path,
    overrides: list[str],
    name: str,
    sweep_job: bool,
    ranks: distributed.Ranks,
    others: distributed.LocalRanks | None,
) -> tuple[dict[str, Any], str]:
    with Job(out_dir, primary=ranks.primary, summary=summary) as job:
        plan = _shared_plan(cfg, out_dir, sweep_job, ranks)
        if plan.action == "skip":
            return plan.previous or {}, "skip"
        if plan.note:
            log.warning("%s: %s", out_dir, plan.note)
        ckpt = plan.checkpoint
        record = RunRecord(out_dir, cfg, overrides, name, write=ranks.primary)
        if ckpt is not None or plan.previous is not None:
            record.continue_from(
                plan.previous, None if ckpt is None else ckpt.path, None if ckpt is None else ckpt.epoch
            )
            if ckpt is not None and plan.previous is None and ckpt.run_id and ckpt.path.parent.parent == out_dir:
                record["run_id"] = ckpt.run_id  # the folder's own checkpoint, its record lost
        if plan.moved_to is not None:
            record["superseded"] = str(plan.moved_to)
        record["distributed"] = {"world_size": ranks.world_size, "launcher": ranks.launcher}
        job.track(record)
        if ckpt is not None:
            log.info("resuming from %s (after epoch %d)", ckpt.path, ckpt.epoch)
        throughput = EpochThroughput(cfg.data.batch_size, unit=method_class(cfg.method.name).throughput_unit)
        try:
            _fit_and_evaluate(cfg, out_dir, name, job, record, throughput, ckpt, ranks)
        except DivergedError as err:
            job.status, job.error = "diverged", err
            log.error("run diverged: %s", err)
        except BaseException as err:  # a rank died (a kill, an error): the job failed, naming it
            # an outside signal reaches every rank: no waiting for one to end (the watcher, which
            # signals this process itself, has set ``lost`` before its SIGTERM)
            lost = None if others is None else others.lost_rank(wait_s=0.0 if isinstance(err, Interrupted) else 5.0)
            if lost:
                raise distributed.RankLost(lost) from err
            raise
        finally:
            if throughput.train_seconds > 0:
                job.timings.update(
                    {
                        "train_s": round(throughput.train_seconds, 3),
                        f"{throughput.unit}_per_s": round(throughput.images / throughput.train_seconds, 1),
                    }
                )
    return record.data, plan.action


def _fit_and_evaluate(
    cfg: DictConfig,
    out_dir: Path,
    name: str,
    job: Job,
    record: RunRecord,
    throughput: EpochThroughput,
    ckpt: Any,
    ranks: distributed.Ranks,
) -> None:
    dm = _datamodule(cfg, ranks)  # data errors come before a W&B run is opened
    if ranks.primary:
        job.logger = wb.build_logger(cfg, str(out_dir), name, run_id=(record["wandb"] or {}).get("id"))
        record["wandb"] = wb.wandb_info(job.logger)
        record.save()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model = method_class(cfg.method.name).from_config(cfg, dm)
    trainer = build_trainer(
        cfg, out_dir, job.logger, [throughput, EpochRecorder(record), RngState(), TakeSignals()], record, ranks
    )
    if cfg.eval.initial and ckpt is None:  # a resumed run keeps the record's random-init evaluation
        record["init"] = model.evaluate(dm)
        if ranks.primary:
            log.info("before training: %s", ", ".join(f"{k} {v:.3f}" for k, v in record["init"].items()))
        record.save()
    t_fit = time.perf_counter()
    try:
        trainer.fit(model, datamodule=dm, ckpt_path=None if ckpt is None else str(ckpt.path))
    finally:
        job.timings["fit_s"] = round(time.perf_counter() - t_fit, 3)
        record["export"] = model.exported  # backbone.pt (image methods), hf_export/ (masked LM)
    if cfg.eval.final:
        record["final"] = model.evaluate(dm)
        record["evaluated_at"] = {"epoch": trainer.current_epoch - 1, "step": trainer.global_step}
    job.status = model.final_status(record["final"])
