"""What the report figures share: the x axis a swept key gets, short tick labels, the random-init
line and the markers for cells that did not all finish.

- **A numeric key on a numeric axis**: when the only key that varies has numbers for values, the
  points are placed at them, on a logarithmic axis when its grid is geometric (every value > 0 and the largest at least
  10 times the smallest: temperature, lr, batch size); anything else is categorical. Values too close
  for their labels to stand apart on that axis (BYOL's tau 0, 0.7, 0.9, 0.97, 1: two of them 3% of
  the span apart) are placed evenly in their numeric order instead, and the axis title says so.
- **Categorical labels that never overlap**: only the keys whose values vary between the points are
  named, one ``key=value`` per line; with many points the labels turn 30 degrees.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ssl_bench.report.values import is_number, normalize, short_key, show

MIN_GAP = 0.06  # the least distance between two values, as a share of the axis span, for a numeric axis
STATUS_MARKERS = {  # status -> (marker, colour, legend label); drawn on the cell, or at the axis foot
    "collapsed": ("x", "tab:red", "collapsed"),
    "diverged": ("v", "tab:purple", "diverged (no number)"),
    "failed": ("X", "0.3", "failed (no number)"),
}


@dataclass
class XAxis:
    positions: list[float]  # one per point, in the points' order
    labels: list[str]  # one per point (categorical) or per distinct value (numeric)
    numeric: bool
    log: bool
    title: str
    rotate: bool = False

    def apply(self, ax: Any) -> None:
        if self.numeric:
            if self.log:
                ax.set_xscale("log")
            ticks = sorted(set(self.positions))
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
            if self.log:
                ax.set_xlim(ticks[0] / 1.6, ticks[-1] * 1.6)
            else:
                pad = 0.08 * max(ticks[-1] - ticks[0], 1e-9)
                ax.set_xlim(ticks[0] - pad, ticks[-1] + pad)
        else:
            ax.set_xticks(self.positions, self.labels, fontsize=8)
            ax.set_xlim(-0.5, len(self.positions) - 0.5)
            if self.rotate:
                ax.tick_params(axis="x", labelrotation=30)
                for label in ax.get_xticklabels():
                    label.set_horizontalalignment("right")
        ax.set_xlabel(self.title)

    def dodge(self, x: float, i: int, n: int, width: float = 0.1) -> float:
        """Series ``i`` of ``n`` side by side around ``x`` (a factor on a log axis)."""
        step = (i - (n - 1) / 2) * width
        if not self.numeric:
            return x + step
        ticks = sorted(set(self.positions))
        if self.log:
            return x * (ticks[-1] / ticks[0]) ** (step * 0.15)
        return x + step * 0.15 * max(ticks[-1] - ticks[0], 1.0)


def _is_num(v: Any) -> bool:
    return is_number(v) and not isinstance(v, bool) and normalize(v)[0] == "num"


def x_axis(points: Sequence[tuple[Any, ...]], keys: Sequence[str]) -> XAxis:
    """The x axis for ``points`` (one value per key each), as the module docstring says."""
    names = [short_key(k, keys) for k in keys]
    varying = [i for i in range(len(keys)) if len({show(p[i]) for p in points}) > 1] or list(range(len(keys)))
    if len(varying) == 1 and points and all(_is_num(p[varying[0]]) for p in points):
        k = varying[0]
        xs = [float(normalize(p[k])[1]) for p in points]
        log = min(xs) > 0 and len(set(xs)) > 2 and max(xs) / min(xs) >= 10
        at = sorted({math.log(x) if log else x for x in xs})
        gaps = [b - a for a, b in zip(at, at[1:])]
        if not gaps or min(gaps) >= MIN_GAP * (at[-1] - at[0]):
            return XAxis(xs, [f"{x:g}" for x in xs], True, log, names[0] + (" (log scale)" if log else ""))
        order = sorted(set(xs))
        return XAxis(
            [float(order.index(x)) for x in xs], [f"{x:g}" for x in xs], False, False, f"{names[0]} (evenly spaced)"
        )
    labels = []
    for p in points:
        parts = [f"{names[i]}={show(p[i])}" if len(varying) > 1 else show(p[i]) for i in varying]
        labels.append("\n".join(textwrap.fill(part, 18, break_long_words=False) for part in parts))
    widest = max((max(len(line) for line in lab.splitlines()) for lab in labels), default=0)
    rotate = len(points) * widest > 70
    title = ", ".join(names[i] for i in varying) if len(varying) == 1 else ""
    return XAxis([float(i) for i in range(len(points))], labels, False, False, title, rotate)


def init_line(ax: Any, init: float | None, means: Sequence[float], handles: list[Any]) -> None:
    """The random-init network: a labelled dashed line, the axis widened to show it unless that would
    squeeze the cells' bars into a third of the height (then a legend note: far off the axis)."""
    from matplotlib.lines import Line2D

    if init is None:
        return
    lo, hi = ax.get_ylim() if means else (init, init)  # after the bars are drawn: their extent
    if max(hi, init) - min(lo, init) <= 3 * max(hi - lo, 1e-9):
        handles.append(ax.axhline(init, color="0.5", linestyle="--", linewidth=1, label=f"random init {init:.4g}"))
    else:
        handles.append(
            Line2D([], [], color="0.5", linestyle="--", linewidth=1, label=f"random init {init:.4g} (off axis)")
        )


def status_handles(shown: set[str]) -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], marker=m, color=c, linestyle="none", mew=2, markersize=8, label=label)
        for status, (m, c, label) in STATUS_MARKERS.items()
        if status in shown
    ]
