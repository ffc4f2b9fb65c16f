"""Two-group rules: ``less`` (a below b by more than a margin), ``less_or_status`` (that, or a ends
with a status) and ``equivalent`` (a within a margin of b, TOST).

Each compares the deciding seeds of ``a`` and ``b`` (see :mod:`ssl_bench.report.evidence`): paired
on per-seed differences when the two share seeds, Welch's unpaired t-test otherwise; the verdict's
``test`` says which. Each side needs >= 3 deciding seeds and may have lost less than a third.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ssl_bench.report.cells import Job, group, select
from ssl_bench.report.evidence import Blocked, Comparison, compare
from ssl_bench.report.kinds import keys_of, register, where_scope, with_dropped
from ssl_bench.report.statistics import NeedsSeeds
from ssl_bench.report.status_rules import MIN_N, status_verdict
from ssl_bench.report.verdict import HOLDS, INCONC, NA, NOT, Context, Verdict, combine, p_text

MIN_TEXT = "3 deciding seeds per side (paired: 3 shared seeds), fewer than a third of the seeds lost"


def _bound(rule: dict[str, Any]) -> set[str]:
    return keys_of(rule.get("a"), rule.get("b"), rule.get("where"))


def _scope(rule: dict[str, Any], jobs: list[Job]) -> list[Job]:
    scope = where_scope(rule, jobs)
    a, b = select(scope, rule["a"]), select(scope, rule["b"])
    seen = {id(j) for j in a}
    return a + [j for j in b if id(j) not in seen]


def _pairwise(
    rule: dict[str, Any],
    ctx: Context,
    jobs: list[Job],
    alpha: float,
    judge: Callable[[dict[str, Any], Context, list[Job], list[Job], float], Verdict],
) -> Verdict:
    """``judge`` on the jobs of ``a`` and of ``b``; per pair of table cells when a side spans several
    (a key that one side fixes and the other does not)."""
    a, b = select(jobs, rule["a"]), select(jobs, rule["b"])
    a_cells, b_cells = group(a, ctx.keys), group(b, ctx.keys)
    if len(a_cells) <= 1 and len(b_cells) <= 1:
        return judge(rule, ctx, a, b, alpha)
    subs = []
    for av, aj in a_cells or [((), [])]:
        for bv, bj in b_cells or [((), [])]:
            sub = judge(rule, ctx, aj, bj, alpha)
            sub.scope = f"{ctx.cell_label(ctx.keys, av)} vs {ctx.cell_label(ctx.keys, bv)}"
            subs.append(sub)
    return combine(subs, alpha)


def _two(rule: dict[str, Any], ctx: Context, a: list[Job], b: list[Job]) -> tuple[str, list[dict[str, Any]]]:
    la, lb = ctx.label(rule["a"]), ctx.label(rule["b"])
    return (f"{ctx.describe(la, a)}; {ctx.describe(lb, b)}", [ctx.group_dict(la, a), ctx.group_dict(lb, b)])


def test_name(cmp: Comparison, sides: str = "one-sided") -> str:
    if cmp.paired:
        return f"{sides} paired t-test on per-seed differences ({cmp.n_pairs} shared seeds)"
    return f"{sides} Welch t-test (unpaired)"


def _compare(
    ctx: Context, terms: list[tuple[float, list[Job], str]]
) -> tuple[Comparison | None, str | None, list[Any]]:
    """(the comparison, or None and why not; the arms)."""
    arms = [ctx.arm(label, jobs) for _, jobs, label in terms]
    try:
        return compare([(c, a) for (c, _, _), a in zip(terms, arms)], ctx.study.metric), None, arms
    except (Blocked, NeedsSeeds) as err:
        return None, str(err), arms


def directional(est: Any, margin: float, alpha: float, what: str) -> tuple[str, float, float, str]:
    """A one-sided claim ``what > margin`` on an estimate: (outcome, its p, the opposite test's p, why)."""
    p_hold, p_not = est.p_greater(margin), est.p_less(margin)
    if p_hold < alpha:
        return HOLDS, p_hold, p_not, f"{what} > {margin:g}"
    if p_not < alpha:
        return NOT, p_not, p_not, f"{what} < {margin:g}"
    return INCONC, p_hold, p_not, f"{what} > {margin:g} not shown"


def _less(rule: dict[str, Any], ctx: Context, a: list[Job], b: list[Job], alpha: float) -> Verdict:
    margin = float(rule.get("margin", 0) or 0)
    detail, groups = _two(rule, ctx, a, b)
    if not a or not b:
        return Verdict(outcome=NA, detail=detail, reason="jobs not run", alpha=alpha, groups=groups)
    cmp, why, arms = _compare(ctx, [(-1.0, a, ctx.label(rule["a"])), (1.0, b, ctx.label(rule["b"]))])
    if cmp is None:
        out = Verdict(
            outcome=INCONC, detail=detail, reason=str(why), test="one-sided t-test", alpha=alpha, groups=groups
        )
        return with_dropped(out, arms)
    test = test_name(cmp)
    diff, text = ctx.diff(cmp.estimate, "b - a", alpha, margin)
    outcome, p, p_not, why = directional(cmp.estimate, margin, alpha, "b - a")
    out = Verdict(
        outcome=outcome,
        detail=f"{detail}; {text}",
        reason=f"{why}: {test} {p_text(p, alpha)}" + "".join(f"; {n}" for n in cmp.notes),
        test=test,
        p_value=p,
        p_against=p_not,
        alpha=alpha,
        groups=groups,
        difference=diff,
    )
    return with_dropped(out, arms)


@register("less", required=("a", "b"), optional=("margin", "where"), bound=_bound, scope=_scope, min_deciding=MIN_TEXT)
def less(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _pairwise(rule, ctx, jobs, alpha, _less)


def _less_or_status(rule: dict[str, Any], ctx: Context, a: list[Job], b: list[Job], alpha: float) -> Verdict:
    """Two routes to "holds" (a ends with ``or_status``, or a is below b): Bonferroni, each at
    alpha / 2. "Does not hold" needs both routes refuted (an intersection-union test at alpha)."""
    status_, min_n = rule["or_status"], int(rule.get("min_n", MIN_N))
    label = ctx.label(rule["a"])
    s_out, s_reason, _, s_not = status_verdict(ctx, ctx.arm(label, a), status_, True, min_n, alpha / 2)
    numeric = _less(rule, ctx, a, b, alpha / 2)
    numeric.alpha = alpha
    if s_out == HOLDS:
        detail, groups = _two(rule, ctx, a, b)
        out = Verdict(
            outcome=HOLDS,
            detail=detail,
            test="exact binomial test of the rate (1/2), Bonferroni over the two routes",
            alpha=alpha,
            groups=groups,
            reason=f"a is {status_}: {s_reason} (alpha / 2: one of two routes)",
        )
        return with_dropped(out, [ctx.arm(label, a)])
    if numeric.outcome == HOLDS:
        numeric.reason += f"; at alpha / 2 (one of two routes; status route: {s_reason})"
        return numeric
    n_not = numeric.p_against
    both = None if s_not is None or n_not is None else max(s_not, n_not)
    numeric.p_against = both
    if both is not None and both < alpha:
        numeric.outcome, numeric.p_value = NOT, both
        numeric.reason = (  # replaces the numeric route's reason (and its dropped seeds, given again below)
            f"neither route: a is not {status_} ({s_reason}) and b - a < margin "
            f"(intersection-union test, {p_text(both, alpha)})"
        )
        return with_dropped(numeric, [ctx.arm(label, a), ctx.arm(ctx.label(rule["b"]), b)])
    if numeric.outcome == NOT:
        numeric.outcome = INCONC
    if numeric.outcome == INCONC:
        numeric.reason += f"; status route: {s_reason}"
    return numeric


@register(
    "less_or_status",
    required=("a", "b", "or_status"),
    optional=("margin", "min_n", "where"),
    bound=_bound,
    scope=_scope,
    min_deciding="as less; the status route as status, at alpha / 2 (6 deciding jobs at alpha 0.05)",
)
def less_or_status(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _pairwise(rule, ctx, jobs, alpha, _less_or_status)


def _equivalent(rule: dict[str, Any], ctx: Context, a: list[Job], b: list[Job], alpha: float) -> Verdict:
    margin = float(rule["margin"])
    detail, groups = _two(rule, ctx, a, b)
    if not a or not b:
        return Verdict(outcome=NA, detail=detail, reason="jobs not run", alpha=alpha, groups=groups)
    cmp, why, arms = _compare(ctx, [(1.0, a, ctx.label(rule["a"])), (-1.0, b, ctx.label(rule["b"]))])
    if cmp is None:
        out = Verdict(outcome=INCONC, detail=detail, reason=str(why), test="TOST", alpha=alpha, groups=groups)
        return with_dropped(out, arms)
    test = "TOST (two one-sided " + test_name(cmp, "").strip() + "s)"
    est = cmp.estimate
    diff, text = ctx.diff(est, "a - b", alpha, margin)
    p = est.tost(margin)
    p_not = min(1.0, 2 * min(est.p_greater(margin), est.p_less(-margin)))  # the CI outside [-m, m]
    if p < alpha:
        outcome, why = HOLDS, f"|a - b| < {margin:g}: {test} {p_text(p, alpha)}"
    elif p_not < alpha:
        outcome, why = NOT, f"the CI lies outside [-{margin:g}, {margin:g}] ({p_text(p_not, alpha)})"
    else:
        outcome, why = INCONC, f"|a - b| < {margin:g} not shown: {test} {p_text(p, alpha)}"
    out = Verdict(
        outcome=outcome,
        detail=f"{detail}; {text}",
        reason=why,
        test=test,
        p_value=p if outcome != NOT else p_not,
        p_against=p_not,
        alpha=alpha,
        groups=groups,
        difference=diff,
    )
    return with_dropped(out, arms)


@register(
    "equivalent",
    required=("a", "b", "margin"),
    optional=("where",),
    bound=_bound,
    scope=_scope,
    min_deciding=MIN_TEXT,
)
def equivalent(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _pairwise(rule, ctx, jobs, alpha, _equivalent)
