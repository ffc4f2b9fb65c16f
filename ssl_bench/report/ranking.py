"""Which cells are significantly better than which: every ordered pair of cells with a number gets a
one-sided t-test of "c is better than d" (paired on per-seed differences when the cells share seeds,
else Welch; the evidence gates of :mod:`ssl_bench.report.evidence`), and the p-values are
Holm-adjusted over all of those pairs at once.

Two users: a sweep's "vs best" (the best cell is picked from the data, so testing it against the
others alone would not cover the pick: all pairs are corrected, the best's row is reported) and a
study with ``compare: true`` (the methods benchmark: what each cell beats). Holm over the k(k - 1)
ordered pairs controls the family-wise error over every "better than" the table states; it is
conservative for many cells (7 methods: 42 pairs), which is the price of listing them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ssl_bench.report.cells import Cell
from ssl_bench.report.evidence import Blocked, arm, compare
from ssl_bench.report.statistics import NeedsSeeds, holm

Pair = tuple[int, int]  # (id(c), id(d)): "c is better than d"


def pairwise(
    cells: Sequence[Cell],
    label: Callable[[Cell], str],
    metric: str,
    lower_better: bool,
    min_seeds: int,
    protocol: Sequence[str] | None = None,
) -> dict[Pair, float]:
    """Holm-adjusted one-sided p of "c is better than d" for every ordered pair of cells with a number
    that has the evidence for a test (pairs a gate blocks, n < 2 or no spread, are left out and not
    counted in the correction)."""
    sign = -1.0 if lower_better else 1.0
    numbered = [c for c in cells if c.mean is not None]
    arms = {id(c): arm(c.jobs, label(c), protocol) for c in numbered}
    raw: dict[Pair, float] = {}
    for c in numbered:
        for d in numbered:
            if c is d:
                continue
            try:
                cmp = compare([(sign, arms[id(c)]), (-sign, arms[id(d)])], metric, min_seeds=min_seeds)
            except (Blocked, NeedsSeeds):
                continue
            raw[(id(c), id(d))] = cmp.estimate.p_greater(0)
    keys = list(raw)
    return dict(zip(keys, holm([raw[k] for k in keys])))


def beaten(cells: Sequence[Cell], adjusted: dict[Pair, float], alpha: float) -> dict[int, list[Cell]]:
    """id(cell) -> the cells it is significantly better than (adjusted p < alpha), in table order; a
    cell in no tested pair (too few deciding seeds) has no entry: it was not compared."""
    tested = {i for pair in adjusted for i in pair}
    return {id(c): [d for d in cells if adjusted.get((id(c), id(d)), 1.0) < alpha] for c in cells if id(c) in tested}
