"""One pretraining run: build, evaluate the random init, fit, evaluate, record, close tracking.

With ``resume`` set, an interrupted run continues from its checkpoint in the same folder: same W&B
run, same record (earlier epochs kept), no second random-init evaluation."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar

from ssl_bench.data.datamodule import build_datamodule
from ssl_bench.methods import METHODS, DivergedError
from ssl_bench.resume import RngState, checkpoint_epoch, resume_checkpoint
from ssl_bench.tracking import wandb as wb
from ssl_bench.tracking.callbacks import EpochRecorder, EpochThroughput
from ssl_bench.tracking.record import RECORD_FILE, RunRecord, load_record

log = logging.getLogger("ssl_bench")


def run(cfg: DictConfig, out_dir: str | Path, overrides: list[str], name: str) -> dict[str, Any]:
    """Run one pretraining job described by a validated config; returns its record.

    Never raises for a diverged or collapsed run (both are results). Other errors are recorded
    as ``failed`` and re-raised.
    """
    out_dir = Path(out_dir)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    ckpt = resume_checkpoint(cfg, out_dir)
    previous = load_record(out_dir) if ckpt is not None and (out_dir / RECORD_FILE).is_file() else None
    record = RunRecord(out_dir, cfg, overrides, name)
    if ckpt is not None:
        last_epoch = checkpoint_epoch(ckpt)
        record.resume(previous, ckpt, last_epoch)
        log.info("resuming from %s (after epoch %d)", ckpt, last_epoch)
    record.save()
    logger: Any = False
    status, error = "failed", None
    throughput = EpochThroughput(cfg.data.batch_size, unit=METHODS[cfg.method.name].throughput_unit)
    try:
        old_id = (record["wandb"] or {}).get("id") if ckpt is not None else None
        logger = wb.build_logger(cfg, str(out_dir), name, run_id=old_id)
        record["wandb"] = wb.wandb_info(logger)
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        dm = build_datamodule(cfg.data, cfg.augment)
        model = METHODS[cfg.method.name].from_config(cfg, dm)
        if cfg.eval.initial and ckpt is None:   # a resumed run keeps the record's random-init evaluation
            record["init"] = model.evaluate(dm)
            log.info("before training: %s", ", ".join(f"{k} {v:.3f}" for k, v in record["init"].items()))
        callbacks: list[pl.Callback] = [throughput, EpochRecorder(record), RngState()]
        if cfg.trainer.checkpoint:
            callbacks.append(ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="last", save_top_k=1,
                                             save_on_train_epoch_end=True))
        if cfg.trainer.enable_progress_bar:
            callbacks.append(RichProgressBar(leave=True))
        tc = cfg.trainer
        trainer = pl.Trainer(
            max_epochs=tc.max_epochs, accelerator=tc.accelerator, devices=tc.devices, num_nodes=tc.num_nodes,
            strategy=tc.strategy, precision=tc.precision, accumulate_grad_batches=tc.accumulate_grad_batches,
            gradient_clip_val=tc.gradient_clip_val, deterministic=tc.deterministic,
            sync_batchnorm=tc.sync_batchnorm,
            log_every_n_steps=tc.log_every_n_steps, limit_train_batches=tc.limit_train_batches,
            check_val_every_n_epoch=cfg.eval.every_n_epochs, num_sanity_val_steps=0,
            enable_progress_bar=tc.enable_progress_bar, enable_model_summary=False, enable_checkpointing=tc.checkpoint,
            logger=logger, callbacks=callbacks, default_root_dir=str(out_dir),
        )
        t_fit = time.perf_counter()
        try:
            trainer.fit(model, datamodule=dm, ckpt_path=None if ckpt is None else str(ckpt))
        finally:
            record["timings"]["fit_s"] = round(time.perf_counter() - t_fit, 3)
            if cfg.trainer.checkpoint and (out_dir / "checkpoints" / "last.ckpt").exists():
                record["checkpoint"] = str(out_dir / "checkpoints" / "last.ckpt")
            record["export"] = model.exported    # backbone.pt (image methods), hf_export/ (masked LM)
        if cfg.eval.final:
            record["final"] = model.evaluate(dm)
        status = model.final_status(record["final"])
    except DivergedError as err:
        status, error = "diverged", err
        log.error("run diverged: %s", err)
    except BaseException as err:
        status, error = "failed", err
        raise
    finally:
        timings = {}
        if throughput.train_seconds > 0:
            timings = {"train_s": round(throughput.train_seconds, 3),
                       f"{throughput.unit}_per_s": round(throughput.images / throughput.train_seconds, 1)}
        record.finish(status, error, **timings)
        summary = {f"final/{k}": v for k, v in record["final"].items()}
        summary.update({f"best/{k}": v for k, v in record["best"].items()})
        summary.update({f"init/{k}": v for k, v in record["init"].items()})
        summary.update({"status": status, **{f"timings/{k}": v for k, v in record["timings"].items()}})
        try:
            wb.finish(logger, summary, exit_code=0 if status in ("finished", "collapsed") else 1)
        except Exception as err:  # closing tracking must never hide the run's own outcome
            log.warning("could not close the W&B run cleanly: %s", err)
    return record.data
