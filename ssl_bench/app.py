"""``ssl-bench``: the Hydra pretraining app (``ssl-bench --help``, ``ssl-bench --cfg job``)."""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ssl_bench.config import ConfigError, config_dir, validate


def _run_name(cfg: DictConfig, overrides: list[str]) -> str:
    if cfg.name:
        return str(cfg.name)
    shown = [o for o in overrides if not o.startswith(("hydra.", "logger.", "trainer.enable_progress_bar", "resume="))]
    return "-".join([cfg.method.name, *shown])[:120] if shown else str(cfg.method.name)


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
    if multirun and cfg.logger.group is None:
        from pathlib import Path

        cfg.logger.group = Path(hc.sweep.dir).name
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
