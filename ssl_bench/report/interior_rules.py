"""``interior_argmax`` / ``interior_argmin``: the best value of an axis is strictly inside its range.

The inner value is not picked from the data and then tested (that test's error is about twice its
level at the boundary null). Instead every inner value is tested against both ends:

- **holds** when some inner value beats both ends: per inner value an intersection-union test
  (both one-sided comparisons at ``alpha``: its p is the larger of the two), then Holm over the
  inner values, so the error is controlled over the choice of the inner value;
- **does not hold** when an end beats every inner value: per end the larger of its one-sided p's
  against each inner value, Holm over the two ends.

Each comparison of two axis values is paired when they share seeds, else Welch (the ``test`` says
which); a comparison without evidence (too few or lost seeds, no spread) counts as p = 1.
"""

from __future__ import annotations

from typing import Any

from ssl_bench.report.cells import Job, runs_text
from ssl_bench.report.evidence import Blocked, Comparison, compare
from ssl_bench.report.kinds import keys_of, register, where_scope, with_dropped
from ssl_bench.report.statistics import NeedsSeeds, holm
from ssl_bench.report.values import MISSING, config_value, order, p_is, same, short_key, show
from ssl_bench.report.verdict import HOLDS, INCONC, NA, NOT, Context, Verdict, p_text


def _bound(rule: dict[str, Any]) -> set[str]:
    return {rule["axis"]} | keys_of(rule.get("where"))


def _scope(rule: dict[str, Any], jobs: list[Job]) -> list[Job]:
    return [j for j in where_scope(rule, jobs) if config_value(j.config, rule["axis"]) is not MISSING]


def _interior(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float, sign: float) -> Verdict:
    """sign +1: higher is better (argmax), -1: lower is better (argmin)."""
    axis = rule["axis"]
    points = order(config_value(j.config, axis) for j in jobs)
    cells = [[j for j in jobs if same(config_value(j.config, axis), p)] for p in points]
    name = short_key(axis, list(dict.fromkeys(ctx.keys + [axis])))
    arms = [ctx.arm(f"{name}={show(p)}", c) for p, c in zip(points, cells)]
    sums = [ctx.summary(a.kept) for a in arms]
    scope = f" ({ctx.label(rule['where'])})" if rule.get("where") else ""
    parts = [
        f"{show(p)}: {ctx.stats(s)}" + ("" if all(j.status == "finished" for j in c) else f" [{runs_text(c)}]")
        for p, s, c in zip(points, sums, cells)
    ]
    detail = f"{ctx.study.short} by {name}{scope}: " + ", ".join(parts)
    groups = [ctx.group_dict(a.label, c) for a, c in zip(arms, cells)]
    base = dict(detail=detail, alpha=alpha, groups=groups)
    if len(points) < 3:
        return Verdict(outcome=NA, reason=f"needs >= 3 values of {name}", **base)
    ends, inner = (0, len(points) - 1), range(1, len(points) - 1)
    tests: set[str] = set()
    blocked: list[str] = []

    def beats(i: int, k: int) -> float:  # one-sided p of "value i is better than value k"
        try:
            cmp: Comparison = compare([(sign, arms[i]), (-sign, arms[k])], ctx.study.metric)
        except (Blocked, NeedsSeeds) as err:
            blocked.append(f"{show(points[i])} vs {show(points[k])}: {err}")
            return 1.0
        tests.add("paired" if cmp.paired else "Welch")
        return cmp.estimate.p_greater(0)

    per_inner = [max(beats(i, e) for e in ends) for i in inner]
    adjusted = holm(per_inner)
    pick = min(range(len(adjusted)), key=lambda k: adjusted[k])
    p_hold = adjusted[pick]
    per_end = [max(beats(e, i) for i in inner) for e in ends]
    end_adj = holm(per_end)
    p_not = min(end_adj)
    kinds = " / ".join(sorted(tests)) or "no"
    test = f"one-sided {kinds} t-tests: every inner value against both ends, Holm over the inner values"
    best = points[inner[pick]]
    note = f"; {len(blocked)} comparison(s) without evidence (p = 1): {blocked[0]}" if blocked else ""
    if p_hold < alpha:
        outcome, p = HOLDS, p_hold
        reason = (
            f"inner {name}={show(best)} beats both ends: Holm over {len(per_inner)} inner values, {p_text(p, alpha)}"
        )
    elif p_not < alpha:
        outcome, p = NOT, p_not
        end = points[ends[end_adj.index(p_not)]]
        reason = f"the end {name}={show(end)} beats every inner value: Holm over the two ends, {p_text(p, alpha)}"
    else:
        outcome, p = INCONC, p_hold
        reason = f"no inner {name} shown to beat both ends (closest {show(best)}: {p_is(p_hold)}, Holm-adjusted)"
    verdict = Verdict(outcome=outcome, reason=reason + note, test=test, p_value=p, p_against=p_not, **base)
    return with_dropped(verdict, list(arms))


MIN_TEXT = "3 values of the axis; per comparison 3 deciding seeds per value, fewer than a third lost"


@register("interior_argmax", required=("axis",), optional=("where",), bound=_bound, scope=_scope, min_deciding=MIN_TEXT)
def interior_argmax(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _interior(rule, ctx, jobs, alpha, +1.0)


@register("interior_argmin", required=("axis",), optional=("where",), bound=_bound, scope=_scope, min_deciding=MIN_TEXT)
def interior_argmin(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _interior(rule, ctx, jobs, alpha, -1.0)
