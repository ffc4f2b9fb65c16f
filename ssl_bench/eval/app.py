"""``ssl-bench-eval``: offline evaluation of a pretrained image backbone (``ssl-bench-eval --help``).

    ssl-bench-eval source=runs/2026-11-27/10-00-00_simclr            # a run folder (or its record.json)
    ssl-bench-eval source=path/to/last.ckpt linear.epochs=200 knn.k=20

The evaluation itself is ``ssl_bench.evaluate.run_eval``; this module is the command: its config schema,
the checks made before Hydra creates any folder, and the entry point. Input errors (missing source,
no checkpoint, a checkpoint that is not the record's, unknown keys, a masked-LM run) end with one line,
``ssl-bench-eval: error: ...``, and exit code 2; a signal ends it with 128 + the signal number.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ssl_bench.cli import PATH_KEYS, composition_message, fail, guarded, quote_paths
from ssl_bench.config import ConfigError, Logger, check_node, choice, config_dir, num
from ssl_bench.errors import UserError
from ssl_bench.eval.source import EvalError, Source, resolve_source
from ssl_bench.tracking.record import load_record

PROG = "ssl-bench-eval"
CONFIG_NAME = "eval_app"
EVAL_DIR = "eval"


def _eval_dir(source: Any) -> str:
    """``hydra.run.dir`` prefix: ``<run dir>/eval``, or ``runs/eval`` for a checkpoint outside a run
    folder (or a source that does not resolve: the app reports that before writing anything)."""
    try:
        run_dir = resolve_source(source).run_dir
    except EvalError:
        run_dir = None
    return str(run_dir / EVAL_DIR) if run_dir is not None else str(Path("runs") / EVAL_DIR)


OmegaConf.register_new_resolver("ssl_bench_eval_dir", _eval_dir, replace=True)


# --- config schema and validation ---------------------------------------------------------------------
@dataclass
class LinearCfg:
    epochs: int = num(100, lo=1)
    lr: float = num(0.1, lo=0, lo_open=True)
    weight_decay: float = num(1e-4, lo=0)
    batch_size: int = num(1024, lo=1)
    optimizer: str = choice("sgd", "sgd", "adamw")


@dataclass
class KnnCfg:
    k: int = num(200, lo=1)
    t: float = num(0.1, lo=0, lo_open=True)


@dataclass
class EvalAppCfg:
    source: Any = None
    split: str = "test"
    data: Any = None
    linear: LinearCfg = field(default_factory=LinearCfg)
    knn: KnnCfg = field(default_factory=KnnCfg)
    feature_cache: bool = True
    seed: int = 0
    device: str = "auto"
    num_threads: int = num(0, lo=0)
    logger: Logger = field(default_factory=Logger)  # the pretraining app's logger group and schema


def validate(cfg: DictConfig) -> Source:
    """Check the composed eval config (keys, types, ranges, source); returns the resolved source."""
    from ssl_bench.evaluate import data_config

    if OmegaConf.is_missing(cfg, "source"):
        resolve_source(None)
    try:
        check_node(cfg, EvalAppCfg)
    except ConfigError as err:
        raise EvalError(str(err)) from None
    if cfg.data is not None and not isinstance(cfg.data, DictConfig):
        raise EvalError(
            f"data={cfg.data!r}: expected null or overrides of the pretraining data config (+data.KEY=VALUE)"
        )
    if not (cfg.device in ("auto", "cpu") or str(cfg.device).startswith("cuda")):
        raise EvalError(f"device={cfg.device!r} is not allowed; allowed: auto, cpu, cuda, cuda:N")
    source = resolve_source(cfg.source)
    if cfg.data is not None and source.record is not None:  # check data overrides before any work
        pretrain_data = (load_record(source.record).get("config") or {}).get("data")
        if isinstance(pretrain_data, dict):
            data_config(OmegaConf.create(pretrain_data), cfg.data)
    return source


def precheck(argv: list[str]) -> None:
    """Compose and validate the command line before Hydra creates any output folder.

    Skipped when a Hydra flag is given (``--help``, ``--cfg``, ``-m`` ...): Hydra handles those, and
    each job of a multirun validates its own config."""
    if any(arg.startswith("-") for arg in argv):
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException as OmegaError

    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3", job_name="eval"):
            cfg = compose(CONFIG_NAME, overrides=list(argv))
    except (HydraException, OmegaError) as err:
        raise EvalError(composition_message(err, EvalAppCfg, argv)) from None
    validate(cfg)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name=CONFIG_NAME)
def _app(cfg: DictConfig) -> float | None:
    from ssl_bench.evaluate import run_eval
    from ssl_bench.ui import print_eval_summary

    try:
        source = validate(cfg)
        hc = HydraConfig.get()
        record = run_eval(cfg, source, hc.runtime.output_dir, list(hc.overrides.task))
    except UserError as err:  # one line, exit 2 (raised here, Hydra would add its own lines)
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    print_eval_summary(record, hc.runtime.output_dir)
    return float(record["final"]["linear_top1"])


def main() -> None:
    """Console entry point: reject bad input in one line (exit code 2), then run the Hydra app."""
    sys.argv[1:] = quote_paths(sys.argv[1:], PATH_KEYS)
    try:
        precheck(sys.argv[1:])
    except EvalError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        fail(2)
    code = guarded(PROG, _app, EvalAppCfg, error_kind="error")
    if code:
        fail(code)


if __name__ == "__main__":
    main()
