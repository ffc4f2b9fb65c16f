"""Report figures, drawn from the report models only (:mod:`ssl_bench.report.build`).

Study: x = the row values (categorical, in the table's order); y = mean over seeds with 95% CI
bars, one series per column value. The published numbers come from another dataset and budget, so
they get their own y axis (right) and hollow markers. Collapsed cells are crossed out in red; cells
that did not all finish have their job statuses under the x label; a dashed line marks the
random-init network.

Sweep: the metric along one key (x: the first row key, numeric axis when its values are numbers)
with one line per value of the other keys, 95% CI bars, the best cell starred.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_bench.report.build import StudyReport, SweepReport, Table, metric_label
from ssl_bench.report.values import is_number, normalize, short_key, show


def plot_report(report: Table, path: str | Path) -> Path | None:
    """Write the PNG and return its path (None when there is nothing to plot or no matplotlib)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    if isinstance(report, StudyReport):
        return plot_study(report, path)
    if isinstance(report, SweepReport):
        return plot_sweep(report, path)
    return None


def _err(cell: Any) -> float:
    half = cell.summary.half_width()
    return 0.0 if half is None else half


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def _init_line(ax: Any, report: Table, handles: list[Any]) -> None:
    """The baseline every method must beat; off the axis when far from our values."""
    from matplotlib.lines import Line2D

    init = report.random_init
    if init is None:
        return
    means = [c.mean for c in report.cells.values() if c.mean is not None]
    lo, hi = (min(means), max(means)) if means else (init, init)
    span = max(hi - lo, 0.1 * abs(hi), 1e-9)
    if lo - span <= init <= hi + span:
        handles.append(ax.axhline(init, color="0.5", linestyle="--", linewidth=1, label="random init"))
    else:
        handles.append(
            Line2D([], [], color="0.5", linestyle="--", linewidth=1, label=f"random init {init:.4g} (off axis)")
        )


def plot_study(report: StudyReport, path: str | Path) -> Path | None:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    study = report.study
    assert study is not None
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
        offset = (ci - (ncols - 1) / 2) * 0.1 - (0.1 if paper_ax is not None else 0.0)  # ours left, paper right
        xs, ys, errs, ref_x, ref_y = [], [], [], [], []
        for i, row in enumerate(rows):
            cell = report.cell(row, col)
            x = i + offset
            if cell.mean is not None:
                xs.append(x)
                ys.append(cell.mean)
                errs.append(_err(cell))
                if cell.counts.get("collapsed"):
                    ax.plot([x], [cell.mean], marker="x", markersize=12, mew=2, color="tab:red", zorder=5)
                    collapsed_shown = True
            if cell.reference is not None:
                ref_x.append(x + 0.2)
                ref_y.append(cell.reference)
        if xs:
            handles.append(
                ax.errorbar(
                    xs,
                    ys,
                    yerr=errs,
                    fmt="o-" if numeric else "o",
                    color=color,
                    capsize=4,
                    label=f"{name}ours (95% CI)",
                )
            )
        if paper_ax is not None and ref_x:
            (line,) = paper_ax.plot(
                ref_x,
                ref_y,
                linestyle=":" if numeric else "none",
                marker="s",
                markersize=8,
                markerfacecolor="none",
                markeredgewidth=1.5,
                color=color,
                label=f"{name}paper",
            )
            handles.append(line)
    _init_line(ax, report, handles)
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
    return _save(fig, path)


def _tick(report: StudyReport, row: tuple[Any, ...]) -> str:
    """The row's value, then one line per cell whose jobs did not all finish (``collapsed 2/2``)."""
    lines = [report.row_label(row)]
    for col in report.columns:
        cell = report.cell(row, col)
        if cell.jobs and set(cell.counts) != {"finished"}:
            lines.append((f"{report.column_label(col)}: " if report.column_keys else "") + cell.runs)
    return "\n".join(lines)


def plot_sweep(report: SweepReport, path: str | Path) -> Path | None:
    """The metric along the first row key, one line per value of the other keys (CI bars)."""
    from matplotlib.figure import Figure

    cells = [c for c in report.cells.values() if c.mean is not None]
    if not cells:
        return None
    keys = list(report.row_keys + report.column_keys)
    names = [short_key(k, keys) for k in keys]

    def values(c: Any) -> tuple[Any, ...]:
        return c.row + c.column

    xs_all = [values(c)[0] for c in cells] if keys else ["all jobs"] * len(cells)
    numeric = bool(keys) and all(is_number(v) and not isinstance(v, bool) and normalize(v)[0] == "num" for v in xs_all)
    cats = list(dict.fromkeys(show(v) for v in xs_all))
    if numeric:
        cats = sorted(cats, key=lambda v: normalize(v)[1])

    def xpos(v: Any) -> float:
        return float(normalize(v)[1]) if numeric else float(cats.index(show(v)))

    lines: dict[tuple[Any, ...], list[Any]] = {}
    for c in cells:
        lines.setdefault(tuple(normalize(v) for v in values(c)[1:]), []).append(c)
    ticks = sorted({xpos(v) for v in xs_all})
    log = numeric and len(ticks) > 2 and ticks[0] > 0 and ticks[-1] / ticks[0] >= 50

    def dodge(x: float, i: int) -> float:
        """Lines side by side: 1.5% of the axis span apart (a factor on a log axis)."""
        step = (i - (len(lines) - 1) / 2) * 0.015
        if log:
            return x * (ticks[-1] / ticks[0]) ** step
        return x + step * max(ticks[-1] - ticks[0], 1.0)

    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    handles: list[Any] = []
    for i, members in enumerate(lines.values()):
        members.sort(key=lambda c: xpos(values(c)[0] if keys else "all jobs"))
        other = values(members[0])[1:]
        label = ", ".join(f"{n}={show(v)}" for n, v in zip(names[1:], other)) or metric_label(report)
        x = [dodge(xpos(values(c)[0] if keys else "all jobs"), i) for c in members]
        handles.append(
            ax.errorbar(
                x,
                [c.mean for c in members],
                yerr=[_err(c) for c in members],
                fmt="o-",
                color=f"C{i % 10}",
                capsize=4,
                label=label,
            )
        )
    best = report.best
    if best is not None and best.mean is not None:
        at = list(lines).index(tuple(normalize(v) for v in values(best)[1:]))
        x_best = dodge(xpos(values(best)[0] if keys else "all jobs"), at)
        (star,) = ax.plot(
            [x_best],
            [best.mean],
            marker="*",
            markersize=16,
            color="gold",
            markeredgecolor="k",
            linestyle="none",
            zorder=6,
            label="best",
        )
        handles.append(star)
    _init_line(ax, report, handles)
    if numeric:
        if log:
            ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    else:
        ax.set_xticks(range(len(cats)), cats, fontsize=8)
        ax.set_xlim(-0.5, len(cats) - 0.5)
    ax.set_xlabel(names[0] if names else "")
    ax.set_ylabel(f"{metric_label(report)} (mean, 95% CI)")
    ax.set_title(f"{report.short} by {names[0]}" if names else report.short)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(handles=handles, fontsize=8, loc="outside right upper")
    return _save(fig, path)
