"""Every study's figure, rendered from a synthetic sweep of its real grid (every job of
``conf/experiment/<study>.yaml``, with a collapsed cell, a diverged and a failed job mixed in), is
readable: no two tick labels of an axis overlap, no two legend entries overlap, nothing is drawn
outside the canvas (matplotlib's own text bounding boxes after a draw), ours and the paper's
numbers are on separate panels, and each rule's verdict is written on it. Also the numeric axis a
swept number gets, logarithmic when its grid is geometric."""

from __future__ import annotations

import itertools

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from ssl_bench.report.build import build_report
from ssl_bench.report.cells import metric_scale
from ssl_bench.report.plot_axes import x_axis
from ssl_bench.report.plot_study import study_figure
from tests.test_studies import QUICK, grid


def _records(experiment: str) -> list[tuple[dict, str]]:
    jobs, study = grid(experiment)
    acc = metric_scale(study["metric"]) == 100.0
    records = []
    cells: dict[str, int] = {}
    for i, cfg in enumerate(jobs):
        key = repr([cfg.get(k.split(".")[0]) for k in study["rows"] + study["columns"]])
        cell = cells.setdefault(key, len(cells))
        value = (0.35 + 0.04 * cell + 0.01 * (i % 3)) if acc else 300.0 - 10 * cell + (i % 3)
        status = "collapsed" if cell == 0 else "finished"
        if i == 1:
            status = "diverged"
        elif i == 2:
            status = "failed"
        final = {} if status in ("diverged", "failed") else {study["metric"]: value, "z_std_ratio": 0.9}
        records.append(
            (
                {
                    "schema_version": 2,
                    "status": status,
                    "seed": cfg["seed"],
                    "method": cfg["method"]["name"],
                    "config": cfg,
                    "overrides": [],
                    "epochs": [],
                    "init": {study["metric"]: 0.3 if acc else 900.0},
                    "final": final,
                    "error": {"type": "RuntimeError", "message": "x"} if status == "failed" else None,
                },
                f"job{i}",
            )
        )
    return records


def _tick_labels(axis) -> list:
    """The labels matplotlib draws: visible, non-empty, at a tick inside the axis' view interval."""
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) * 1e-9
    return [
        t.label1
        for t in axis.get_major_ticks()
        if t.label1.get_visible() and t.label1.get_text() and lo - span <= t.get_loc() <= hi + span
    ]


def _overlaps(boxes: list) -> list[tuple[int, int]]:
    return [(i, j) for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2) if a.overlaps(b)]


@pytest.mark.parametrize("experiment", QUICK)
def test_every_study_figure_is_readable(experiment):
    report = build_report(_records(experiment))
    fig = study_figure(report)
    assert fig is not None
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    page = fig.bbox.padded(1)
    texts = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            shown = _tick_labels(axis)
            boxes = [t.get_window_extent(renderer) for t in shown]
            assert not _overlaps(boxes), (experiment, [t.get_text() for t in shown])
            texts += shown
        texts += [t for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    for legend in fig.legends:
        entries = [t for t in legend.get_texts() if t.get_text()]
        assert not _overlaps([t.get_window_extent(renderer) for t in entries]), experiment
        texts += entries + [legend.get_title()]
    for t in texts:
        box = t.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (
            experiment,
            t.get_text(),
        )
    has_paper = any(c.reference is not None and c.jobs for c in report.cells.values())
    assert len([ax for ax in fig.axes if ax.has_data()]) == (2 if has_paper else 1), experiment  # never a twin axis
    written = "\n".join(t.get_text() for legend in fig.legends for t in legend.get_texts())
    for v in report.verdicts:
        assert v.outcome in written, (experiment, v.text)
    legend_text = "\n".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "collapsed" in legend_text and "diverged" in legend_text and "failed" in legend_text
    assert "random init" in legend_text


def test_a_geometric_grid_is_on_a_log_axis_and_categories_name_what_varies():
    temps = x_axis([(0.01,), (0.05,), (0.1,), (0.5,), (2,), (5,)], ["method.temperature"])
    assert temps.numeric and temps.log and temps.positions[0] == 0.01
    even = x_axis([(64,), (256,), (1024,)], ["method.projector.out_dim"])
    assert even.numeric and even.log  # 16x: geometric
    linear = x_axis([(0.0,), (0.5,), (1.0,)], ["method.tau_base"])
    assert linear.numeric and not linear.log  # a 0 cannot go on a log axis
    close = x_axis([(0,), (0.7,), (0.9,), (0.97,), (1,)], ["method.tau_base"])  # 0.97 and 1: labels would touch
    assert not close.numeric and close.positions == [0, 1, 2, 3, 4] and "evenly spaced" in close.title
    cats = x_axis([(0.5, True), (0.5, False)], ["method.temperature", "method.normalize"])
    assert not cats.numeric and cats.labels == ["true", "false"] and cats.title == "normalize"


@pytest.mark.parametrize(("init", "drawn"), [(30.0, True), (50.0, True), (2.0, False)])
def test_the_random_init_line_widens_the_axis_unless_it_would_squeeze_the_bars(init, drawn):
    """Bars from 42 to 51 (the MoCo v3 momentum study): an init at 30 (or inside) is drawn on the axis;
    one at 2 would leave the bars a fifth of the height, so the legend names it off the axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssl_bench.report.plot_axes import init_line

    fig, ax = plt.subplots()
    ax.errorbar([0, 1], [48.0, 45.0], yerr=[3.0, 3.0], fmt="o")
    handles: list = []
    init_line(ax, init, [48.0, 45.0], handles)
    label = handles[0].get_label()
    lo, hi = ax.get_ylim()
    assert (label == f"random init {init:.4g}" and lo <= init <= hi) if drawn else label.endswith("(off axis)")
    plt.close(fig)
