"""Report figures, drawn from the report models only (:mod:`ssl_bench.report.build`).

Study: :mod:`~ssl_bench.report.plot_study` (ours and the paper's numbers on two panels, verdicts
under them). Sweep: the metric along one key (x: the first row key, a numeric axis when its values
are numbers, logarithmic when they span a factor of 10 or more) with one line per value of the other
keys, 95% CI bars, the best cell starred, the random-init network as a labelled line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_bench.report.build import StudyReport, SweepReport, Table, metric_label
from ssl_bench.report.plot_axes import init_line
from ssl_bench.report.plot_study import study_figure
from ssl_bench.report.values import is_number, normalize, short_key, show


def plot_report(report: Table, path: str | Path) -> Path | None:
    """Write the PNG and return its path (None when there is nothing to plot or no matplotlib)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    if isinstance(report, StudyReport):
        fig = study_figure(report)
        return None if fig is None else _save(fig, path)
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
    log = numeric and len(ticks) > 2 and ticks[0] > 0 and ticks[-1] / ticks[0] >= 10

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
    init_line(ax, report.random_init, [c.mean for c in cells], handles)
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
