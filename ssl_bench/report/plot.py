"""The study's figure: our metric along the ablation axis, the published numbers beside it.

x: the row values (categorical, in the table's order); y: mean over seeds with std error bars, one
series per column value. The published numbers come from another dataset and budget, so they get
their own y axis (right) and hollow markers. Collapsed cells are crossed out in red; cells
that did not all finish have their job statuses under the x label; a dashed line marks the
random-init network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_bench.report.study import StudyReport, short_key


def plot_study(report: StudyReport, path: str | Path) -> Path | None:
    """Write the PNG and return its path (None when there is nothing to plot or no matplotlib)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError:
        return None
    study = report.study
    rows = [r for r in report.rows if any(report.cell(r, c).jobs for c in report.columns)]
    if not rows:
        return None
    has_paper = any(report.cell(r, c).reference is not None for r in rows for c in report.columns)
    fig = Figure(figsize=(max(7.5, 1.2 * len(rows) + 3.5), 4.2), layout="constrained")
    ax = fig.add_subplot()
    paper_ax = ax.twinx() if has_paper else None
    numeric = len(study.rows) == 1 and all(isinstance(r[0], (int, float)) and not isinstance(r[0], bool) for r in rows)
    ncols = len(report.columns)
    handles: list[Any] = []
    collapsed_shown = False
    for ci, col in enumerate(report.columns):
        color = f"C{ci}"
        name = f"{report.column_label(col)}: " if study.columns else ""
        offset = (ci - (ncols - 1) / 2) * 0.1 - (0.1 if paper_ax is not None else 0.0)   # ours left, paper right
        xs, ys, errs, ref_x, ref_y = [], [], [], [], []
        for i, row in enumerate(rows):
            cell = report.cell(row, col)
            x = i + offset
            if cell.mean is not None:
                xs.append(x)
                ys.append(cell.mean)
                errs.append(cell.std or 0.0)
                if cell.counts.get("collapsed"):
                    ax.plot([x], [cell.mean], marker="x", markersize=12, mew=2, color="tab:red", zorder=5)
                    collapsed_shown = True
            if cell.reference is not None:
                ref_x.append(x + 0.2)
                ref_y.append(cell.reference)
        if xs:
            handles.append(ax.errorbar(xs, ys, yerr=errs, fmt="o-" if numeric else "o", color=color, capsize=4,
                                       label=f"{name}ours"))
        if paper_ax is not None and ref_x:
            (line,) = paper_ax.plot(ref_x, ref_y, linestyle=":" if numeric else "none", marker="s", markersize=8,
                                    markerfacecolor="none", markeredgewidth=1.5, color=color, label=f"{name}paper")
            handles.append(line)
    init = report.random_init
    if init is not None:   # the baseline every method must beat; off the axis when far from our values
        means = [c.mean for c in report.cells.values() if c.mean is not None]
        lo, hi = (min(means), max(means)) if means else (init, init)
        span = max(hi - lo, 0.1 * abs(hi), 1e-9)
        if lo - span <= init <= hi + span:
            handles.append(ax.axhline(init, color="0.5", linestyle="--", linewidth=1, label="random init"))
        else:
            handles.append(Line2D([], [], color="0.5", linestyle="--", linewidth=1,
                                  label=f"random init {init:.4g} (off axis)"))
    if collapsed_shown:
        handles.append(Line2D([], [], marker="x", color="tab:red", linestyle="none", mew=2, label="collapsed"))
    ax.set_xticks(range(len(rows)), [_tick(report, r) for r in rows], fontsize=8)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    ax.set_xlabel(", ".join(short_key(k, study.rows) for k in study.rows))
    ax.set_ylabel(f"ours: {study.metric_label}")
    if paper_ax is not None:
        metrics = report.reference_metrics
        paper_ax.set_ylabel("paper" + (f": {metrics[0]}" if len(metrics) == 1 else " (hollow markers)"))
    ax.set_title(study.heading)
    ax.grid(axis="y", alpha=0.3)
    if handles:
        fig.legend(handles=handles, fontsize=8, loc="outside right upper")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def _tick(report: StudyReport, row: tuple[Any, ...]) -> str:
    """The row's value, then one line per cell whose jobs did not all finish (``collapsed 2/2``)."""
    lines = [report.row_label(row)]
    for col in report.columns:
        cell = report.cell(row, col)
        if cell.jobs and set(cell.counts) != {"finished"}:
            lines.append((f"{report.column_label(col)}: " if report.study.columns else "") + cell.runs)
    return "\n".join(lines)
