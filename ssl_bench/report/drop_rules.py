"""``larger_drop``: ablating a component costs one setting more than another.

D = (base - ablated | more) - (base - ablated | less). **Holds** when D > margin significantly and
the premise holds; **does not hold** when D < margin significantly *and the premise holds* (a drop
from a baseline that never learned says nothing either way); inconclusive otherwise. The premise:
both base cells significantly above the random-init network, neither ablated cell collapsed or at
the random-init level. D is tested paired on per-seed D when the four cells share seeds, else with
Welch-Satterthwaite df over the four cells.
"""

from __future__ import annotations

from typing import Any

from ssl_bench.report.cells import Job, init_summary, lower_is_better, runs_text, select
from ssl_bench.report.evidence import Arm, Blocked, compare
from ssl_bench.report.kinds import keys_of, register, where_scope, with_dropped
from ssl_bench.report.pair_rules import test_name
from ssl_bench.report.statistics import NeedsSeeds, contrast
from ssl_bench.report.values import config_value, p_is, same, show
from ssl_bench.report.verdict import HOLDS, INCONC, NA, NOT, Context, Verdict, p_text

NEEDS_SEEDS = "needs >= 2 seeds per cell"
CELLS = (("more", "base"), ("more", "ablated"), ("less", "base"), ("less", "ablated"))
SIGNS = (1.0, -1.0, -1.0, 1.0)


def _scope(rule: dict[str, Any], jobs: list[Job]) -> list[Job]:
    return [
        j
        for j in where_scope(rule, jobs)
        if any(same(config_value(j.config, rule["compare"]), rule[s]) for s in ("more", "less"))
        and any(same(config_value(j.config, rule["axis"]), rule[e]) for e in ("base", "ablated"))
    ]


@register(
    "larger_drop",
    required=("axis", "base", "ablated", "compare", "more", "less"),
    optional=("margin", "where"),
    bound=lambda r: {r["axis"], r["compare"]} | keys_of(r.get("where")),
    scope=_scope,
    min_deciding="3 deciding seeds per cell (paired: 3 shared by all four), fewer than a third lost; the premise",
)
def larger_drop(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    axis, compare_key = rule["axis"], rule["compare"]
    margin = float(rule.get("margin", 0) or 0)
    cells = {(side, end): select(jobs, {compare_key: rule[side], axis: rule[end]}) for side, end in CELLS}
    arms = {k: ctx.arm(f"{show(rule[k[0]])} {show(rule[k[1]])}", v) for k, v in cells.items()}
    sums = {k: ctx.summary(a.kept) for k, a in arms.items()}
    groups = [ctx.group_dict(f"{show(rule[s])}, {show(rule[e])}", cells[(s, e)]) for s, e in cells]
    parts = []
    for side in ("more", "less"):
        terms = [
            f"{show(rule[e])} {ctx.stats(sums[(side, e)])}"
            + ("" if all(j.status == "finished" for j in cells[(side, e)]) else f" [{runs_text(cells[(side, e)])}]")
            for e in ("base", "ablated")
        ]
        parts.append(f"{show(rule[side])}: {terms[0]} -> {terms[1]}")
    detail = "; ".join(parts)
    base = dict(alpha=alpha, groups=groups)
    arm_list = [arms[k] for k in CELLS]
    if any(not v for v in cells.values()):
        return Verdict(outcome=NA, detail=detail, reason="jobs not run", **base)
    try:
        cmp = compare(list(zip(SIGNS, arm_list)), ctx.study.metric)
    except (Blocked, NeedsSeeds) as err:
        out = Verdict(outcome=INCONC, detail=detail, reason=str(err), test="one-sided t-test on D", **base)
        return with_dropped(out, arm_list)
    test = test_name(cmp) + " on the difference of drops"
    est = cmp.estimate
    diff, text = ctx.diff(est, "D = drop(more) - drop(less)", alpha, margin)
    premise = _premise(rule, ctx, jobs, arms, alpha)
    detail = f"{detail}; {text}"
    p_hold, p_not = est.p_greater(margin), est.p_less(margin)
    gated = premise is None
    common = dict(detail=detail, test=test, difference=diff, p_against=p_not if gated else None, **base)
    if p_hold < alpha and gated:
        out = Verdict(
            outcome=HOLDS,
            reason=f"D > {margin:g}: {test} {p_text(p_hold, alpha)}; premise holds",
            p_value=p_hold,
            **common,
        )
    elif p_not < alpha and gated:
        out = Verdict(
            outcome=NOT, reason=f"D < {margin:g}: {test} {p_text(p_not, alpha)}; premise holds", p_value=p_not, **common
        )
    else:
        if p_hold < alpha or p_not < alpha:
            sign, p = (">", p_hold) if p_hold < alpha else ("<", p_not)
            shown = f"D {sign} {margin:g}: {p_text(p, alpha)}"
        else:
            shown, p = f"D > {margin:g} not shown: {p_text(p_hold, alpha)}", p_hold
        reason = shown + (f"; premise does not hold: {premise}" if premise else "")
        out = Verdict(outcome=INCONC, reason=reason, p_value=p, **common)
    return with_dropped(out, arm_list)


def _premise(
    rule: dict[str, Any], ctx: Context, jobs: list[Job], arms: dict[tuple[str, str], Arm], alpha: float
) -> str | None:
    """None when the premise holds, else what fails: both base cells significantly better than the
    random-init network, neither ablated cell collapsed or at the random-init level."""
    init = init_summary(jobs, ctx.study.metric)
    if init is None:
        return "no random-init evaluation in the records"
    sign = -1.0 if lower_is_better(ctx.study.metric) else 1.0
    problems = []
    for (side, end), a in arms.items():
        name = f"{show(rule[side])} {show(rule[end])}"
        if end == "ablated" and any(j.status == "collapsed" for j in a.jobs):
            problems.append(f"{name} collapsed")
            continue
        try:
            p = contrast([(sign, ctx.summary(a.kept)), (-sign, init)]).p_greater(0)
        except NeedsSeeds as err:
            problems.append(f"{name} vs random init: {err}")
            continue
        if p >= alpha:
            problems.append(f"{name} not above random init {ctx.num(init.mean)} ({p_is(p)})")
    return "; ".join(problems) or None
