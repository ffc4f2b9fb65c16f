"""One offline evaluation (``ssl-bench-eval``): load a pretrained image backbone, freeze it, extract
features once (cached), fit a linear classifier (top-1 / top-5), score a weighted kNN, record.

It runs in the same lifecycle as a pretraining run (``ssl_bench.tracking.lifecycle.Job``: folder lock,
signals, record and W&B close); its record (``job_type: eval``) lives in ``<run dir>/eval/<time>/``
and points to the pretraining run (``pretrain``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ssl_bench.eval.source import EvalError, Source, check_identity
from ssl_bench.tracking.lifecycle import Job
from ssl_bench.tracking.record import RunRecord, load_record

log = logging.getLogger("ssl_bench")


def _plain(node: Any) -> dict[str, Any]:
    out = OmegaConf.to_container(node, resolve=True)
    assert isinstance(out, dict)
    return out  # type: ignore[return-value]


def dataset_defaults(name: str) -> DictConfig:
    """``conf/data/<name>.yaml`` as the pretraining app composes it (environment defaults such as
    ``$SSL_BENCH_DATA`` resolved, required keys such as ``root`` left required)."""
    from ssl_bench.config import config_dir

    path = Path(config_dir()) / "data" / f"{name}.yaml"
    if not path.is_file():
        raise EvalError(f"data.name={name!r}: no conf/data/{name}.yaml")
    return OmegaConf.load(path)


def data_config(pretrain_data: DictConfig, overrides: DictConfig | None) -> DictConfig:
    """The pretraining run's data config with ``data`` overrides on top. A different ``data.name``
    starts from that dataset's config file (``conf/data/<name>.yaml``) instead (transfer evaluation)."""
    from ssl_bench.config import DATA, ConfigError, TextData, check_node

    if not overrides:
        return pretrain_data
    name = overrides.get("name", pretrain_data.get("name"))
    if name not in DATA:
        raise EvalError(f"data.name={name!r} is not allowed; allowed: {', '.join(DATA)}")
    if DATA[name] is TextData:
        raise EvalError(f"data.name={name!r} is text; ssl-bench-eval evaluates image backbones on image data")
    base = pretrain_data if name == pretrain_data.get("name") else dataset_defaults(name)
    merged = OmegaConf.merge(base, overrides)
    for key in merged:
        if OmegaConf.is_missing(merged, key):
            raise EvalError(f"data.{key} is required for data.name={name}: +data.{key}=...")
    try:
        check_node(merged, DATA[name], "data")  # keys, types and ranges of the result
    except ConfigError as err:
        raise EvalError(f"{err} (data.name={name})") from None
    return OmegaConf.create(_plain(merged))


class EvalRecord(RunRecord):
    """The record of an evaluation: the run-record schema with ``job_type: eval`` and ``pretrain``
    (what was evaluated); ``final`` holds ``linear_top1``, ``linear_top5`` and ``knn_acc``."""

    def __init__(
        self,
        out_dir: str | Path,
        cfg: DictConfig,
        overrides: list[str],
        name: str,
        method: str,
        pretrain: dict[str, Any],
        started: float | None = None,
    ):
        super().__init__(out_dir, OmegaConf.create({"method": {"name": method}, "seed": cfg.seed}), overrides, name)
        if started is not None:  # wall_s counts from this perf_counter() value (checkpoint loading included)
            self._t0 = started
        data = dict(self.data)
        data["config"] = OmegaConf.to_container(cfg, resolve=True)
        self.data = {
            "schema_version": data.pop("schema_version"),
            "job_type": "eval",
            **data,
            "pretrain": pretrain,
            "features": None,
        }


def _logger_cfg(cfg: DictConfig, pcfg: DictConfig, previous: dict[str, Any] | None) -> DictConfig:
    """The eval run's logger settings: project, entity and group default to the pretraining run's."""
    info = (previous or {}).get("wandb") or {}
    plog = ((previous or {}).get("config") or {}).get("logger") or OmegaConf.to_container(pcfg.get("logger") or {})
    lc = cfg.logger
    return OmegaConf.create(
        {
            "name": lc.name,
            "mode": lc.mode,
            "job_type": lc.get("job_type") or "eval",
            "tags": list(lc.tags),
            "notes": lc.get("notes"),
            "init_timeout": lc.get("init_timeout", 30.0),
            "project": lc.project or info.get("project") or plog.get("project") or "ssl-bench",
            "entity": lc.get("entity") or plog.get("entity"),
            "group": lc.group or info.get("group") or plog.get("group"),
        }
    )


def _device(cfg: DictConfig) -> Any:
    import torch

    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def summary(record: RunRecord) -> dict[str, Any]:
    out: dict[str, Any] = {f"final/{k}": v for k, v in record["final"].items()}
    out.update(
        {"pretrain_id": record["pretrain"]["wandb_id"], **{f"timings/{k}": v for k, v in record["timings"].items()}}
    )
    return out


def run_eval(cfg: DictConfig, source: Source, out_dir: str | Path, overrides: list[str]) -> dict[str, Any]:
    """Evaluate ``source`` as configured by a validated eval config; returns the eval record.

    ``EvalError`` for an input that cannot be evaluated (a masked-LM or foreign checkpoint, a checkpoint
    that is not the record's, bad data overrides: before any record is written; a split the dataset
    lacks: recorded as ``failed``). Other errors are recorded as ``failed`` and re-raised."""
    import torch

    from ssl_bench.methods.loading import build_image_method, load_checkpoint

    out_dir = Path(out_dir)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    t0 = time.perf_counter()
    with Job(out_dir, summary=summary) as job:
        previous = load_record(source.record) if source.record else None
        ckpt, pcfg = load_checkpoint(source.checkpoint)
        check_identity(source, ckpt)
        model = build_image_method(ckpt, pcfg)
        del ckpt
        data = data_config(pcfg.data, cfg.data)
        job.timings["load_s"] = round(time.perf_counter() - t0, 3)
        pname = (previous or {}).get("name") or (source.run_dir.name if source.run_dir else source.checkpoint.stem)
        pretrain = {
            "run_dir": None if source.run_dir is None else str(source.run_dir),
            "record": None if source.record is None else str(source.record),
            "checkpoint": str(source.checkpoint),
            "run_id": (previous or {}).get("run_id"),
            "wandb_id": ((previous or {}).get("wandb") or {}).get("id"),
            "name": pname,
            "method": str(pcfg.method.name),
            "backbone": str(pcfg.backbone.name),
        }
        shown = OmegaConf.create({**_plain(cfg), "data": _plain(data)})  # the record says what was evaluated
        name = f"eval-{pname}"
        record = job.track(EvalRecord(out_dir, shown, overrides, name, str(pcfg.method.name), pretrain, started=t0))
        lcfg = _logger_cfg(cfg, pcfg, previous)
        tracked = OmegaConf.create(
            {
                **_plain(shown),
                "logger": _plain(lcfg),
                "pretrain": pretrain,
                "method": _plain(pcfg.method),
                "backbone": _plain(pcfg.backbone),
            }
        )
        from ssl_bench.tracking import wandb as wb

        job.logger = wb.build_logger(tracked, str(out_dir), name)
        record["wandb"] = wb.wandb_info(job.logger)
        _evaluate(cfg, source, model, data, _device(cfg), job, record)
        job.status = "finished"
    return record.data


def _evaluate(
    cfg: DictConfig, source: Source, model: Any, data: DictConfig, device: Any, job: Job, record: RunRecord
) -> None:
    import pytorch_lightning as pl

    from ssl_bench.eval.export import BACKBONE_FILE, export_backbone, export_is_current
    from ssl_bench.eval.features import (
        FEATURES_DIR,
        cached_features,
        extract_features,
        feature_key,
        progress,
        save_features,
    )
    from ssl_bench.eval.knn import knn_accuracy
    from ssl_bench.eval.linear import fit_linear_probe

    timings = job.timings
    # backbone export: into the run folder for the run's own checkpoint, else next to this record
    t = time.perf_counter()
    target = source.run_dir if source.run_dir is not None and source.is_final else Path(record.path.parent)
    if not export_is_current(target, source.checkpoint):
        export_backbone(model, target, checkpoint=source.checkpoint)
        log.info("backbone: exported to %s", target / BACKBONE_FILE)
    record["export"] = str(target / BACKBONE_FILE)
    timings["export_s"] = round(time.perf_counter() - t, 3)

    # features: once per checkpoint file x data config x split
    t = time.perf_counter()
    cache = source.home / FEATURES_DIR / f"{feature_key(source.checkpoint, data, cfg.split)}.pt"
    feats = cached_features(cache) if cfg.feature_cache else None
    hit = feats is not None
    if feats is None:
        try:
            feats = extract_features(model, cfg.split, data, device)
        except KeyError:
            raise EvalError(f"split={cfg.split!r}: data.name={data.name} has no such split") from None
        if cfg.feature_cache:
            save_features(cache, feats)
    timings.update(features_s=round(time.perf_counter() - t, 3), features_cached=hit)
    record["features"] = {
        "path": str(cache) if cfg.feature_cache else None,
        "cached": hit,
        "train": int(feats["train_x"].shape[0]),
        "eval": int(feats["eval_x"].shape[0]),
        "dim": int(feats["train_x"].shape[1]),
    }
    log.info(
        "features: %s (%d train, %d %s, %d-d)%s",
        "cached" if hit else "extracted",
        feats["train_x"].shape[0],
        feats["eval_x"].shape[0],
        cfg.split,
        feats["train_x"].shape[1],
        f" {cache}" if cfg.feature_cache else "",
    )
    train_x, train_y, eval_x, eval_y = (feats[k].to(device) for k in ("train_x", "train_y", "eval_x", "eval_y"))
    num_classes = int(feats["num_classes"])

    # linear classifier on the frozen features, then the weighted kNN
    t = time.perf_counter()
    lin, logger = cfg.linear, job.logger
    pl.seed_everything(cfg.seed, verbose=False)  # the probe's result depends on features and seed only
    with progress() as bar:
        task = bar.add_task("linear probe", total=lin.epochs, info="")

        def on_epoch(epoch: int, loss: float) -> None:
            bar.update(task, advance=1, info=f"loss {loss:.4f}")
            if logger is not False:
                logger.log_metrics({"linear/train_loss": loss, "linear/epoch": epoch}, step=epoch)

        linear = fit_linear_probe(
            train_x,
            train_y,
            eval_x,
            eval_y,
            num_classes,
            epochs=lin.epochs,
            lr=lin.lr,
            weight_decay=lin.weight_decay,
            batch_size=lin.batch_size,
            seed=cfg.seed,
            optimizer=lin.optimizer,
            on_epoch=on_epoch,
        )
    timings["linear_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    knn = knn_accuracy(eval_x, eval_y, train_x, train_y, num_classes, cfg.knn.k, cfg.knn.t)
    timings["knn_s"] = round(time.perf_counter() - t, 3)
    record["final"] = {
        "linear_top1": linear["top1"],
        "linear_top5": linear["top5"],
        "knn_acc": knn,
        "n_eval": int(eval_y.shape[0]),
    }
