"""The study figure: ours and the paper's numbers on two panels side by side, each with its own y axis
titled with its metric and dataset, never two scales on one plot.

x: the table's rows (a numeric key on a numeric, possibly logarithmic axis; otherwise short
categorical labels, see :mod:`~ssl_bench.report.plot_axes`); one series per column value. Ours: mean
over seeds with 95% CI bars, the random-init network as a labelled dashed line, collapsed cells
crossed in red, cells with diverged or failed jobs marked at the foot of the axis; each marker kind
has a legend entry. Under the panels, each rule's verdict (holds / does not hold / inconclusive,
with p).
"""

from __future__ import annotations

import textwrap
from typing import Any

from ssl_bench.report.build import StudyReport
from ssl_bench.report.plot_axes import STATUS_MARKERS, init_line, status_handles, x_axis
from ssl_bench.report.values import fmt_p


def _dataset(report: StudyReport) -> str:
    names = {((j.config or {}).get("data") or {}).get("name") for c in report.cells.values() for j in c.jobs}
    names.discard(None)
    return ", ".join(sorted(str(n) for n in names))


def verdict_lines(report: StudyReport, width: int = 110) -> list[str]:
    lines = []
    for v in report.verdicts:
        p = f", p {fmt_p(v.p_value)}" if v.p_value is not None else ""
        lines.append(textwrap.fill(f"{v.outcome}{p}: {v.text}", width, subsequent_indent="    "))
    return lines


def study_figure(report: StudyReport) -> Any | None:
    """The figure (matplotlib ``Figure``), or None when no row has a job."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    study = report.study
    assert study is not None
    rows = [r for r in report.rows if any(report.cell(r, c).jobs for c in report.columns)]
    if not rows:
        return None
    axis = x_axis(rows, study.rows)
    has_paper = any(report.cell(r, c).reference is not None for r in rows for c in report.columns)
    width = max(6.0, 0.9 * len(rows) + 3.0) * (2 if has_paper else 1) + 2.5
    lines = verdict_lines(report)
    height = 4.2 + 0.18 * sum(line.count("\n") + 1 for line in lines)
    fig = Figure(figsize=(min(width, 18.0), height), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True) if has_paper else [fig.subplots()]
    ours, paper = axes[0], (axes[1] if has_paper else None)
    ncols = len(report.columns)
    handles: list[Any] = []
    shown: set[str] = set()
    means: list[float] = []
    for ci, col in enumerate(report.columns):
        color = f"C{ci}"
        name = f"{report.column_label(col)}: " if study.columns else ""
        xs, ys, errs, ref_x, ref_y = [], [], [], [], []
        for i, row in enumerate(rows):
            cell = report.cell(row, col)
            x = axis.dodge(axis.positions[i], ci, ncols)
            if cell.mean is not None:
                half = cell.summary.half_width()
                xs.append(x)
                ys.append(cell.mean)
                errs.append(0.0 if half is None else half)
                means.append(cell.mean)
                if cell.counts.get("collapsed"):
                    m, c, _ = STATUS_MARKERS["collapsed"]
                    ours.plot([x], [cell.mean], marker=m, markersize=12, mew=2, color=c, zorder=5)
                    shown.add("collapsed")
            for status, foot in (("diverged", 0.04), ("failed", 0.1)):  # at the axis foot, one above the other
                if cell.counts.get(status):
                    m, c, _ = STATUS_MARKERS[status]
                    ours.plot([x], [foot], marker=m, markersize=9, color=c, transform=ours.get_xaxis_transform())
                    shown.add(status)
            if cell.reference is not None:
                ref_x.append(x)
                ref_y.append(cell.reference)
        if xs:
            fmt = "o-" if axis.numeric else "o"
            handles.append(
                ours.errorbar(xs, ys, yerr=errs, fmt=fmt, color=color, capsize=4, label=f"{name}mean, 95% CI")
            )
        if paper is not None and ref_x:
            paper.plot(ref_x, ref_y, "s:" if axis.numeric else "s", color=color, markersize=7)
    if paper is not None:
        handles.append(Line2D([], [], marker="s", color="0.4", linestyle="none", label="published (right panel)"))
    init_line(ours, report.random_init, means, handles)
    handles += status_handles(shown)
    for ax in axes:
        axis.apply(ax)
        ax.grid(axis="y", alpha=0.3)
    data = _dataset(report)
    ours.set_title(f"ours: {study.metric_label}" + (f" ({data})" if data else ""), fontsize=10)
    ours.set_ylabel(study.metric_label)
    if paper is not None:
        metrics = report.reference_metrics
        label = metrics[0] if len(metrics) == 1 else "published (several metrics)"
        paper.set_title(f"paper: {label}", fontsize=10)
        paper.set_ylabel(label)
    fig.suptitle(study.heading, fontsize=11)
    if handles:
        fig.legend(handles=handles, fontsize=8, loc="outside right upper")
    if lines:
        blank = [Patch(color="none")] * len(lines)
        fig.legend(
            blank,
            lines,
            loc="outside lower center",
            fontsize=8,
            handlelength=0,
            handletextpad=0,
            title="verdicts",
            title_fontsize=8,
            alignment="left",
        )
    return fig
