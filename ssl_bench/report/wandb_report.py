"""W&B side of a report: log a study or sweep report as a ``report`` run in the sweep's group, and
read a group's runs back as records (``wandb://ENTITY/PROJECT/GROUP``, online only). The table is
the tidy one of the CSV (:func:`ssl_bench.report.render.tidy`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_bench.report.block import StudyError
from ssl_bench.report.build import StudyReport, SweepReport, Table
from ssl_bench.report.render import tidy
from ssl_bench.report.render_json import sweep_json, verdicts_json
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


def log_report(
    report: Table, records: list[dict[str, Any]], out_dir: str | Path, png: str | Path | None = None
) -> dict[str, Any]:
    """Log the report's table, figure and verdicts (study) or best cell (sweep) as a W&B run
    (``job_type="report"``) in the sweep's group; offline without credentials, files under
    ``out_dir``. The run is always finished. Returns ``{"id", "mode", "dir", "url"}``."""
    import wandb

    target = wandb_target(records)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(report, StudyReport) and report.study is not None:
        study = report.study
        name, tags, heading = study.name, ["report", study.name], study.heading
        summary = verdicts_json(report)
        config = {"study": study.block, "source": report.source, "reference": summary["reference"]}
        values: dict[str, Any] = {
            "study": study.name,
            "verdicts/holds": summary["holds"],
            "verdicts/does_not_hold": summary["does_not_hold"],
            "verdicts/inconclusive": summary["inconclusive"],
            "verdicts/n_a": summary["n/a"],
            **{
                f"verdict/{i + 1}": {
                    "text": v.text,
                    "kind": v.kind,
                    "outcome": v.outcome,
                    "detail": v.detail,
                    "reason": v.reason,
                    "p_value": v.p_value,
                }
                for i, v in enumerate(report.verdicts)
            },
        }
        prefix = "study"
    else:
        assert isinstance(report, SweepReport)
        name, tags, heading = "sweep", ["report", "sweep"], f"{report.short} by {', '.join(report.keys) or 'seed'}"
        summary = sweep_json(report)
        config = {
            "source": report.source,
            "metric": report.metric,
            "keys": report.keys,
            "rows": list(report.row_keys),
            "columns": list(report.column_keys),
        }
        values = {"best": summary["best"], "better_than": [b["cell"] for b in summary["better_than"]]}
        prefix = "sweep"
    run = wandb.init(
        project=target["project"],
        entity=target["entity"],
        group=target["group"],
        job_type="report",
        name=f"report-{name}",
        dir=str(out),
        mode=resolve_mode("auto"),
        tags=tags,
        config=config,
        settings=run_settings(),
    )
    exit_code = 1
    try:
        columns, data = tidy(report)
        payload: dict[str, Any] = {f"{prefix}/table": wandb.Table(columns=columns, data=data, allow_mixed_types=True)}
        if png is not None and Path(png).is_file():
            payload[f"{prefix}/plot"] = wandb.Image(str(png), caption=heading)
        run.log(payload)
        run.summary.update(values)
        offline = run.settings.mode == "offline" or bool(getattr(run.settings, "_offline", False))
        info = {
            "id": run.id,
            "mode": "offline" if offline else run.settings.mode,
            "dir": str(Path(run.dir).parent),
            "url": None if offline else run.url,
        }
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)
    return info


def fetch_group(address: str) -> list[tuple[dict[str, Any], str]]:
    """The runs of ``wandb://ENTITY/PROJECT/GROUP`` as ``(record, run name)`` pairs: config, status
    and ``final/*`` summary values (report runs left out). Needs credentials and a network."""
    parts = address[len(SCHEME) :].strip("/").split("/")
    if not address.startswith(SCHEME) or len(parts) != 3 or not all(parts):
        raise StudyError(f"expected {SCHEME}ENTITY/PROJECT/GROUP, got {address}")
    entity, project, group = parts
    if resolve_mode("auto") != "online" or not has_credentials():
        raise StudyError(
            f"cannot read {address}: W&B is offline here (no credentials or WANDB_MODE set); "
            "report the sweep folder instead"
        )
    import wandb

    try:
        runs = list(wandb.Api(timeout=30).runs(f"{entity}/{project}", filters={"group": group}))
    except Exception as err:  # network, auth, unknown project: all end the command the same way
        first = (str(err).strip().splitlines() or [""])[0]
        raise StudyError(f"cannot read {address}: {type(err).__name__}: {first}") from err
    records = []
    for run in runs:
        if getattr(run, "job_type", None) == "report":
            continue
        config = dict(run.config)
        summary = dict(run.summary)
        status = summary.get("status") or {"crashed": "failed", "killed": "failed"}.get(run.state, run.state)
        records.append(
            (
                {
                    "name": run.name,
                    "status": status,
                    "seed": config.get("seed"),
                    "config": config,
                    "final": {k.split("/", 1)[1]: v for k, v in summary.items() if k.startswith("final/")},
                    "wandb": {"id": run.id, "project": project, "entity": entity, "group": group, "url": run.url},
                    "error": None,
                },
                run.name,
            )
        )
    if not records:
        raise StudyError(f"no runs in {address}")
    return records
