"""``ssl-bench``: the Hydra pretraining app (``ssl-bench --help``, ``ssl-bench --cfg job``)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ssl_bench.config import ConfigError, config_dir, validate


def _run_name(cfg: DictConfig, overrides: list[str]) -> str:
    if cfg.name:
        return str(cfg.name)
    shown = _job_overrides(overrides)
    return "-".join([cfg.method.name, *shown])[:120] if shown else str(cfg.method.name)


def job_dirname(overrides: str, limit: int = 100) -> str:
    """A sweep job's folder name from its overrides (not from its position in the grid, so that a
    re-run finds it after the grid changed), kept under file-name limits: cut at ``limit`` characters
    plus a short hash of the whole string when longer (still one name per job)."""
    if not overrides:
        return "default"
    if len(overrides) <= limit:
        return overrides
    import hashlib

    return f"{overrides[:limit]}-{hashlib.sha1(overrides.encode()).hexdigest()[:8]}"


if not OmegaConf.has_resolver("ssl_bench.dirname"):
    OmegaConf.register_new_resolver("ssl_bench.dirname", job_dirname)


def finished_record(out_dir: str, overrides: list[str], cfg: DictConfig) -> dict | None:
    """The record of an earlier run of this very job if it ended as a result (finished, collapsed or
    diverged): same folder, same overrides and the same resolved config (an edited experiment file
    makes its jobs run again). Failed, killed or still-running jobs run again."""
    from ssl_bench.tracking.record import RECORD_FILE, load_record

    path = Path(out_dir) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        rec = load_record(path)
    except (OSError, ValueError):
        return None
    results = ("finished", "collapsed", "diverged")
    same = (_job_key(rec.get("overrides", [])) == _job_key(overrides)
            and _config_key(rec.get("config") or {}) == _config_key(OmegaConf.to_container(cfg, resolve=True)))
    return rec if rec.get("status") in results and same else None


def _config_key(config: dict) -> dict:
    """The resolved config without the keys that do not change a job's result (the study block only
    says how the report reads the sweep)."""
    out = {k: v for k, v in config.items() if k not in ("logger", "skip_finished", "resume", "study")}
    out["trainer"] = {k: v for k, v in (out.get("trainer") or {}).items() if k != "enable_progress_bar"}
    return out


# overrides that change how a job is shown or kept, not what it computes (also conf/config.yaml's
# hydra.job.config.override_dirname.exclude_keys, which names the job folders)
BOOKKEEPING = ("hydra.", "logger", "trainer.enable_progress_bar", "resume", "skip_finished")


def _job_overrides(overrides: list[str]) -> list[str]:
    """The overrides that define a job, in command-line order."""
    return [o for o in overrides if not o.lstrip("+~").startswith(BOOKKEEPING)]


def _job_key(overrides: list[str]) -> list[str]:
    return sorted(_job_overrides(overrides))


def tag_sweep_job(cfg: DictConfig, sweep_dir: str, overrides: list[str]) -> None:
    """One W&B group per sweep (the study's name and variant, else the sweep folder) and one tag per
    swept value, so the dashboard's grouping and parallel-coordinates views work without set-up."""
    study = cfg.get("study")
    if cfg.logger.group is None:
        if study is not None:
            cfg.logger.group = f"{study.name}-{study.variant}"
        else:
            parts = Path(sweep_dir).parts
            cfg.logger.group = "_".join(parts[-2:]) if len(parts) > 1 else parts[-1]
    tags = list(cfg.logger.tags)
    if study is not None:
        tags += [str(study.name), str(study.variant)]
    tags += [o.lstrip("+~")[:64] for o in _job_overrides(overrides) if not o.lstrip("+~").startswith("experiment=")]
    cfg.logger.tags = list(dict.fromkeys(tags))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        validate(cfg)
    except ConfigError as err:
        print(f"ssl-bench: config error: {err}", file=sys.stderr)
        sys.exit(2)
    from ssl_bench.train import run
    from ssl_bench.ui import print_run_summary

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:
        done = finished_record(hc.runtime.output_dir, overrides, cfg) if cfg.skip_finished else None
        if done is not None:   # a re-run of the same sweep: this job's result is already there
            print(f"ssl-bench: skipping {hc.runtime.output_dir}: already {done['status']} (skip_finished=false reruns it)")
            return done.get("final", {}).get("knn_acc")
        tag_sweep_job(cfg, hc.sweep.dir, overrides)
    from ssl_bench.data.images import CorruptImage, DatasetMissing

    try:
        record = run(cfg, hc.runtime.output_dir, overrides, _run_name(cfg, overrides))
    except Exception as err:
        if multirun:   # the record says "failed"; the rest of the sweep goes on
            import traceback

            traceback.print_exc()
            return None
        if isinstance(err, (DatasetMissing, CorruptImage)):   # actionable as one line, no traceback
            print(f"ssl-bench: data error: {err}", file=sys.stderr)
            sys.exit(2)
        raise
    print_run_summary(record, hc.runtime.output_dir)
    return record["final"].get("knn_acc")


if __name__ == "__main__":
    main()
