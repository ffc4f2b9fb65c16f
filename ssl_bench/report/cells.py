"""Records -> jobs -> cells: the grouping and the per-cell aggregation of every report.

A **job** is one record of a sweep reduced to what a report needs: its config, status, seed and
the report's metric in display units (percent for ``*_acc``). A **cell** is one configuration: the
jobs that share the values of the table's keys, over seeds. A cell's numbers come from
:mod:`ssl_bench.report.statistics` (n, mean, std, 95% CI), with the evaluation split's binomial
error for accuracy metrics (``N_eval``: the record's ``final.n_eval``, else ``data.test_size`` of
the embedded shapes data, else unknown: no binomial term).

**A job is counted once.** Two jobs whose results are identical, bit for bit (every final metric
and every epoch's training loss), are one computation run twice, whatever their seed labels: a sweep that
crosses a key with a setting where that key has no effect (``method.predictor_fixed_lr`` without a
trained predictor) produces them. Within a cell they count as one replicate, and a cell whose jobs
all repeat another cell's is marked as the same runs (:attr:`Cell.same_as`), so that no verdict
counts one computation as two seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssl_bench.report.statistics import Summary, binomial_variance, summarize
from ssl_bench.report.values import config_value, flatten, fmt, nkey, same
from ssl_bench.tracking.record import STATUSES, RecordError, find_records, load_record

METRIC_STATUSES = ("finished", "collapsed")  # jobs whose final evaluation exists
INCONCLUSIVE = ("failed", "interrupted", "running")  # says nothing about a claim unless the rule names it
SHORT_METRIC = {
    "knn_acc": "kNN",
    "linear_acc": "linear",
    "online_probe_acc": "online probe",
    "z_std_ratio": "z_std ratio",
    "rankme": "RankMe",
    "ppl": "ppl",
    "masked_acc": "masked acc",
}
LOWER_IS_BETTER = ("ppl", "unigram_ppl", "loss")


class ReportError(ValueError):
    """A study block, a rule, a set of records or a reference table that cannot be used."""


# --- metrics --------------------------------------------------------------------------------------
def is_accuracy(metric: str) -> bool:
    return metric.endswith("_acc")


def metric_scale(metric: str) -> float:
    """Record value -> display units (accuracies are fractions in records, percent in tables)."""
    return 100.0 if is_accuracy(metric) else 1.0


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.endswith(("_ppl", "_loss"))


def metric_range(metric: str) -> tuple[float, float] | None:
    """The values a metric can take, in display units (None: unbounded or unknown)."""
    return (0.0, 100.0) if is_accuracy(metric) else None


def short_metric(metric: str) -> str:
    return SHORT_METRIC.get(metric, metric)


# --- records --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unreadable:
    """A record.json that could not be used (truncated JSON, not an object, unreadable file)."""

    path: Path
    reason: str


def read_records(root: str | Path) -> tuple[list[tuple[dict[str, Any], Path]], list[Unreadable]]:
    """Every record under ``root`` (path order; files moved aside by ``overwrite=true`` left out) and
    the ones that could not be read, by path."""
    good: list[tuple[dict[str, Any], Path]] = []
    bad: list[Unreadable] = []
    for path in find_records(root):
        try:
            good.append((load_record(path), path))
        except OSError as err:
            bad.append(Unreadable(path, f"cannot read: {err.strerror or err}"))
        except RecordError as err:
            bad.append(Unreadable(path, str(err).removeprefix(f"{path}: ")))
    return good, bad


def run_name(path: Path, root: Path) -> str:
    """A run's name in a report: its folder relative to the sweep folder."""
    return str(path.parent.relative_to(root)) if path.parent != root else path.parent.name


def n_eval(record: dict[str, Any]) -> int | None:
    """Number of evaluation images behind the record's final accuracies: ``final.n_eval``, else the
    embedded shapes data's ``data.test_size``, else None (unknown)."""
    value = (record.get("final") or {}).get("n_eval")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    data = (record.get("config") or {}).get("data") or {}
    if isinstance(data, dict) and data.get("name") == "shapes" and isinstance(data.get("test_size"), int):
        return int(data["test_size"])
    return None


# --- jobs -----------------------------------------------------------------------------------------
@dataclass
class Job:
    """One record of the sweep, reduced to what a report needs."""

    run: str
    status: str
    config: dict[str, Any]
    seed: Any = None
    value: float | None = None  # the metric in display units; None without a final evaluation
    error: str | None = None
    init: float | None = None  # the same metric for the random-init network (evaluated before training)
    n_eval: int | None = None  # evaluation images behind the final accuracy (binomial error)
    overrides: list[str] = field(default_factory=list)
    fingerprint: Any = None  # identical results: the same computation


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def fingerprint(record: dict[str, Any]) -> Any:
    """Status, every final number and every epoch's training loss; None without results. The seed is
    not part of it: two seeds with bit-identical results are one computation (the seed had no effect)
    and count once."""
    final = {k: v for k, v in (record.get("final") or {}).items() if _number(v) is not None}
    if not final:
        return None
    losses = tuple(e.get("train/loss") for e in record.get("epochs") or [] if isinstance(e, dict))
    return (record.get("status"), json.dumps(final, sort_keys=True), losses)


def job_from_record(record: dict[str, Any], run: str, metric: str) -> Job:
    scale = metric_scale(metric)
    value = _number((record.get("final") or {}).get(metric))
    init = _number((record.get("init") or {}).get(metric))
    ok = record.get("status") in METRIC_STATUSES and value is not None
    error = record.get("error")
    return Job(
        run=run,
        status=str(record.get("status")),
        config=record.get("config") or {},
        seed=record.get("seed"),
        value=value * scale if ok else None,
        error=error.get("message") if isinstance(error, dict) else None,
        init=None if init is None else init * scale,
        n_eval=n_eval(record),
        overrides=[str(o) for o in record.get("overrides") or []],
        fingerprint=fingerprint(record),
    )


def distinct(jobs: Iterable[Job]) -> list[Job]:
    """The jobs with each computation once (the first of jobs with the same fingerprint)."""
    seen: set[Any] = set()
    out = []
    for j in jobs:
        if j.fingerprint is not None:
            if j.fingerprint in seen:
                continue
            seen.add(j.fingerprint)
        out.append(j)
    return out


def select(jobs: Iterable[Job], where: dict[str, Any] | None) -> list[Job]:
    """The jobs whose config matches every ``dotted.key: value`` of ``where`` (type-tolerant)."""
    conditions = flatten(where)
    return [j for j in jobs if all(same(config_value(j.config, k), v) for k, v in conditions.items())]


def values_of(job: Job, keys: Sequence[str]) -> tuple[Any, ...]:
    return tuple(config_value(job.config, k) for k in keys)


def group(jobs: Iterable[Job], keys: Sequence[str]) -> list[tuple[tuple[Any, ...], list[Job]]]:
    """The jobs split by their values of ``keys``, in order of first appearance."""
    out: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[Job]]] = {}
    for j in jobs:
        vals = values_of(j, keys)
        out.setdefault(nkey(vals), (vals, []))[1].append(j)
    return list(out.values())


def status_counts(jobs: Sequence[Job]) -> dict[str, int]:
    """Status -> number of jobs, in the order of the record schema's statuses."""
    known = [s for s in STATUSES if any(j.status == s for j in jobs)]
    other = sorted({j.status for j in jobs} - set(STATUSES))
    return {s: sum(j.status == s for j in jobs) for s in known + other}


def runs_text(jobs: Sequence[Job]) -> str:
    """``finished 2/2``, ``collapsed 1/2, failed 1/2``, ``finished 3/3 (1 without a number)`` or
    ``not run``."""
    if not jobs:
        return "not run"
    text = ", ".join(f"{s} {n}/{len(jobs)}" for s, n in status_counts(jobs).items())
    blank = sum(j.status in METRIC_STATUSES and j.value is None for j in jobs)
    return text + (f" ({blank} without a number)" if blank else "")


def summary_of(jobs: Sequence[Job], metric: str) -> Summary:
    """n, mean, std of the jobs' numbers (each computation once) and, for accuracies with a known
    evaluation split, the binomial variance of the mean accuracy (display units squared)."""
    counted = distinct(jobs)
    values = [j.value for j in counted if j.value is not None]
    base = summarize(values)
    sizes = [j.n_eval for j in counted if j.value is not None and j.n_eval]
    if not is_accuracy(metric) or base.mean is None or not sizes:
        return base
    scale = metric_scale(metric)
    known = binomial_variance(base.mean / scale, min(sizes)) * scale**2
    return summarize(values, known_var=known)


def init_summary(jobs: Sequence[Job], metric: str) -> Summary | None:
    """The random-init network's metric over the jobs: one value per seed (jobs of one seed share
    the initial network), with the binomial term like a cell. None when no job evaluated it."""
    per_seed: dict[str, list[float]] = {}
    sizes = []
    for j in distinct(jobs):
        if j.init is not None:
            per_seed.setdefault(str(j.seed), []).append(j.init)
            if j.n_eval:
                sizes.append(j.n_eval)
    if not per_seed:
        return None
    values = [math.fsum(v) / len(v) for v in per_seed.values()]
    base = summarize(values)
    if not is_accuracy(metric) or not sizes:
        return base
    scale = metric_scale(metric)
    return summarize(values, known_var=binomial_variance(base.mean / scale, min(sizes)) * scale**2)


# --- cells ----------------------------------------------------------------------------------------
@dataclass
class Cell:
    """One (row, column) of a table: its jobs over seeds and, for studies, the published number."""

    row: tuple[Any, ...]
    column: tuple[Any, ...] = ()
    metric: str = "knn_acc"
    jobs: list[Job] = field(default_factory=list)
    reference: float | None = None
    reference_metric: str | None = None
    source: str | None = None
    same_as: str | None = None  # label of another cell whose runs these are (identical results)

    @property
    def summary(self) -> Summary:
        return summary_of(self.jobs, self.metric)

    @property
    def n(self) -> int:
        return self.summary.n

    @property
    def mean(self) -> float | None:
        return self.summary.mean

    @property
    def std(self) -> float | None:
        return self.summary.std

    @property
    def ci(self) -> tuple[float, float] | None:
        return self.summary.ci()

    @property
    def counts(self) -> dict[str, int]:
        return status_counts(self.jobs)

    @property
    def runs(self) -> str:
        return runs_text(self.jobs)

    def ours(self) -> str:
        """``48.1 ± 2.3`` (mean ± 95% CI half-width; one number: ``48.1``; none: ``-``)."""
        return mean_ci_text(self.summary, metric_scale(self.metric))


def mean_ci_text(s: Summary, scale: float) -> str:
    if s.mean is None:
        return "-"
    half = s.half_width()
    return fmt(s.mean, scale) if half is None else f"{fmt(s.mean, scale)} ± {fmt(half, scale)}"


def mark_repeats(cells: Sequence[Cell], label: Any) -> None:
    """Set :attr:`Cell.same_as` on each cell whose jobs all repeat the jobs of an earlier cell."""
    owner: dict[Any, Cell] = {}
    for cell in cells:
        prints = [j.fingerprint for j in cell.jobs]
        if prints and all(p is not None for p in prints):
            first = {id(owner[p]): owner[p] for p in prints if p in owner}
            if len(first) == 1 and all(p in owner for p in prints):
                cell.same_as = label(next(iter(first.values())))
        for p in prints:
            if p is not None:
                owner.setdefault(p, cell)
