"""``above_init``: the trained network beats its own random-init network by more than a margin.

Every job evaluates its initial network (the seed's weights before training, on the same split)
before it trains, so the claim "the method learns" is paired by construction: a one-sided t-test
on the per-job differences ``trained - init`` (flipped for a lower-is-better metric), with the
difference and its CI in the verdict. The split's binomial error needs no separate term: both
numbers of a job come from the same split, and the spread of the differences over seeds carries
what is left of it. A collapsed job decides with the number it reached (collapse is a result, and
usually a low one); the gates are the ones every numeric rule has (:mod:`ssl_bench.report.evidence`).
"""

from __future__ import annotations

from typing import Any

from ssl_bench.report.cells import Job, lower_is_better
from ssl_bench.report.evidence import MIN_SEEDS, gate
from ssl_bench.report.kinds import register, with_dropped
from ssl_bench.report.pair_rules import directional
from ssl_bench.report.statistics import NeedsSeeds, paired
from ssl_bench.report.verdict import INCONC, NA, Context, Verdict, p_text

TEST = "one-sided paired t-test on per-seed differences trained - random init"


@register(
    "above_init",
    required=(),
    optional=("where", "margin"),
    min_deciding=f"{MIN_SEEDS} deciding seeds with a random-init evaluation, fewer than a third of the seeds lost",
)
def above_init(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    margin = float(rule.get("margin", 0) or 0)
    label = ctx.label(rule.get("where"))
    detail, groups = ctx.describe(label, jobs), [ctx.group_dict(label, jobs)]
    if not jobs:
        return Verdict(outcome=NA, detail=detail, reason="jobs not run", alpha=alpha, groups=groups)
    arm = ctx.arm(label, jobs)
    why = gate([arm])
    pairs = [(j.value, j.init) for j in arm.kept if j.value is not None and j.init is not None]
    if why is None and len(pairs) < MIN_SEEDS:
        why = f"{len(pairs)} deciding job(s) have a random-init evaluation, needs >= {MIN_SEEDS}"
    est = None
    if why is None:
        sign = -1.0 if lower_is_better(ctx.study.metric) else 1.0
        try:
            est = paired([sign * (v - i) for v, i in pairs])
        except NeedsSeeds as err:
            why = str(err)
    if est is None:
        out = Verdict(outcome=INCONC, detail=detail, reason=str(why), test=TEST, alpha=alpha, groups=groups)
        return with_dropped(out, [arm])
    init_mean = sum(i for _, i in pairs) / len(pairs)
    diff, text = ctx.diff(est, "trained - init", alpha, margin)
    outcome, p, p_not, what = directional(est, margin, alpha, "trained - init")
    out = Verdict(
        outcome=outcome,
        detail=f"{detail}; random init {ctx.num(init_mean)} (n={len(pairs)}); {text}",
        reason=f"{what}: {TEST} ({len(pairs)} seeds) {p_text(p, alpha)}",
        test=TEST,
        p_value=p,
        p_against=p_not,
        alpha=alpha,
        groups=groups,
        difference=diff,
    )
    return with_dropped(out, [arm])
