"""Report models: a study's table (cells, published numbers, verdicts) and any sweep's table (the
keys that vary across its jobs as columns, seeds aggregated, sorted by the metric, the best cell
and what it is significantly better than). Renderers and plots read these models only.

A sweep's keys come from the jobs' own overrides (``method.temperature=0.1``; a group choice such
as ``method=byol`` shows as ``method``), or, for records without overrides, from the resolved
configs. ``seed`` is the replicate axis (aggregated, never a column); bookkeeping keys
(``logger*``, ``hydra*``, ``trainer.enable_progress_bar``, ``resume``, ``skip_finished``, ``name``)
never count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssl_bench.report.block import Study, StudyError, study_of
from ssl_bench.report.cells import (
    METRIC_STATUSES,
    Cell,
    Job,
    Unreadable,
    init_summary,
    job_from_record,
    lower_is_better,
    mark_repeats,
    metric_scale,
    read_records,
    run_name,
    short_metric,
)
from ssl_bench.report.evidence import MIN_SEEDS
from ssl_bench.report.ranking import beaten, pairwise
from ssl_bench.report.reference import find_reference, load_reference
from ssl_bench.report.rules import Verdict, evaluate_rules
from ssl_bench.report.statistics import ALPHA, Summary
from ssl_bench.report.values import MISSING, config_value, nkey, normalize, order_keys, short_key, show

REPORT_DIR = "report"  # <sweep>/report/: where a report's files go
REPLICATE = "seed"
METRIC_HEADERS = {
    "knn_acc": "kNN %",
    "linear_acc": "linear %",
    "online_probe_acc": "online probe %",
    "masked_acc": "masked acc %",
    "ppl": "ppl",
    "z_std_ratio": "z_std x sqrt(d)",
    "rankme": "RankMe",
}
BOOKKEEPING = ("logger", "hydra", "trainer.enable_progress_bar", "resume", "skip_finished", "name", "study")


# --- keys of a sweep ------------------------------------------------------------------------------
def is_bookkeeping(key: str) -> bool:
    return any(key == b or key.startswith((f"{b}.", f"{b}/")) for b in BOOKKEEPING)


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """``["+method.temperature=0.1", "method=byol"]`` -> ``{"method.temperature": "0.1", "method": "byol"}``."""
    out: dict[str, str] = {}
    for o in overrides:
        text = str(o).strip().lstrip("+~")
        if "=" in text:
            key, value = text.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def key_value(job: Job, key: str) -> Any:
    """A job's value of a sweep key: its override, else its resolved config (a group: its name)."""
    overrides = parse_overrides(job.overrides)
    if key in overrides:
        return overrides[key]
    value = config_value(job.config, key.replace("/", "."))
    if isinstance(value, dict):
        return value.get("name", MISSING)
    return value


def _leaves(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def varying_keys(jobs: Sequence[Job]) -> list[str]:
    """The keys whose values differ across the jobs (seed and bookkeeping excluded), in command-line
    order; from the overrides when the jobs have any, else from the resolved configs."""
    if any(j.overrides for j in jobs):
        candidates = list(dict.fromkeys(k for j in jobs for k in parse_overrides(j.overrides)))
        values = {k: {normalize(key_value(j, k)) for j in jobs} for k in candidates}
    else:
        leaves = [_leaves(j.config) for j in jobs]
        candidates = list(dict.fromkeys(k for leaf in leaves for k in leaf))
        values = {k: {normalize(leaf.get(k, MISSING)) for leaf in leaves} for k in candidates}
    return [k for k in candidates if k != REPLICATE and not is_bookkeeping(k) and len(values[k]) > 1]


# --- shared table model ---------------------------------------------------------------------------
@dataclass
class Table:
    """Cells in rows x columns of the table keys, the jobs behind them and where they came from."""

    row_keys: tuple[str, ...]
    column_keys: tuple[str, ...]
    metric: str
    rows: list[tuple[Any, ...]]
    columns: list[tuple[Any, ...]]
    cells: dict[tuple[Any, Any], Cell]
    jobs: list[Job]
    source: str = ""
    unreadable: list[Unreadable] = field(default_factory=list)
    alpha: float = ALPHA

    def cell(self, row: tuple[Any, ...], column: tuple[Any, ...]) -> Cell:
        return self.cells[(nkey(row), nkey(column))]

    @property
    def scale(self) -> float:
        return metric_scale(self.metric)

    @property
    def short(self) -> str:
        return short_metric(self.metric)

    @property
    def init(self) -> Summary | None:
        """The random-init network's metric (each job's evaluation before training), per seed."""
        return init_summary(self.jobs, self.metric)

    @property
    def random_init(self) -> float | None:
        init = self.init
        return None if init is None else init.mean

    def row_label(self, row: tuple[Any, ...]) -> str:
        if len(row) == 1:
            return show(row[0])
        return ", ".join(f"{short_key(k, self.row_keys)}={show(v)}" for k, v in zip(self.row_keys, row))

    def column_label(self, column: tuple[Any, ...]) -> str:
        return " / ".join(show(v) for v in column)

    def cell_label(self, row: tuple[Any, ...], column: tuple[Any, ...]) -> str:
        keys = self.row_keys + self.column_keys
        return ", ".join(f"{short_key(k, keys)}={show(v)}" for k, v in zip(keys, row + column)) or "all jobs"

    @property
    def problems(self) -> list[Job]:
        """Jobs that did not end with a result: failed, diverged, still running."""
        return [j for j in self.jobs if j.status not in METRIC_STATUSES]

    @property
    def n_eval(self) -> list[int]:
        """The evaluation split sizes behind the binomial term (empty: no binomial term)."""
        return sorted({j.n_eval for j in self.jobs if j.n_eval and j.value is not None})

    @property
    def pooled(self) -> list[str]:
        """Keys outside the table that vary within a cell (the cell pools those configurations)."""
        keys: dict[str, None] = {}
        for c in self.cells.values():
            if len(c.jobs) > 1:
                keys.update(dict.fromkeys(k for k in varying_keys(c.jobs) if k not in self.row_keys + self.column_keys))
        return list(keys)


def _fill(
    table_keys: Sequence[str],
    jobs: Sequence[Job],
    rows: list[tuple[Any, ...]],
    columns: list[tuple[Any, ...]],
    nrow: int,
    metric: str,
    value: Any,
) -> dict[tuple[Any, Any], Cell]:
    cells = {(nkey(r), nkey(c)): Cell(row=r, column=c, metric=metric) for r in rows for c in columns}
    for job in jobs:
        vals = tuple(value(job, k) for k in table_keys)
        cells[(nkey(vals[:nrow]), nkey(vals[nrow:]))].jobs.append(job)
    return cells


# --- study report ---------------------------------------------------------------------------------
@dataclass
class StudyReport(Table):
    """The study's table (cells in row-major order), its verdicts and the published numbers."""

    study: Study | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    reference_path: Path | None = None
    ignored: int = 0  # records without this study's block
    better: dict[int, list[Cell]] = field(default_factory=dict)  # compare: true: id(cell) -> the cells it beats
    compared: int = 0  # compare: true: the ordered pairs tested (the Holm family)

    @property
    def reference_metrics(self) -> list[str]:
        return sorted({c.reference_metric for c in self.cells.values() if c.reference_metric})

    @property
    def sources(self) -> list[str]:
        return sorted({c.source for c in self.cells.values() if c.source})


def pretraining(records: Sequence[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
    """The records of pretraining runs (``ssl-bench-eval`` records have ``job_type: eval``)."""
    return [(r, n) for r, n in records if r.get("job_type", "pretrain") != "eval"]


def build_report(
    records: Sequence[tuple[dict[str, Any], str]],
    reference: str | Path | None = None,
    source: str = "",
    rules: str = "recorded",
    unreadable: Sequence[Unreadable] = (),
) -> StudyReport:
    """The study report of ``(record, run name)`` pairs. ``reference``: a reference CSV; None looks
    up ``experiments/<study>/reference.csv`` (a missing one leaves the paper column empty)."""
    records = pretraining(records)
    study = study_of([r for r, _ in records], rules)
    if study is None:
        raise StudyError("no record has a study block")
    mine = [(r, n) for r, n in records if ((r.get("config") or {}).get("study") or {}).get("name") == study.name]
    jobs = [job_from_record(r, n, study.metric) for r, n in mine]
    ref_path = Path(reference) if reference is not None else find_reference(study.name)
    ref_rows = load_reference(ref_path, study) if ref_path is not None else []
    if study.reference_metric:
        ref_rows = [r for r in ref_rows if r["metric"] == study.reference_metric]

    def value(job: Job, key: str) -> Any:
        return config_value(job.config, key)

    rows = order_keys([tuple(value(j, k) for k in study.rows) for j in jobs], [r["row"] for r in ref_rows])
    columns = order_keys([tuple(value(j, k) for k in study.columns) for j in jobs], [r["column"] for r in ref_rows])
    cells = _fill(study.keys, jobs, rows, columns, len(study.rows), study.metric, value)
    for ref in ref_rows:
        cell = cells.get((nkey(ref["row"]), nkey(ref["column"])))
        if cell is not None:
            cell.reference, cell.reference_metric, cell.source = ref["value"], ref["metric"], ref["source"]
    report = StudyReport(
        row_keys=study.rows,
        column_keys=study.columns,
        metric=study.metric,
        rows=rows,
        columns=columns,
        cells=cells,
        jobs=jobs,
        source=source,
        unreadable=list(unreadable),
        alpha=study.alpha,
        study=study,
        verdicts=evaluate_rules(study, jobs),
        reference_path=ref_path,
        ignored=len(records) - len(mine),
    )
    ordered = [cells[(nkey(r), nkey(c))] for r in rows for c in columns]
    mark_repeats(ordered, lambda cell: report.cell_label(cell.row, cell.column))
    if study.compare:
        label = lambda c: report.cell_label(c.row, c.column)  # noqa: E731
        adjusted = pairwise(ordered, label, study.metric, lower_is_better(study.metric), MIN_SEEDS, study.seeds)
        report.better, report.compared = beaten(ordered, adjusted, study.alpha), len(adjusted)
    return report


def load_study(root: str | Path, reference: str | Path | None = None) -> StudyReport | None:
    """The study report of a sweep folder; None when its records carry no study block."""
    root = Path(root)
    loaded, bad = read_records(root)
    if not loaded and not bad:
        raise FileNotFoundError(f"no record.json under {root}: is it a run or sweep folder of ssl-bench?")
    records = [(r, run_name(p, root)) for r, p in loaded]
    if study_of([r for r, _ in records]) is None:
        return None
    return build_report(records, reference=reference, source=str(root), unreadable=bad)


# --- any sweep ------------------------------------------------------------------------------------
def default_metric(records: Sequence[dict[str, Any]]) -> str:
    """``ppl`` when the jobs are masked-LM runs, else ``knn_acc``."""
    text = sum("ppl" in (r.get("final") or {}) or r.get("method") in ("mlm", "mlm_base") for r in records)
    return "ppl" if text * 2 > len(records) else "knn_acc"


@dataclass
class SweepReport(Table):
    """Any sweep: the keys that vary as columns, one cell per combination, seeds aggregated."""

    keys: list[str] = field(default_factory=list)  # every key that varies across the jobs
    lower_better: bool = False
    best: Cell | None = None
    vs_best: dict[int, float] = field(default_factory=dict)  # id(cell) -> Holm-adjusted p: the best is better

    @property
    def ordered_cells(self) -> list[Cell]:
        """Cells with jobs, best first (by the metric); cells without a number last."""
        cells = [c for c in self.cells.values() if c.jobs]
        sign = 1.0 if self.lower_better else -1.0
        return sorted(cells, key=lambda c: (c.mean is None, sign * (c.mean or 0.0)))

    def better_than(self) -> tuple[list[Cell], list[Cell]]:
        """(cells the best is significantly better than, the others it was compared with)."""
        sig, not_sig = [], []
        for cell in self.ordered_cells:
            if cell is self.best or cell.mean is None:
                continue
            p = self.vs_best.get(id(cell))
            (sig if p is not None and p < self.alpha else not_sig).append(cell)
        return sig, not_sig


def build_sweep(
    records: Sequence[tuple[dict[str, Any], str]],
    metric: str | None = None,
    rows: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    source: str = "",
    unreadable: Sequence[Unreadable] = (),
    alpha: float = ALPHA,
) -> SweepReport:
    """The report of a sweep without a study block (see the module docstring for the keys)."""
    records = pretraining(records)
    if not records:
        raise StudyError("no pretraining record to report")
    metric = metric or default_metric([r for r, _ in records])
    if not any(metric in (r.get("final") or {}) for r, _ in records):
        found = sorted(
            {k for r, _ in records for k, v in (r.get("final") or {}).items() if isinstance(v, (int, float))}
        )
        raise StudyError(f"no job has final.{metric}; metrics: {', '.join(found) or 'none (no job finished)'}")
    jobs = [job_from_record(r, n, metric) for r, n in records]
    keys = varying_keys(jobs)
    columns = list(columns or [])
    rows = list(rows) if rows is not None else [k for k in keys if k not in columns]
    for k in rows + columns:
        if k == REPLICATE:
            raise StudyError("seed is the replicate axis (aggregated), not a row or column")
        if all(key_value(j, k) is MISSING for j in jobs):
            raise StudyError(f"unknown key {k!r}: no job has it; keys that vary: {', '.join(keys) or 'none'}")
    row_vals = order_keys([tuple(key_value(j, k) for k in rows) for j in jobs])
    col_vals = order_keys([tuple(key_value(j, k) for k in columns) for j in jobs])
    cells = _fill(rows + columns, jobs, row_vals, col_vals, len(rows), metric, key_value)
    report = SweepReport(
        row_keys=tuple(rows),
        column_keys=tuple(columns),
        metric=metric,
        rows=row_vals,
        columns=col_vals,
        cells=cells,
        jobs=jobs,
        source=source,
        unreadable=list(unreadable),
        alpha=alpha,
        keys=keys,
        lower_better=lower_is_better(metric),
    )
    mark_repeats(list(cells.values()), lambda cell: report.cell_label(cell.row, cell.column))
    ordered = report.ordered_cells
    report.best = ordered[0] if ordered and ordered[0].mean is not None else None
    report.vs_best = vs_best(report, ordered)
    # rows best first (by their best cell), the table's key order within ties
    rank = {id(c): i for i, c in enumerate(ordered)}
    report.rows = sorted(
        row_vals, key=lambda r: min((rank.get(id(report.cell(r, c)), len(rank)) for c in col_vals), default=len(rank))
    )
    return report


def vs_best(report: SweepReport, ordered: Sequence[Cell]) -> dict[int, float]:
    """id(cell) -> the p of "the best cell is better than it", corrected for the pick
    (:mod:`ssl_bench.report.ranking`: Holm over every ordered pair; the best's row is reported)."""
    if report.best is None:
        return {}
    label = lambda c: report.cell_label(c.row, c.column)  # noqa: E731
    adjusted = pairwise(ordered, label, report.metric, report.lower_better, min_seeds=2)
    best = id(report.best)
    return {d: p for (c, d), p in adjusted.items() if c == best}


def metric_label(report: Table) -> str:
    """The metric's column header: the study's label, else a short name (``kNN %``)."""
    if isinstance(report, StudyReport) and report.study is not None:
        return report.study.metric_label
    label = METRIC_HEADERS.get(report.metric, report.metric)
    return f"{label} (lower is better)" if isinstance(report, SweepReport) and report.lower_better else label
