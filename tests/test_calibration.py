"""Calibration of the verdicts: each rule kind simulated under its boundary null (no effect beyond
the claim's edge, with collapsed, diverged and failed jobs mixed in) must say "holds" and "does not
hold" falsely at most at alpha, within a binomial confidence interval over enough simulations to
tell 0.05 from 0.10; and under effects of 1 and 1.5 SD it must find them about as often as a single
pooled test can. Everything is seeded, so the rates are the same on every run.

The power table in docs/guides/reports.md ("Verdicts") is printed by ``python -m tests.test_calibration``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ssl_bench.report.block import Study
from ssl_bench.report.cells import Job
from ssl_bench.report.rules import evaluate_rules

ALPHA = 0.05
SIMS = 400  # at a true rate of 0.10 the 99% lower bound is above 0.05: a rate of 0.10 fails
SEEDS = (0, 1, 2, 10, 11, 12)  # the studies' protocol: two sets of 3, pooled
SETS = [[0, 1, 2], [10, 11, 12]]
SD = 2.0  # a job's standard deviation: half shared by the seed (initial network, data order), half its own
SHARED, OWN = SD / np.sqrt(2), SD / np.sqrt(2)
MIX = {"diverged": 0.03, "failed": 0.03, "collapsed": 0.03}  # per job, at random


def _job(rng, cfg, seed, mean, shared, mix=True) -> Job:
    u = rng.random()
    status = "finished"
    if mix:
        edge = 0.0
        for name, p in MIX.items():
            edge += p
            if u < edge:
                status = name
                break
    value = None if status in ("diverged", "failed") else float(mean + shared[seed] + rng.normal(0, OWN))
    return Job(run=f"{cfg}-{seed}", status=status, config=cfg, seed=seed, value=value)


def _cells(rng, means: dict, key="method.tau_base", seeds=SEEDS, mix=True, collapse=None, extra=None) -> list[Job]:
    """Jobs for each axis value in ``means``; ``collapse``: value -> probability that a job collapses."""
    shared = {s: rng.normal(0, SHARED) for s in seeds}
    jobs = []
    for point, mean in means.items():
        for s in seeds:
            cfg = {"method": {"tau_base": point, **(extra or {})}}
            if key != "method.tau_base":
                cfg = {"method": {"name": point[0]}, "augment": {"name": point[1]}}
            j = _job(rng, cfg, s, mean, shared, mix)
            if collapse and rng.random() < collapse.get(point, 0.0):
                j.status = "collapsed"
            jobs.append(j)
    return jobs


def _study(rule, rows=("method.tau_base",), columns=(), seed_sets=SETS) -> Study:
    block = {"name": "sim", "rows": list(rows), "columns": list(columns), "rules": [rule]}
    if seed_sets:
        block["seed_sets"] = seed_sets
    return Study.from_block(block)


LESS = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.9}, "margin": 1.0}
STATUS = {"kind": "status", "where": {"method.tau_base": 0}, "is": "collapsed"}
OR_STATUS = {**LESS, "kind": "less_or_status", "or_status": "collapsed"}
INTERIOR = {"kind": "interior_argmax", "axis": "method.tau_base"}
EQUIV = {"kind": "equivalent", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.9}, "margin": 2 * SD}
DROP = {
    "kind": "larger_drop",
    "axis": "augment.name",
    "base": "full",
    "ablated": "no_color",
    "compare": "method.name",
    "more": "simclr",
    "less": "byol",
}


ABOVE = {"kind": "above_init", "where": {"method.tau_base": 1}, "margin": 1.0}


def _init_jobs(rng, e, seeds=SEEDS):
    """One cell whose trained mean is init + margin + e SD; each job's own random-init evaluation."""
    jobs = _cells(rng, {1: 30.0 + 1.0 + e * SD}, seeds=seeds)
    for j in jobs:
        j.init = 30.0 + rng.normal(0, SD / 2)
    return jobs


def _drop_jobs(rng, d, seeds=SEEDS):
    means = {
        ("simclr", "full"): 60.0,
        ("simclr", "no_color"): 50.0 - d,
        ("byol", "full"): 60.0,
        ("byol", "no_color"): 50.0,
    }
    jobs = _cells(rng, means, key="drop", seeds=seeds)
    for j in jobs:
        j.init = 30.0 + rng.normal(0, 0.5)  # the random-init network, far below: the premise holds
    return jobs


# scenario: (rule, study kwargs, jobs(rng, effect in SD)) -- effect 0 is the boundary null
SCENARIOS = {
    "less": (LESS, {}, lambda rng, e: _cells(rng, {1: 50.0, 0.9: 50.0 + 1.0 + e * SD})),
    "less, per cell (3 cells)": (
        LESS,
        {"rows": ("method.tau_base", "method.symmetric")},
        lambda rng, e: [
            j for k in (0, 1, 2) for j in _cells(rng, {1: 50.0, 0.9: 50.0 + 1.0 + e * SD}, extra={"symmetric": k})
        ],
    ),
    "less_or_status": (
        OR_STATUS,
        {},
        lambda rng, e: _cells(rng, {1: 50.0, 0.9: 50.0 + 1.0 + e * SD}, collapse={1: 0.5} if e == 0 else None),
    ),
    # a status claim's effect is a rate: 1/2 (the null), 0.8 at "1 SD", 0.95 at "1.5 SD"
    "status": (STATUS, {}, lambda rng, e: _cells(rng, {0: 20.0}, collapse={0: 0.5 + 0.3 * e}, mix=False)),
    "interior_argmax": (
        INTERIOR,
        {},
        lambda rng, e: _cells(rng, {0.0: 50.0, 0.5: 50.0 + e * SD, 0.7: 50.0 + e * SD, 1.0: 40.0}),
    ),
    "larger_drop": (
        DROP,
        {"rows": ("augment.name",), "columns": ("method.name",)},
        lambda rng, e: _drop_jobs(rng, e * SD),
    ),
    # equivalence within 2 SD: the null is a difference of exactly the margin, the effects 1 and 0.5 SD
    "equivalent": (EQUIV, {}, lambda rng, e: _cells(rng, {1: 50.0, 0.9: 50.0 + 2 * SD - e * SD})),
    "above_init": (ABOVE, {}, _init_jobs),
}


def rates(name: str, effect: float, sims: int = SIMS, seed_sets=SETS, rng_seed: int = 0) -> dict[str, float]:
    """Share of simulations per outcome, and per seed set on its own ("sets both hold")."""
    rule, kw, make = SCENARIOS[name]
    study = _study(rule, seed_sets=seed_sets, **kw)
    rng = np.random.default_rng(rng_seed)
    counts = {"holds": 0, "does not hold": 0, "inconclusive": 0, "n/a": 0, "both sets hold": 0}
    for _ in range(sims):
        v = evaluate_rules(study, make(rng, effect))[0]
        counts[v.outcome] += 1
        counts["both sets hold"] += bool(v.consistency) and all(c["outcome"] == "holds" for c in v.consistency)
    return {k: n / sims for k, n in counts.items()}


def _not_above_alpha(rate: float, sims: int = SIMS) -> bool:
    """The rate is not significantly above alpha (one-sided exact binomial test at 0.01)."""
    return stats.binomtest(round(rate * sims), sims, ALPHA, alternative="greater").pvalue > 0.01


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_false_verdicts_at_the_boundary_null_are_at_most_alpha(name):
    r = rates(name, 0.0)
    assert _not_above_alpha(r["holds"]), (name, r)
    assert _not_above_alpha(r["does not hold"]), (name, r)


@pytest.mark.parametrize("effect", [1.0, 1.5])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_false_does_not_hold_under_a_real_effect_is_at_most_alpha(name, effect):
    r = rates(name, effect, sims=200, rng_seed=1)
    assert _not_above_alpha(r["does not hold"], 200), (name, effect, r)
    assert r["holds"] > ALPHA, (name, effect, r)  # the effect is found more often than the null's rate


def test_a_rate_of_ten_percent_would_fail_the_check():
    assert not _not_above_alpha(0.10) and _not_above_alpha(0.05)


def test_the_pooled_test_is_more_powerful_than_both_sets_agreeing():
    r = rates("less", 1.5, sims=200)
    # one pooled paired test over 6 seeds finds a 1.5 SD effect about 3 times in 4; requiring both
    # sets of 3 to hold finds it far less often (and drops to ~alpha^2 under the null)
    assert r["holds"] > 0.65 and r["holds"] > r["both sets hold"] + 0.4, r
    assert r["does not hold"] == 0.0


def power_table(sims: int = SIMS) -> str:
    head = ["kind", "null: false holds", "null: false does not hold", "holds at 1 SD", "holds at 1.5 SD"]
    head.append("both sets hold at 1.5 SD")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in SCENARIOS:
        null, one, big = rates(name, 0.0, sims), rates(name, 1.0, sims), rates(name, 1.5, sims)
        lines.append(
            f"| {name} | {null['holds']:.3f} | {null['does not hold']:.3f} | {one['holds']:.2f} | {big['holds']:.2f} "
            f"| {big['both sets hold']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(power_table())
