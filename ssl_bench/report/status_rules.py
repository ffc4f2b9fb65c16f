"""``status`` rules: a claim about how jobs end ("without stop-gradient SimSiam collapses").

The claim is about the rate at which seeds end that way: **holds** when an exact one-sided binomial
test (``scipy.stats.binomtest``) shows that more than half of the deciding jobs match
(``H1: rate > 1/2``), **does not hold** when it shows that fewer than half do (``H1: rate < 1/2``),
inconclusive otherwise. Only jobs with a final evaluation decide (finished or collapsed, with a
number; see :mod:`ssl_bench.report.evidence`), so at ``alpha`` 0.05 a verdict needs at least 5
deciding jobs (``0.5^5 = 0.031``; 4 give at best 0.0625), and ``min_n`` (3) is a further floor.
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

from ssl_bench.report.cells import Job
from ssl_bench.report.evidence import Arm, gate
from ssl_bench.report.kinds import register, with_dropped
from ssl_bench.report.values import p_is
from ssl_bench.report.verdict import HOLDS, INCONC, NOT, Context, Verdict, p_text

MIN_N = 3
TEST = "exact binomial test of the rate (1/2)"
DECIDABLE = ("finished", "collapsed")  # the statuses a status claim can name (the others never decide)


def least_jobs(alpha: float) -> int:
    """The fewest deciding jobs with which the binomial test can reach ``alpha`` (5 at 0.05)."""
    return max(1, math.ceil(math.log(alpha) / math.log(0.5) - 1e-12))


def rate_test(decided: list[Job], target: str, wanted: bool) -> tuple[int, int, float, float]:
    """(agreeing jobs, deciding jobs, p of rate > 1/2, p of rate < 1/2)."""
    n = len(decided)
    agree = sum((j.status == target) == wanted for j in decided)
    if n == 0:
        return 0, 0, 1.0, 1.0
    hold = stats.binomtest(agree, n, 0.5, alternative="greater").pvalue
    against = stats.binomtest(agree, n, 0.5, alternative="less").pvalue
    return agree, n, float(hold), float(against)


def status_verdict(
    ctx: Context, arm: Arm, target: str, wanted: bool, min_n: int, alpha: float
) -> tuple[str, str, float | None, float | None]:
    """(outcome, reason, p of holds, p of does not hold) of "arm's jobs are (not) ``target``"."""
    verb = f"{'is' if wanted else 'is not'} {target}"
    need = max(min_n, least_jobs(alpha))
    blocked = gate([arm], need)
    agree, n, p_hold, p_not = rate_test(arm.kept, target, wanted)
    counted = f"{agree}/{n} deciding jobs: {verb}"
    if blocked:
        return INCONC, f"{counted}; {blocked} (binomial test at {alpha:g})", None, None
    if p_hold < alpha:
        return HOLDS, f"{counted}: {TEST} {p_text(p_hold, alpha)}", p_hold, p_not
    if p_not < alpha:
        return NOT, f"{counted}: the rate is below 1/2, {TEST} {p_text(p_not, alpha)}", p_hold, p_not
    return INCONC, f"{counted}: not shown ({TEST} {p_is(p_hold)})", p_hold, p_not


@register(
    "status",
    required=("where",),
    optional=("is", "is_not", "min_n"),
    min_deciding="5 deciding jobs at alpha 0.05 (exact binomial test; min_n a further floor)",
)
def status(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    target = rule.get("is", rule.get("is_not"))
    label = ctx.label(rule["where"])
    arm = ctx.arm(label, jobs)
    outcome, reason, p_hold, p_not = status_verdict(
        ctx, arm, target, "is" in rule, int(rule.get("min_n", MIN_N)), alpha
    )
    verdict = Verdict(
        outcome=outcome,
        detail=ctx.describe(label, jobs),
        reason=reason,
        test=TEST,
        p_value=p_hold if outcome != NOT else p_not,
        p_against=p_not,
        alpha=alpha,
        groups=[ctx.group_dict(label, jobs)],
    )
    return with_dropped(verdict, [arm])
