"""The paper's claims as rules: one function per kind, registered with its fields, three outcomes.

Each rule ends as ``holds``, ``does not hold`` or ``inconclusive`` by a stated test at level
``alpha`` (0.05 unless the rule or the study sets ``alpha:``), or ``n/a`` when the jobs it needs
were never run. Every verdict carries the numbers it used (n, mean and 95% CI per group), the
difference and its CI, the test and its p-value. Criteria per kind (also in README "Reports"):

- ``status`` (``where``; ``is`` or ``is_not``; ``min_n`` 3): holds when every decided job (not failed
  or running, unless that is the status named) matches and there are >= ``min_n`` of them; does
  not hold when most decided jobs contradict; otherwise inconclusive.
- ``less`` (``a``, ``b``, ``margin`` 0): holds when ``mean(b) - mean(a) > margin`` by a one-sided Welch
  t-test; does not hold when ``mean(b) - mean(a) < margin`` by the opposite one-sided test.
- ``less_or_status`` (+ ``or_status``, ``min_n``): holds as ``less``, or when every decided job of
  ``a`` (>= ``min_n``) has status ``or_status``.
- ``interior_argmax`` / ``interior_argmin`` (``axis``, ``where``): holds when the best inner value
  beats each end (one-sided Welch, Holm over the two ends); does not hold when an end beats every
  inner value (Holm over the inner values).
- ``larger_drop`` (``axis``, ``base``, ``ablated``, ``compare``, ``more``, ``less``, ``margin`` 0):
  D = (base - ablated | more) - (base - ablated | less), variance the sum of the four cells' variances
  of the mean; holds when D > margin significantly and the premise holds (both base cells above
  the random-init network, neither ablated cell collapsed or at the random-init level); does not
  hold when D < margin significantly.
- ``equivalent`` (``a``, ``b``, ``margin`` > 0): TOST; holds when ``|mean(a) - mean(b)| < margin`` by
  two one-sided tests; does not hold when the 95% CI of the difference lies outside
  ``[-margin, margin]``.

**Never pooled.** The table's cells are the combinations of the study's rows and columns keys. A
rule compares along the keys it names; for every other table key it is evaluated per cell and the
sub-verdicts combine: holds when every cell holds, does not hold when any cell does not, else
inconclusive. A cell with fewer than 2 numbers has no seed variance: its comparisons are
inconclusive ("needs >= 2 seeds per cell"). Adding a kind is one decorated function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssl_bench.report.cells import INCONCLUSIVE, Job, distinct, group, init_summary, lower_is_better, runs_text, select
from ssl_bench.report.statistics import Estimate, NeedsSeeds, Summary, contrast, holm, welch
from ssl_bench.report.values import MISSING, config_value, flatten, nkey, order, order_keys, p_is, same, short_key, show
from ssl_bench.report.verdict import HOLDS, INCONC, NA, NOT, Context, Verdict, combine, p_text as _p

if TYPE_CHECKING:
    from ssl_bench.report.block import Study

COMMON = ("kind", "text", "note", "alpha", "full_variant_only")  # fields every kind accepts
MIN_N = 3
NEEDS_SEEDS = "needs >= 2 seeds per cell"


# --- the registry ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    fn: Callable[[dict[str, Any], Context, list[Job], float], Verdict]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    bound: Callable[[dict[str, Any]], set[str]]  # keys the rule compares along (the rest: per cell)
    scope: Callable[[dict[str, Any], list[Job]], list[Job]]  # the jobs the rule looks at


RULES: dict[str, Kind] = {}


def _keys(*maps: Any) -> set[str]:
    return {k for m in maps if isinstance(m, dict) for k in flatten(m)}


def _where(rule: dict[str, Any], jobs: list[Job]) -> list[Job]:
    return select(jobs, rule.get("where"))


def _pair_scope(rule: dict[str, Any], jobs: list[Job]) -> list[Job]:
    scope = _where(rule, jobs)
    a, b = select(scope, rule["a"]), select(scope, rule["b"])
    seen = {id(j) for j in a}
    return a + [j for j in b if id(j) not in seen]


def register(
    name: str,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    bound: Callable[[dict[str, Any]], set[str]] | None = None,
    scope: Callable[[dict[str, Any], list[Job]], list[Job]] = _where,
) -> Callable:
    """Register a rule kind: ``fn(rule, ctx, jobs, alpha) -> Verdict`` on the jobs of one cell."""

    def deco(fn: Callable) -> Callable:
        RULES[name] = Kind(fn, required, optional, bound or (lambda r: _keys(r.get("where"))), scope)
        return fn

    return deco


def evaluate_rules(study: Study, jobs: Sequence[Job]) -> list[Verdict]:
    """One verdict per rule of the study, in the study's order."""
    ctx = Context(study, jobs)
    return [evaluate(rule, ctx) for rule in study.rules]


def evaluate(rule: dict[str, Any], ctx: Context) -> Verdict:
    """A rule on the study's jobs: per cell of the table keys it does not name, then combined."""
    kind = RULES[rule["kind"]]
    alpha = float(rule.get("alpha", ctx.study.alpha))
    scope = kind.scope(rule, ctx.jobs)
    free = [k for k in ctx.keys if k not in kind.bound(rule)]
    parts = group(scope, free)
    ranked = {nkey(v): i for i, v in enumerate(order_keys([v for v, _ in parts]))}
    parts.sort(key=lambda part: ranked[nkey(part[0])])  # the table's order
    if not parts:
        verdict = Verdict(outcome=NA, detail="no job matches the rule", alpha=alpha)
    elif len(parts) == 1:
        verdict = kind.fn(rule, ctx, parts[0][1], alpha)
    else:
        subs, owners = [], {}
        for values, jobs in parts:
            sub = kind.fn(rule, ctx, jobs, alpha)
            sub.scope = ctx.cell_label(free, values)
            prints = {j.fingerprint for j in jobs}
            earlier = owners.get(frozenset(prints)) if None not in prints else None
            if earlier:
                sub.scope += f" (the same runs as {earlier}: identical results)"
            owners.setdefault(frozenset(prints), ctx.cell_label(free, values))
            subs.append(sub)
        verdict = combine(subs, alpha)
    verdict.kind, verdict.text, verdict.rule = rule["kind"], str(rule.get("text") or rule["kind"]), dict(rule)
    return verdict


# --- status ---------------------------------------------------------------------------------------
def _decided(jobs: Sequence[Job], status: str) -> list[Job]:
    """The jobs that say something about a status claim (each computation once)."""
    return [j for j in distinct(jobs) if j.status not in INCONCLUSIVE or j.status == status]


@register("status", required=("where",), optional=("is", "is_not", "min_n"))
def status(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    target = rule.get("is", rule.get("is_not"))
    wanted = "is" in rule
    min_n = int(rule.get("min_n", MIN_N))
    label = ctx.label(rule["where"])
    decided = _decided(jobs, target)
    agree = sum((j.status == target) == wanted for j in decided)
    against = len(decided) - agree
    verb = f"{'is' if wanted else 'is not'} {target}"
    if agree == len(decided) and len(decided) >= min_n:
        outcome, reason = HOLDS, f"{agree}/{len(decided)} decided jobs: {verb}"
    elif decided and 2 * against > len(decided):
        outcome, reason = NOT, f"{against}/{len(decided)} decided jobs contradict ({verb} in {agree})"
    elif not decided:
        outcome, reason = INCONC, "no decided job (failed or still running)"
    elif against:
        outcome, reason = INCONC, f"mixed: {agree}/{len(decided)} decided jobs: {verb}"
    else:
        outcome, reason = INCONC, f"{agree}/{len(decided)} decided jobs: {verb}; needs >= {min_n}"
    return Verdict(
        outcome=outcome,
        detail=ctx.describe(label, jobs),
        reason=reason,
        test="status count",
        alpha=alpha,
        groups=[ctx.group_dict(label, jobs)],
    )


# --- less, less_or_status, equivalent: two groups -------------------------------------------------
def _pair_bound(rule: dict[str, Any]) -> set[str]:
    return _keys(rule.get("a"), rule.get("b"), rule.get("where"))


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


def _less(rule: dict[str, Any], ctx: Context, a: list[Job], b: list[Job], alpha: float) -> Verdict:
    margin = float(rule.get("margin", 0) or 0)
    detail, groups = _two(rule, ctx, a, b)
    test = "one-sided Welch t-test"
    if not a or not b:
        return Verdict(outcome=NA, detail=detail, reason="jobs not run", alpha=alpha, groups=groups)
    try:
        est = welch(ctx.summary(b), ctx.summary(a))
    except NeedsSeeds:
        return Verdict(outcome=INCONC, detail=detail, reason=NEEDS_SEEDS, test=test, alpha=alpha, groups=groups)
    diff, text = ctx.diff(est, "b - a", alpha, margin)
    p_hold, p_not = est.p_greater(margin), est.p_less(margin)
    if p_hold < alpha:
        outcome, p, why = HOLDS, p_hold, f"b - a > {margin:g}"
    elif p_not < alpha:
        outcome, p, why = NOT, p_not, f"b - a < {margin:g}"
    else:
        outcome, p, why = INCONC, p_hold, f"b - a > {margin:g} not shown"
    return Verdict(
        outcome=outcome,
        detail=f"{detail}; {text}",
        reason=f"{why}: {test} {_p(p, alpha)}",
        test=test,
        p_value=p,
        alpha=alpha,
        groups=groups,
        difference=diff,
    )


@register("less", required=("a", "b"), optional=("margin", "where"), bound=_pair_bound, scope=_pair_scope)
def less(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _pairwise(rule, ctx, jobs, alpha, _less)


def _less_or_status(rule: dict[str, Any], ctx: Context, a: list[Job], b: list[Job], alpha: float) -> Verdict:
    status_, min_n = rule["or_status"], int(rule.get("min_n", MIN_N))
    decided = _decided(a, status_)
    if len(decided) >= min_n and all(j.status == status_ for j in decided):
        detail, groups = _two(rule, ctx, a, b)
        return Verdict(
            outcome=HOLDS,
            detail=detail,
            test="status count",
            alpha=alpha,
            groups=groups,
            reason=f"every decided job of a ({len(decided)}) is {status_}",
        )
    return _less(rule, ctx, a, b, alpha)


@register(
    "less_or_status",
    required=("a", "b", "or_status"),
    optional=("margin", "min_n", "where"),
    bound=_pair_bound,
    scope=_pair_scope,
)
def less_or_status(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _pairwise(rule, ctx, jobs, alpha, _less_or_status)


def _equivalent(rule: dict[str, Any], ctx: Context, a: list[Job], b: list[Job], alpha: float) -> Verdict:
    margin = float(rule["margin"])
    detail, groups = _two(rule, ctx, a, b)
    test = "TOST (two one-sided Welch t-tests)"
    if not a or not b:
        return Verdict(outcome=NA, detail=detail, reason="jobs not run", alpha=alpha, groups=groups)
    try:
        est = welch(ctx.summary(a), ctx.summary(b))
    except NeedsSeeds:
        return Verdict(outcome=INCONC, detail=detail, reason=NEEDS_SEEDS, test=test, alpha=alpha, groups=groups)
    diff, text = ctx.diff(est, "a - b", alpha, margin)
    p = est.tost(margin)
    lo, hi = est.ci(alpha)
    if p < alpha:
        outcome, why = HOLDS, f"|a - b| < {margin:g}: {test} {_p(p, alpha)}"
    elif lo > margin or hi < -margin:
        outcome, why = NOT, f"the CI lies outside [-{margin:g}, {margin:g}] ({test} {_p(p, alpha)})"
    else:
        outcome, why = INCONC, f"|a - b| < {margin:g} not shown: {test} {_p(p, alpha)}"
    return Verdict(
        outcome=outcome,
        detail=f"{detail}; {text}",
        reason=why,
        test=test,
        p_value=p,
        alpha=alpha,
        groups=groups,
        difference=diff,
    )


@register("equivalent", required=("a", "b", "margin"), optional=("where",), bound=_pair_bound, scope=_pair_scope)
def equivalent(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _pairwise(rule, ctx, jobs, alpha, _equivalent)


# --- interior optimum -----------------------------------------------------------------------------
def _axis_bound(rule: dict[str, Any]) -> set[str]:
    return {rule["axis"]} | _keys(rule.get("where"))


def _axis_scope(rule: dict[str, Any], jobs: list[Job]) -> list[Job]:
    return [j for j in _where(rule, jobs) if config_value(j.config, rule["axis"]) is not MISSING]


def _interior(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float, sign: float) -> Verdict:
    """sign +1: higher is better (argmax), -1: lower is better (argmin)."""
    axis = rule["axis"]
    points = order(config_value(j.config, axis) for j in jobs)
    cells = [[j for j in jobs if same(config_value(j.config, axis), p)] for p in points]
    sums = [ctx.summary(c) for c in cells]
    name = short_key(axis, list(dict.fromkeys(ctx.keys + [axis])))
    scope = f" ({ctx.label(rule['where'])})" if rule.get("where") else ""
    parts = [
        f"{show(p)}: {ctx.stats(s)}" + ("" if all(j.status == "finished" for j in c) else f" [{runs_text(c)}]")
        for p, s, c in zip(points, sums, cells)
    ]
    detail = f"{ctx.study.short} by {name}{scope}: " + ", ".join(parts)
    groups = [ctx.group_dict(f"{name}={show(p)}", c) for p, c in zip(points, cells)]
    test = "one-sided Welch t-tests, Holm-corrected"
    base = dict(detail=detail, alpha=alpha, groups=groups)
    if len(points) < 3:
        return Verdict(outcome=NA, reason=f"needs >= 3 values of {name}", **base)
    if any(s.mean is None for s in sums):
        return Verdict(outcome=INCONC, reason=f"a value of {name} has no number", test=test, **base)
    inner = range(1, len(points) - 1)
    best = max(inner, key=lambda i: sign * sums[i].mean)

    def beats(i: int, k: int) -> Estimate:  # sign * (mean_i - mean_k): > 0 when i is better
        return contrast([(sign, sums[i]), (-sign, sums[k])])

    try:
        ests = [beats(best, e) for e in (0, len(points) - 1)]
    except NeedsSeeds:
        return Verdict(outcome=INCONC, reason=NEEDS_SEEDS, test=test, **base)
    adjusted = holm([e.p_greater(0) for e in ests])
    p_hold = max(adjusted)
    ends = f"{show(points[0])} ({p_is(adjusted[0])}) and {show(points[-1])} ({p_is(adjusted[1])})"
    if p_hold < alpha:
        return Verdict(
            outcome=HOLDS,
            reason=f"best inner {name}={show(points[best])} beats {ends}: {test}, {_p(p_hold, alpha)}",
            test=test,
            p_value=p_hold,
            **base,
        )
    for end in (0, len(points) - 1):
        try:
            p_end = max(holm([beats(end, i).p_greater(0) for i in inner]))
        except NeedsSeeds:
            continue
        if p_end < alpha:
            return Verdict(
                outcome=NOT,
                reason=f"the end {name}={show(points[end])} beats every inner value: {test}, {_p(p_end, alpha)}",
                test=test,
                p_value=p_end,
                **base,
            )
    return Verdict(
        outcome=INCONC,
        reason=f"best inner {name}={show(points[best])} vs {ends}: not shown, {_p(p_hold, alpha)}",
        test=test,
        p_value=p_hold,
        **base,
    )


@register("interior_argmax", required=("axis",), optional=("where",), bound=_axis_bound, scope=_axis_scope)
def interior_argmax(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _interior(rule, ctx, jobs, alpha, +1.0)


@register("interior_argmin", required=("axis",), optional=("where",), bound=_axis_bound, scope=_axis_scope)
def interior_argmin(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    return _interior(rule, ctx, jobs, alpha, -1.0)


# --- larger drop ----------------------------------------------------------------------------------
def _drop_scope(rule: dict[str, Any], jobs: list[Job]) -> list[Job]:
    return [
        j
        for j in _where(rule, jobs)
        if any(same(config_value(j.config, rule["compare"]), rule[s]) for s in ("more", "less"))
        and any(same(config_value(j.config, rule["axis"]), rule[e]) for e in ("base", "ablated"))
    ]


@register(
    "larger_drop",
    required=("axis", "base", "ablated", "compare", "more", "less"),
    optional=("margin", "where"),
    bound=lambda r: {r["axis"], r["compare"]} | _keys(r.get("where")),
    scope=_drop_scope,
)
def larger_drop(rule: dict[str, Any], ctx: Context, jobs: list[Job], alpha: float) -> Verdict:
    axis, compare = rule["axis"], rule["compare"]
    margin = float(rule.get("margin", 0) or 0)
    cells = {
        (side, end): select(jobs, {compare: rule[side], axis: rule[end]})
        for side in ("more", "less")
        for end in ("base", "ablated")
    }
    sums = {k: ctx.summary(v) for k, v in cells.items()}
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
    test = "one-sided Welch t-test on the difference of drops"
    base = dict(alpha=alpha, groups=groups)
    if any(not v for v in cells.values()):
        return Verdict(outcome=NA, detail=detail, reason="jobs not run", **base)
    try:
        est = contrast(
            [
                (1.0, sums[("more", "base")]),
                (-1.0, sums[("more", "ablated")]),
                (-1.0, sums[("less", "base")]),
                (1.0, sums[("less", "ablated")]),
            ]
        )
    except NeedsSeeds:
        return Verdict(outcome=INCONC, detail=detail, reason=NEEDS_SEEDS, test=test, **base)
    diff, text = ctx.diff(est, "D = drop(more) - drop(less)", alpha, margin)
    premise = _premise(rule, ctx, jobs, cells, sums, alpha)
    detail = f"{detail}; {text}"
    p_hold, p_not = est.p_greater(margin), est.p_less(margin)
    if p_hold < alpha and premise is None:
        return Verdict(
            outcome=HOLDS,
            detail=detail,
            reason=f"D > {margin:g}: {test} {_p(p_hold, alpha)}; premise holds",
            test=test,
            p_value=p_hold,
            difference=diff,
            **base,
        )
    if p_not < alpha:
        return Verdict(
            outcome=NOT,
            detail=detail,
            reason=f"D < {margin:g}: {test} {_p(p_not, alpha)}",
            test=test,
            p_value=p_not,
            difference=diff,
            **base,
        )
    shown = f"D > {margin:g}{'' if p_hold < alpha else ' not shown'}: {_p(p_hold, alpha)}"
    reason = shown + (f"; premise does not hold: {premise}" if premise else "")
    return Verdict(outcome=INCONC, detail=detail, reason=reason, test=test, p_value=p_hold, difference=diff, **base)


def _premise(
    rule: dict[str, Any],
    ctx: Context,
    jobs: list[Job],
    cells: dict[tuple[str, str], list[Job]],
    sums: dict[tuple[str, str], Summary],
    alpha: float,
) -> str | None:
    """None when the premise holds, else what fails: both base cells significantly better than the
    random-init network, neither ablated cell collapsed or at the random-init level."""
    init = init_summary(jobs, ctx.study.metric)
    if init is None:
        return "no random-init evaluation in the records"
    sign = -1.0 if lower_is_better(ctx.study.metric) else 1.0
    problems = []
    for (side, end), s in sums.items():
        name = f"{show(rule[side])} {show(rule[end])}"
        if end == "ablated" and any(j.status == "collapsed" for j in cells[(side, end)]):
            problems.append(f"{name} collapsed")
            continue
        try:
            p = contrast([(sign, s), (-sign, init)]).p_greater(0)
        except NeedsSeeds:
            problems.append(f"{name} vs random init: {NEEDS_SEEDS}")
            continue
        if p >= alpha:
            problems.append(f"{name} not above random init {ctx.num(init.mean)} ({p_is(p)})")
    return "; ".join(problems) or None
