"""The paper's claims as rules: one function per kind, registered with its fields, three outcomes.

Each rule ends as ``holds``, ``does not hold`` or ``inconclusive`` by a stated test at level
``alpha`` (0.05 unless the rule or the study sets ``alpha:``), or ``n/a`` when the jobs it needs
were never run. Every verdict carries the numbers it used (n, mean and 95% CI per group), the
difference and its CI, the test (paired or Welch) and its p-value, and how many seeds each group
lost and why. The kinds, one module per family (criteria in each module and in docs/guides/reports.md, "Verdicts"):

- ``status`` (:mod:`~ssl_bench.report.status_rules`): an exact binomial test of the rate;
- ``less``, ``less_or_status``, ``equivalent`` (:mod:`~ssl_bench.report.pair_rules`);
- ``interior_argmax`` / ``interior_argmin`` (:mod:`~ssl_bench.report.interior_rules`);
- ``larger_drop`` (:mod:`~ssl_bench.report.drop_rules`);
- ``above_init`` (:mod:`~ssl_bench.report.init_rules`): a cell above its own random-init network.

What decides and the gates (minimum deciding seeds, lost seeds, paired or unpaired) are in
:mod:`~ssl_bench.report.evidence`.

**The protocol.** A study's ``seed_sets`` (``conf/study/<study>.yaml``) state its seeds before it
runs. The verdict is one test over all of them (the sets pooled); a seed it names without a job is
"not run", a seed outside it is left out. With several sets, each set's own outcome is shown beside
the verdict as a consistency check, not as the rule.

**Never pooled.** The table's cells are the combinations of the study's rows and columns keys. A
rule compares along the keys it names; for every other table key it is evaluated per cell and the
sub-verdicts combine (:func:`~ssl_bench.report.verdict.combine`): holds when every cell holds and
none is n/a, does not hold when a cell's "does not hold" survives Holm over the cells, else
inconclusive. Adding a kind is one decorated function in a family module imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ssl_bench.report import (  # noqa: F401  (registers the kinds)
    drop_rules,
    init_rules,
    interior_rules,
    pair_rules,
    status_rules,
)
from ssl_bench.report.cells import Job, group
from ssl_bench.report.kinds import COMMON, RULES, Kind, register
from ssl_bench.report.values import nkey, order_keys, seed_label
from ssl_bench.report.verdict import NA, Context, Verdict, combine

if TYPE_CHECKING:
    from ssl_bench.report.block import Study

__all__ = ["COMMON", "RULES", "Kind", "Verdict", "evaluate", "evaluate_rules", "register"]


def evaluate_rules(study: Study, jobs: Sequence[Job]) -> list[Verdict]:
    """One verdict per rule of the study, in the study's order; with several seed sets, each set's
    own outcome beside it (a consistency check)."""
    ctx = Context(study, jobs)
    verdicts = [evaluate(rule, ctx) for rule in study.rules]
    if len(study.seed_sets) > 1:
        for seeds in study.seed_sets:
            mine = [j for j in jobs if str(j.seed) in seeds]
            part = Context(replace(study, seed_sets=(seeds,)), mine)
            for verdict, rule in zip(verdicts, study.rules):
                sub = evaluate(rule, part)
                verdict.consistency.append({"seeds": seed_label(seeds), "outcome": sub.outcome, "p_value": sub.p_value})
    return verdicts


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
