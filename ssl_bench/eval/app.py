"""``ssl-bench-eval``: offline evaluation of a pretrained image backbone (``ssl-bench-eval --help``).

    ssl-bench-eval source=runs/2026-11-27/10-00-00_simclr            # a run folder (or its record.json)
    ssl-bench-eval source=path/to/last.ckpt linear.epochs=200 knn.k=20

Steps: load the checkpoint (the method rebuilt from the config saved in it), freeze the backbone,
extract features once for the labelled training split and the evaluation split (cached under
``<run dir>/features/``), fit a linear classifier on them (top-1 / top-5) and score a weighted kNN.
The outcome is a run record (``job_type: eval``) in ``<run dir>/eval/<timestamp>/`` and a W&B run in
the pretraining run's group. The backbone is exported next to the run's checkpoints
(``backbone.pt`` + ``backbone.json``, loadable with timm / torch alone) if it is not there yet.

Input errors (missing source, no checkpoint, unknown keys, a masked-LM run) end with one line,
``ssl-bench-eval: error: ...``, and exit code 2.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ssl_bench.config import ConfigError, Logger, check_node, choice, config_dir, num, unknown_key
from ssl_bench.tracking.record import RECORD_FILE, RunRecord, load_record

log = logging.getLogger("ssl_bench")

PROG = "ssl-bench-eval"
CONFIG_NAME = "eval_app"
FEATURES_DIR = "features"
EVAL_DIR = "eval"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
CACHE_VERSION = 1
LOADER_KEYS = ("batch_size", "eval_batch_size", "num_workers", "pin_memory")   # do not change features


class EvalError(ValueError):
    """An input that cannot be evaluated; the message is meant for the user as-is (one line)."""


# --- the source: a run folder, its record.json, or a checkpoint --------------------------------------
@dataclass(frozen=True)
class Source:
    checkpoint: Path
    run_dir: Path | None = None     # the pretraining run folder (None: a checkpoint outside one)
    record: Path | None = None      # its record.json, when there is one
    is_final: bool = False          # the run's own last checkpoint (its backbone export belongs to the run)

    @property
    def home(self) -> Path:
        """Where the feature cache lives: the run folder, else the checkpoint's folder."""
        return self.run_dir or self.checkpoint.parent


def _run_checkpoint(run_dir: Path, record: Path | None) -> Path | None:
    """The run's final checkpoint: the one its record names, else ``checkpoints/last.ckpt``."""
    if record is not None:
        try:
            named = load_record(record).get("checkpoint")
        except (OSError, ValueError):
            named = None
        if named and Path(named).is_file():
            return Path(named).resolve()
    last = run_dir / LAST_CHECKPOINT
    return last.resolve() if last.is_file() else None


def resolve_source(value: Any) -> Source:
    """``source`` -> checkpoint, run folder and record; ``EvalError`` when there is nothing to load."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise EvalError("source: missing; give a pretraining run folder, its record.json or a .ckpt "
                        "(ssl-bench-eval source=runs/<date>/<time>_<method>)")
    path = Path(str(value)).expanduser().resolve()
    if not path.exists():
        raise EvalError(f"source={value}: no such file or folder")
    if path.is_dir() or path.name == RECORD_FILE:
        run_dir = path if path.is_dir() else path.parent
        record = run_dir / RECORD_FILE
        record_path = record if record.is_file() else None
        ckpt = _run_checkpoint(run_dir, record_path)
        if ckpt is None:
            what = "a pretraining run folder" if record_path else "not an ssl-bench run folder (no record.json)"
            raise EvalError(f"source={value}: no checkpoint in {run_dir} ({what}; {LAST_CHECKPOINT} is missing: "
                            "pretrain with trainer.checkpoint=true, or pass a .ckpt)")
        return Source(ckpt, run_dir, record_path, is_final=True)
    if path.suffix != ".ckpt":
        raise EvalError(f"source={value}: expected a run folder, its {RECORD_FILE}, or a .ckpt file")
    parent = path.parent.parent if path.parent.name == "checkpoints" else None
    if parent is not None and (parent / RECORD_FILE).is_file():
        record = parent / RECORD_FILE
        return Source(path, parent, record, is_final=_run_checkpoint(parent, record) == path)
    return Source(path)


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
    logger: Logger = field(default_factory=Logger)   # the pretraining app's logger group and schema


def validate(cfg: DictConfig) -> Source:
    """Check the composed eval config (keys, types, ranges, source); returns the resolved source."""
    if OmegaConf.is_missing(cfg, "source"):
        resolve_source(None)
    try:
        check_node(cfg, EvalAppCfg)
    except ConfigError as err:
        raise EvalError(str(err)) from None
    if cfg.data is not None and not isinstance(cfg.data, DictConfig):
        raise EvalError(f"data={cfg.data!r}: expected null or overrides of the pretraining data config "
                        "(+data.KEY=VALUE)")
    if not (cfg.device in ("auto", "cpu") or str(cfg.device).startswith("cuda")):
        raise EvalError(f"device={cfg.device!r} is not allowed; allowed: auto, cpu, cuda, cuda:N")
    source = resolve_source(cfg.source)
    if cfg.data is not None and source.record is not None:   # check data overrides before any work
        pretrain_data = (load_record(source.record).get("config") or {}).get("data")
        if isinstance(pretrain_data, dict):
            data_config(OmegaConf.create(pretrain_data), cfg.data)
    return source


def _composition_error(err: Exception) -> str:
    """Hydra's composition / override-parse errors as one line (unknown keys named as such)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and not ln.startswith("See https")]
    first = lines[0] if lines else type(err).__name__
    if first.startswith("Could not override '") and not first.startswith("Could not override 'data."):
        key = first.split("'")[1]
        head, _, rest = key.partition(".")
        schemas = {f.name: f.default_factory for f in fields(EvalAppCfg)}
        if head not in schemas:
            return unknown_key(head, schemas)
        if is_dataclass(schemas[head]) and rest:
            return unknown_key(rest, [f.name for f in fields(schemas[head])], head)
    return " ".join(lines)


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
        raise EvalError(_composition_error(err)) from None
    validate(cfg)


# --- the evaluation -------------------------------------------------------------------------------------
def data_config(pretrain_data: DictConfig, overrides: DictConfig | None) -> DictConfig:
    """The pretraining run's data config with ``data`` overrides on top. A different ``data.name``
    starts from that dataset's defaults instead (transfer evaluation)."""
    from ssl_bench.config import DATA, TextData

    if not overrides:
        return pretrain_data
    name = overrides.get("name", pretrain_data.get("name"))
    if name not in DATA:
        raise EvalError(f"data.name={name!r} is not allowed; allowed: {', '.join(DATA)}")
    if DATA[name] is TextData:
        raise EvalError(f"data.name={name!r} is text; ssl-bench-eval evaluates image backbones on image data")
    try:
        typed = check_node(overrides, DATA[name], "data")   # keys, types and ranges of the overrides
    except ConfigError as err:
        raise EvalError(f"{err} (data.name={name})") from None
    if name != pretrain_data.get("name"):
        return OmegaConf.create(OmegaConf.to_container(typed, resolve=True))
    merged, values = _plain(pretrain_data), _plain(typed)
    merged.update({str(k): values[str(k)] for k in overrides})
    return OmegaConf.create(merged)


def feature_key(source: Source, data: DictConfig, split: str) -> str:
    """Cache key: the checkpoint file (path, size, mtime), the data config (minus loader settings)
    and the evaluation split."""
    from ssl_bench.eval.export import checkpoint_stamp

    content = {k: v for k, v in OmegaConf.to_container(data, resolve=True).items() if k not in LOADER_KEYS}
    blob = json.dumps({"version": CACHE_VERSION, "checkpoint": checkpoint_stamp(source.checkpoint),
                       "data": content, "split": split}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_checkpoint(source: Source) -> tuple[dict[str, Any], DictConfig]:
    """The checkpoint (tensors and plain containers only) and the pretraining config saved in it."""
    import torch

    try:
        ckpt = torch.load(source.checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:   # a truncated or foreign file: say which, in one line
        raise EvalError(f"source: cannot read checkpoint {source.checkpoint}: {str(err).splitlines()[0]}") from None
    cfg = (ckpt.get("hyper_parameters") or {}).get("cfg") if isinstance(ckpt, dict) else None
    if not isinstance(cfg, dict) or "method" not in cfg:
        raise EvalError(f"source: {source.checkpoint} is not an ssl-bench checkpoint "
                        "(no config in its hyperparameters)")
    return ckpt, OmegaConf.create(cfg)


def build_model(ckpt: dict[str, Any], pcfg: DictConfig) -> Any:
    """The pretraining method rebuilt from its config, weights loaded, frozen (eval mode, no grad)."""
    from ssl_bench.methods import METHODS, SSLMethod

    name = pcfg.method.name
    cls = METHODS.get(name)
    if cls is None or not issubclass(cls, SSLMethod):
        kind = "a masked-LM run" if name == "mlm" else f"method={name!r}"
        raise EvalError(f"source is {kind}: ssl-bench-eval evaluates image methods "
                        f"({', '.join(n for n, c in METHODS.items() if issubclass(c, SSLMethod))}); "
                        "masked LMs report held-out perplexity in their own record")
    pcfg = pcfg.copy()
    pcfg.backbone.pretrained = False          # the checkpoint has the weights: never download any
    model = cls(pcfg, int(ckpt["hyper_parameters"]["num_classes"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval().requires_grad_(False)
    return model


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"))


def _tracked(loader: Iterable[Any], progress: Any, description: str) -> Iterator[Any]:
    task = progress.add_task(description, total=len(loader), info="")  # type: ignore[arg-type]
    for batch in loader:
        yield batch
        progress.advance(task)


def extract_features(model: Any, cfg: DictConfig, data: DictConfig, device: Any) -> dict[str, Any]:
    """Frozen-backbone features of the labelled training split and of ``cfg.split``, on the CPU."""
    from ssl_bench.data.datamodule import build_datamodule
    from ssl_bench.eval.frozen import extract

    dm = build_datamodule(data)
    try:
        train_loader, eval_loader = dm.eval_loaders(cfg.split)
    except KeyError:
        raise EvalError(f"split={cfg.split!r}: data.name={data.name} has no such split") from None
    model.to(device)
    with _progress() as progress:
        train_x, train_y = extract(model, _tracked(train_loader, progress, "features: train"), device)
        eval_x, eval_y = extract(model, _tracked(eval_loader, progress, f"features: {cfg.split}"), device)
    return {"train_x": train_x.cpu(), "train_y": train_y.cpu(), "eval_x": eval_x.cpu(), "eval_y": eval_y.cpu(),
            "num_classes": int(dm.num_classes), "split": str(cfg.split)}


def cached_features(path: Path) -> dict[str, Any] | None:
    import torch

    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:   # a partial or stale file: extract again
        log.warning("features: ignoring unreadable cache %s (%s)", path, err)
        return None


def save_features(path: Path, feats: dict[str, Any]) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(feats, tmp)
    tmp.replace(path)


class EvalRecord(RunRecord):
    """The record of an evaluation: the run-record schema with ``job_type: eval`` and ``pretrain``
    (what was evaluated); ``final`` holds ``linear_top1``, ``linear_top5`` and ``knn_acc``."""

    def __init__(self, out_dir: str | Path, cfg: DictConfig, overrides: list[str], name: str, method: str,
                 pretrain: dict[str, Any], started: float | None = None):
        super().__init__(out_dir, OmegaConf.create({"method": {"name": method}, "seed": cfg.seed}), overrides, name)
        if started is not None:   # wall_s counts from this perf_counter() value (checkpoint loading included)
            self._t0 = started
        data = dict(self.data)
        data["config"] = OmegaConf.to_container(cfg, resolve=True)
        self.data = {"schema_version": data.pop("schema_version"), "job_type": "eval", **data,
                     "pretrain": pretrain, "features": None}


def _logger_cfg(cfg: DictConfig, pcfg: DictConfig, previous: dict[str, Any] | None) -> DictConfig:
    """The eval run's logger settings: project, entity and group default to the pretraining run's."""
    info = (previous or {}).get("wandb") or {}
    plog = ((previous or {}).get("config") or {}).get("logger") or OmegaConf.to_container(pcfg.get("logger") or {})
    lc = cfg.logger
    return OmegaConf.create({
        "name": lc.name, "mode": lc.mode, "job_type": lc.get("job_type") or "eval", "tags": list(lc.tags),
        "notes": lc.get("notes"),
        "project": lc.project or info.get("project") or plog.get("project") or "ssl-bench",
        "entity": lc.get("entity") or plog.get("entity"),
        "group": lc.group or info.get("group") or plog.get("group"),
    })


def _plain(node: Any) -> dict[str, Any]:
    out = OmegaConf.to_container(node, resolve=True)
    assert isinstance(out, dict)
    return out  # type: ignore[return-value]


def _device(cfg: DictConfig) -> Any:
    import torch

    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def run_eval(cfg: DictConfig, source: Source, out_dir: str | Path, overrides: list[str]) -> dict[str, Any]:
    """Evaluate ``source`` as configured by a validated eval config; returns the eval record.

    ``EvalError`` for an input that cannot be evaluated (a masked-LM or foreign checkpoint, bad data
    overrides: before any record is written; a split the dataset lacks: recorded as ``failed``).
    Other errors are recorded as ``failed`` and re-raised. The W&B run is always closed."""
    import pytorch_lightning as pl
    import torch

    from ssl_bench.eval.export import BACKBONE_FILE, export_backbone, export_is_current
    from ssl_bench.eval.knn import knn_accuracy
    from ssl_bench.eval.linear import fit_linear_probe
    from ssl_bench.tracking import wandb as wb

    out_dir = Path(out_dir)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    t0 = time.perf_counter()
    previous = load_record(source.record) if source.record else None
    ckpt, pcfg = load_checkpoint(source)
    model = build_model(ckpt, pcfg)
    del ckpt
    data = data_config(pcfg.data, cfg.data)
    timings: dict[str, Any] = {"load_s": round(time.perf_counter() - t0, 3)}
    pname = (previous or {}).get("name") or (source.run_dir.name if source.run_dir else source.checkpoint.stem)
    pretrain = {
        "run_dir": None if source.run_dir is None else str(source.run_dir),
        "record": None if source.record is None else str(source.record),
        "checkpoint": str(source.checkpoint),
        "wandb_id": ((previous or {}).get("wandb") or {}).get("id"),
        "name": pname,
        "method": str(pcfg.method.name),
        "backbone": str(pcfg.backbone.name),
    }
    shown = OmegaConf.create({**_plain(cfg), "data": _plain(data)})   # the record says what was evaluated
    name = f"eval-{pname}"
    record = EvalRecord(out_dir, shown, overrides, name, str(pcfg.method.name), pretrain, started=t0)
    record.save()
    logger: Any = False
    status, error = "failed", None
    try:
        lcfg = _logger_cfg(cfg, pcfg, previous)
        tracked = OmegaConf.create({**_plain(shown), "logger": _plain(lcfg), "pretrain": pretrain,
                                    "method": _plain(pcfg.method), "backbone": _plain(pcfg.backbone)})
        logger = wb.build_logger(tracked, str(out_dir), name)
        record["wandb"] = wb.wandb_info(logger)
        device = _device(cfg)

        # backbone export: into the run folder for the run's own checkpoint, else next to this record
        t = time.perf_counter()
        target = source.run_dir if source.run_dir is not None and source.is_final else out_dir
        if not export_is_current(target, source.checkpoint):
            export_backbone(model, target, checkpoint=source.checkpoint)
            log.info("backbone: exported to %s", target / BACKBONE_FILE)
        record["export"] = str(target / BACKBONE_FILE)
        timings["export_s"] = round(time.perf_counter() - t, 3)

        # features: once per checkpoint file x data config x split
        t = time.perf_counter()
        cache = source.home / FEATURES_DIR / f"{feature_key(source, data, cfg.split)}.pt"
        feats = cached_features(cache) if cfg.feature_cache else None
        hit = feats is not None
        if feats is None:
            feats = extract_features(model, cfg, data, device)
            if cfg.feature_cache:
                save_features(cache, feats)
        timings.update(features_s=round(time.perf_counter() - t, 3), features_cached=hit)
        record["features"] = {"path": str(cache) if cfg.feature_cache else None, "cached": hit,
                              "train": int(feats["train_x"].shape[0]), "eval": int(feats["eval_x"].shape[0]),
                              "dim": int(feats["train_x"].shape[1])}
        log.info("features: %s (%d train, %d %s, %d-d)%s", "cached" if hit else "extracted",
                 feats["train_x"].shape[0], feats["eval_x"].shape[0], cfg.split, feats["train_x"].shape[1],
                 f" {cache}" if cfg.feature_cache else "")
        train_x, train_y, eval_x, eval_y = (feats[k].to(device) for k in ("train_x", "train_y", "eval_x", "eval_y"))
        num_classes = int(feats["num_classes"])

        # linear classifier on the frozen features, then the weighted kNN
        t = time.perf_counter()
        lin = cfg.linear
        pl.seed_everything(cfg.seed, verbose=False)   # the probe's result depends on features and seed only
        with _progress() as progress:
            task = progress.add_task("linear probe", total=lin.epochs, info="")

            def on_epoch(epoch: int, loss: float) -> None:
                progress.update(task, advance=1, info=f"loss {loss:.4f}")
                if logger is not False:
                    logger.log_metrics({"linear/train_loss": loss, "linear/epoch": epoch}, step=epoch)

            linear = fit_linear_probe(train_x, train_y, eval_x, eval_y, num_classes, epochs=lin.epochs, lr=lin.lr,
                                      weight_decay=lin.weight_decay, batch_size=lin.batch_size, seed=cfg.seed,
                                      optimizer=lin.optimizer, on_epoch=on_epoch)
        timings["linear_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        knn = knn_accuracy(eval_x, eval_y, train_x, train_y, num_classes, cfg.knn.k, cfg.knn.t)
        timings["knn_s"] = round(time.perf_counter() - t, 3)
        record["final"] = {"linear_top1": linear["top1"], "linear_top5": linear["top5"], "knn_acc": knn}
        status = "finished"
    except BaseException as err:
        status, error = "failed", err
        raise
    finally:
        record.finish(status, error, **timings)
        summary = {f"final/{k}": v for k, v in record["final"].items()}
        summary.update({"status": status, "pretrain_id": pretrain["wandb_id"],
                        **{f"timings/{k}": v for k, v in record["timings"].items()}})
        try:
            if logger is not False and type(logger).__name__ != "WandbLogger":   # csv: the numbers only
                logger.log_metrics({k: float(v) for k, v in summary.items() if isinstance(v, (int, float))})
                logger.save()
            wb.finish(logger, summary, exit_code=0 if status == "finished" else 1)
        except Exception as err:  # closing tracking must never hide the evaluation's own outcome
            log.warning("could not close the metric logger cleanly: %s", err)
    return record.data


def print_summary(record: dict[str, Any], out_dir: str | Path) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    final, pre, tm = record["final"], record["pretrain"], record["timings"]
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("pretraining run", f"{pre['name']} ({pre['method']}, {pre['backbone']})")
    t.add_row("checkpoint", pre["checkpoint"])
    split = record["config"]["split"]
    t.add_row(f"linear ({split})", f"top-1 {100 * final['linear_top1']:.1f}%   top-5 {100 * final['linear_top5']:.1f}%")
    t.add_row(f"kNN ({split})", f"{100 * final['knn_acc']:.1f}%")
    feats = record["features"]
    t.add_row("features", f"{'cached' if feats['cached'] else 'extracted'} in {tm['features_s']:.1f} s"
              + (f"  {feats['path']}" if feats["path"] else ""))
    t.add_row("time", f"{tm['wall_s']:.1f} s wall, linear probe {tm['linear_s']:.1f} s")
    t.add_row("record", str(Path(out_dir) / RECORD_FILE))
    t.add_row("backbone", str(record["export"]))
    wb = record.get("wandb")
    if wb:
        url = f"  {wb['url']}" if wb.get("url") else ""
        t.add_row("W&B", f"{wb['mode']} run {wb['id']}, group {wb['group']}{url}")
    console = Console()
    console.width = max(console.width, 100)
    console.print(Panel(t, title=f"ssl-bench-eval: {record['name']}", expand=False))


def _fail(err: EvalError) -> NoReturn:
    print(f"{PROG}: error: {err}", file=sys.stderr)
    sys.exit(2)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name=CONFIG_NAME)
def _app(cfg: DictConfig) -> float | None:
    try:
        source = validate(cfg)
    except EvalError as err:
        _fail(err)
    hc = HydraConfig.get()
    try:
        record = run_eval(cfg, source, hc.runtime.output_dir, list(hc.overrides.task))
    except EvalError as err:
        _fail(err)
    print_summary(record, hc.runtime.output_dir)
    return float(record["final"]["linear_top1"])


def main() -> None:
    """Console entry point: reject bad input in one line (exit code 2), then run the Hydra app."""
    try:
        precheck(sys.argv[1:])
    except EvalError as err:
        _fail(err)
    _app()


if __name__ == "__main__":
    main()
