"""The report's JSON payloads: ``verdicts.json`` of a study (its rules' outcomes, and what each cell
beats where the study compares its cells) and ``summary.json`` of a sweep (the best cell and what it is
significantly better than). The W&B report logs the same payloads as its run summary."""

from __future__ import annotations

from typing import Any

from ssl_bench.report.build import StudyReport, SweepReport


def verdicts_json(report: StudyReport) -> dict[str, Any]:
    study, vs = report.study, report.verdicts
    assert study is not None
    counts = {o: sum(v.outcome == o for v in vs) for o in ("holds", "does not hold", "inconclusive", "n/a")}
    return {
        "study": study.name,
        "title": study.title,
        "variant": study.variant,
        "metric": study.metric,
        "source": report.source,
        "alpha": study.alpha,
        "reference": None if report.reference_path is None else str(report.reference_path),
        "random_init": report.random_init,
        "n_eval": report.n_eval,
        "holds": counts["holds"],
        "does_not_hold": counts["does not hold"],
        "inconclusive": counts["inconclusive"],
        "n/a": counts["n/a"],
        "verdicts": [v.as_dict() for v in vs],
        **({"better_than": _beaten(report), "pairs_compared": report.compared} if study.compare else {}),
        "unreadable": [{"path": str(u.path), "reason": u.reason} for u in report.unreadable],
    }


def _beaten(report: StudyReport) -> dict[str, list[str] | None]:
    """Cell label -> the labels of the cells it is significantly better than (``compare: true``); None for
    a cell in no test (too few deciding seeds: not compared)."""
    label = report.cell_label
    cells = [report.cell(r, c) for r in report.rows for c in report.columns]
    return {
        label(c.row, c.column): None
        if id(c) not in report.better
        else [label(d.row, d.column) for d in report.better[id(c)]]
        for c in cells
    }


def sweep_json(report: SweepReport) -> dict[str, Any]:
    best = report.best
    sig, not_sig = report.better_than()
    label = report.cell_label
    return {
        "source": report.source,
        "metric": report.metric,
        "lower_is_better": report.lower_better,
        "keys": report.keys,
        "rows": list(report.row_keys),
        "columns": list(report.column_keys),
        "alpha": report.alpha,
        "n_eval": report.n_eval,
        "random_init": report.random_init,
        "best": None
        if best is None
        else {"cell": label(best.row, best.column), "mean": best.mean, "n": best.n, "ci": best.ci},
        "better_than": [{"cell": label(c.row, c.column), "p": report.vs_best[id(c)]} for c in sig],
        "not_significantly_better_than": [
            {"cell": label(c.row, c.column), "p": report.vs_best.get(id(c))} for c in not_sig
        ],
        "unreadable": [{"path": str(u.path), "reason": u.reason} for u in report.unreadable],
    }
