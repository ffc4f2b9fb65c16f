"""W&B side of a study report: log it as a ``report`` run in the sweep's group, and read a group's
runs back as records (``wandb://ENTITY/PROJECT/GROUP``, online only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_bench.report.study import CSV_FIELDS, StudyError, StudyReport, show, verdicts_json
from ssl_bench.tracking.record import STATUSES
from ssl_bench.tracking.wandb import has_credentials, resolve_mode, run_settings

SCHEME = "wandb://"


def used_wandb(records: list[dict[str, Any]]) -> bool:
    """Whether the sweep's jobs logged to W&B (``logger.name == "wandb"``)."""
    return any(((r.get("config") or {}).get("logger") or {}).get("name") == "wandb" for r in records)


def wandb_target(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Project, entity and group of the sweep's W&B runs (from the records, then their configs)."""
    target: dict[str, Any] = {"project": None, "entity": None, "group": None}
    for rec in records:
        logged, logger = rec.get("wandb") or {}, (rec.get("config") or {}).get("logger") or {}
        for key, value in target.items():
            target[key] = value or logged.get(key) or logger.get(key)
    target["project"] = target["project"] or "ssl-bench"
    return target


def _table(report: StudyReport) -> tuple[list[str], list[list[Any]]]:
    """The tidy table (one line per cell), key values as text so that a column keeps one type."""
    study = report.study
    statuses = [s for s in STATUSES if s != "running"]
    columns = [*study.rows, *study.columns, *CSV_FIELDS, *statuses]
    data = []
    for row in report.rows:
        for col in report.columns:
            cell = report.cell(row, col)
            if not cell.jobs and cell.reference is None:
                continue
            data.append([*map(show, row), *map(show, col), cell.mean, cell.std, cell.n, len(cell.jobs), cell.runs,
                         cell.reference, cell.reference_metric, cell.source,
                         *[cell.counts.get(s, 0) for s in statuses]])
    return columns, data


def log_report(report: StudyReport, records: list[dict[str, Any]], out_dir: str | Path,
               png: str | Path | None = None) -> dict[str, Any]:
    """Log the study table, the figure and the verdicts as a W&B run (``job_type="report"``) in
    the sweep's group; offline without credentials, files under ``out_dir``. The run is always
    finished. Returns ``{"id", "mode", "dir", "url"}``."""
    import wandb

    target = wandb_target(records)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = report.study
    summary = verdicts_json(report)
    run = wandb.init(project=target["project"], entity=target["entity"], group=target["group"], job_type="report",
                     name=f"report-{study.name}", dir=str(out), mode=resolve_mode("auto"), tags=["report", study.name],
                     config={"study": study.block, "source": report.source, "reference": summary["reference"]},
                     settings=run_settings())
    exit_code = 1
    try:
        columns, data = _table(report)
        payload: dict[str, Any] = {"study/table": wandb.Table(columns=columns, data=data, allow_mixed_types=True)}
        if png is not None and Path(png).is_file():
            payload["study/plot"] = wandb.Image(str(png), caption=study.heading)
        run.log(payload)
        run.summary.update({
            "study": study.name, "verdicts/holds": summary["holds"],
            "verdicts/does_not_hold": summary["does_not_hold"], "verdicts/n_a": summary["n/a"],
            **{f"verdict/{i + 1}": {"text": v.text, "kind": v.kind, "outcome": v.outcome, "detail": v.detail}
               for i, v in enumerate(report.verdicts)},
        })
        offline = run.settings.mode == "offline" or bool(getattr(run.settings, "_offline", False))
        info = {"id": run.id, "mode": "offline" if offline else run.settings.mode, "dir": str(Path(run.dir).parent),
                "url": None if offline else run.url}
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)
    return info


def fetch_group(address: str) -> list[tuple[dict[str, Any], str]]:
    """The runs of ``wandb://ENTITY/PROJECT/GROUP`` as ``(record, run name)`` pairs: config, status
    and ``final/*`` summary values (report runs left out). Needs credentials and a network."""
    parts = address[len(SCHEME):].strip("/").split("/")
    if not address.startswith(SCHEME) or len(parts) != 3 or not all(parts):
        raise StudyError(f"expected {SCHEME}ENTITY/PROJECT/GROUP, got {address}")
    entity, project, group = parts
    if resolve_mode("auto") != "online" or not has_credentials():
        raise StudyError(f"cannot read {address}: W&B is offline here (no credentials or WANDB_MODE set); "
                         "report the sweep folder instead")
    import wandb

    try:
        runs = list(wandb.Api(timeout=30).runs(f"{entity}/{project}", filters={"group": group}))
    except Exception as err:   # network, auth, unknown project: all end the command the same way
        first = (str(err).strip().splitlines() or [""])[0]
        raise StudyError(f"cannot read {address}: {type(err).__name__}: {first}") from err
    records = []
    for run in runs:
        if getattr(run, "job_type", None) == "report":
            continue
        config = dict(run.config)
        summary = dict(run.summary)
        status = summary.get("status") or {"crashed": "failed", "killed": "failed"}.get(run.state, run.state)
        records.append(({
            "name": run.name, "status": status, "seed": config.get("seed"), "config": config,
            "final": {k.split("/", 1)[1]: v for k, v in summary.items() if k.startswith("final/")},
            "wandb": {"id": run.id, "project": project, "entity": entity, "group": group, "url": run.url},
            "error": None,
        }, run.name))
    if not records:
        raise StudyError(f"no runs in {address}")
    return records
