"""``ssl-bench``: the Hydra pretraining app (``ssl-bench --help``, ``ssl-bench --cfg job``).

``main`` is the console entry point around Hydra: bad input of any kind (a config key or value, a
dataset, the run folder) ends with one line ``ssl-bench: <kind>: <message>`` and exit code 2; a run
ended by SIGTERM or SIGINT exits with 128 + the signal number after recording ``interrupted``;
anything else keeps its traceback (exit code 1).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ssl_bench.cli import PATH_KEYS, fail, guarded, quote_paths, swept_keys
from ssl_bench.config import check_resources, config_dir, validate
from ssl_bench.runfolder import BOOKKEEPING, job_overrides

PROG = "ssl-bench"
SWEPT_ENV = "SSL_BENCH_SWEPT"  # keys swept on the command line, for the job folder names


def _run_name(cfg: DictConfig, overrides: list[str]) -> str:
    if cfg.name:
        return str(cfg.name)
    shown = job_overrides(overrides)
    return "-".join([cfg.method.name, *shown])[:120] if shown else str(cfg.method.name)


def _swept() -> set[str]:
    """Keys swept by this multirun: the experiment's ``hydra.sweeper.params`` and the command line's
    ``key=a,b`` / ``range()`` / ``choice()`` / ``glob()`` overrides (noted by ``main``)."""
    keys = {k for k in os.environ.get(SWEPT_ENV, "").split(",") if k}
    if HydraConfig.initialized():
        params = HydraConfig.get().sweeper.get("params") or {}
        keys |= {str(k).lstrip("+~") for k in params}
    return keys


def job_dirname(overrides: list[str], limit: int = 100) -> str:
    """A sweep job's folder name from its overrides (not from its position in the grid, so that a
    re-run finds it after the grid changed): the swept keys first, then the job's other overrides, each
    group sorted, bookkeeping overrides left out; cut at ``limit`` characters plus a short hash of the
    whole name when longer (still one name per job)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([str(o) for o in overrides or []])
    swept = _swept()
    pairs = [
        (o.key_or_group.lstrip("+~"), o.get_value_element_as_str())
        for o in parsed
        if not o.key_or_group.lstrip("+~").startswith((*BOOKKEEPING, "experiment"))
    ]
    pairs.sort(key=lambda kv: (kv[0] not in swept, kv[0]))
    text = ",".join(f"{k}={v}" for k, v in pairs)
    if not text:
        return "default"
    if len(text) <= limit:
        return text
    import hashlib

    return f"{text[:limit]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


if not OmegaConf.has_resolver("ssl_bench.dirname"):
    OmegaConf.register_new_resolver("ssl_bench.dirname", job_dirname)


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
    tags += [o.lstrip("+~")[:64] for o in job_overrides(overrides) if not o.lstrip("+~").startswith("experiment=")]
    cfg.logger.tags = list(dict.fromkeys(tags))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _app(cfg: DictConfig) -> float | None:
    from ssl_bench.errors import UserError

    try:
        return _job(cfg)
    except UserError as err:  # one line, exit 2 (raised here, Hydra would add its own lines)
        print(f"{PROG}: {err.kind}: {err}", file=sys.stderr)
        sys.exit(2)


def _job(cfg: DictConfig) -> float | None:
    validate(cfg)
    check_resources(cfg)
    from ssl_bench.errors import UserError
    from ssl_bench.tracking.lifecycle import Interrupted, end_worker_process
    from ssl_bench.train import OtherRankFailed, execute
    from ssl_bench.ui import print_run_summary

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    out_dir = hc.runtime.output_dir
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:
        tag_sweep_job(cfg, hc.sweep.dir, overrides)
    from ssl_bench.distributed import detect

    primary = detect(cfg).primary  # other ranks of a torchrun / srun job stay quiet
    try:
        record, action = execute(cfg, out_dir, overrides, _run_name(cfg, overrides), sweep_job=multirun)
    except OtherRankFailed:
        sys.exit(2)  # rank 0 says why
    except Interrupted as err:
        end_worker_process(err)  # a joblib worker: gone, so that the launcher can stop
        raise
    except UserError as err:
        if not multirun:
            raise
        print(f"{PROG}: {out_dir}: {err.kind}: {err}", file=sys.stderr)  # this job only; the sweep goes on
        return None
    except Exception:
        if not multirun:
            raise
        import traceback

        traceback.print_exc()  # the record says "failed"; the rest of the sweep goes on
        return None
    if not primary:
        return (record.get("final") or {}).get("knn_acc")
    if action == "skip":
        if multirun:  # a re-run of the same sweep: this job's result is already there
            print(f"{PROG}: skipping {out_dir}: already {record.get('status')} (skip_finished=false reruns it)")
            return (record.get("final") or {}).get("knn_acc")
        print(
            f"{PROG}: {out_dir} already holds this run, {record.get('status')}: nothing to resume "
            "(overwrite=true starts over)"
        )
    print_run_summary(record, out_dir)
    return (record.get("final") or {}).get("knn_acc")


def main() -> None:
    """Console entry point (see the module docstring)."""
    argv = quote_paths(sys.argv[1:], PATH_KEYS)
    sys.argv[1:] = argv
    if "-m" in argv or "--multirun" in argv:
        os.environ[SWEPT_ENV] = ",".join(sorted(swept_keys(argv)))
    code = guarded(PROG, _app)
    if code:
        fail(code)


if __name__ == "__main__":
    main()
