"""Each rule kind's three outcomes on synthetic jobs with known numbers, the evidence a verdict needs
(deciding seeds, dropped seeds, paired or unpaired tests), per-cell evaluation, the audit's cases,
and the one-line errors for rules that cannot be evaluated or cannot fail."""

import pytest
from scipy import stats

from ssl_bench.report.block import Study, StudyError
from ssl_bench.report.cells import Job, job_from_record
from ssl_bench.report.rules import RULES, evaluate_rules

A6 = [40.0, 42.5, 41.0, 43.5, 39.5, 42.0]  # one arm over seeds 0-5: the seed-to-seed spread is shared
D6 = [10.2, 9.1, 10.8, 9.7, 10.4, 9.5]  # per-seed differences of a second arm


def _plus(xs, ds):
    return [round(x + d, 6) for x, d in zip(xs, ds)]


def _jobs(*specs) -> list[Job]:
    """(status, value %, config[, seed[, init %]]) -> jobs; value None = no number."""
    out = []
    for i, spec in enumerate(specs):
        status, value, cfg, *rest = spec
        seed = rest[0] if rest else i
        init = rest[1] if len(rest) > 1 else None
        out.append(Job(run=f"j{i}", status=status, config=cfg, seed=seed, value=value, init=init))
    return out


def _verdict(rule: dict, jobs: list[Job], rows=("method.tau_base",), columns=(), metric="knn_acc", **block):
    study = Study.from_block(
        {"name": "s", "rows": list(rows), "columns": list(columns), "metric": metric, "rules": [rule], **block}
    )
    return evaluate_rules(study, jobs)[0]


def _tau(t, **extra) -> dict:
    return {"method": {"name": "byol", "tau_base": t, **extra}}


def _cell(t, values, status="finished", seeds=None, **extra):
    seeds = range(len(values)) if seeds is None else seeds
    return [(status, v, _tau(t, **extra), seed) for seed, v in zip(seeds, values)]


# --- status ---------------------------------------------------------------------------------------
COLLAPSES = {"kind": "status", "where": {"method.tau_base": 0}, "is": "collapsed"}


def test_status_is_an_exact_binomial_test_with_five_deciding_jobs_at_least():
    v = _verdict(COLLAPSES, _jobs(*_cell(0, A6, "collapsed")))
    assert v.outcome == "holds" and v.p_value == pytest.approx(0.5**6) and "exact binomial" in v.test
    assert v.reason.startswith("6/6 deciding jobs: is collapsed") and v.reason.endswith("no seed dropped")
    assert _verdict(COLLAPSES, _jobs(*_cell(0, A6[:5], "collapsed"))).outcome == "holds"  # 0.5^5 = 0.031
    four = _verdict(COLLAPSES, _jobs(*_cell(0, A6[:4], "collapsed")))  # 0.5^4 = 0.0625: never decides
    assert four.outcome == "inconclusive" and "4 deciding seeds, needs >= 5" in four.reason
    assert _verdict({**COLLAPSES, "min_n": 6}, _jobs(*_cell(0, A6[:5], "collapsed"))).outcome == "inconclusive"


def test_status_does_not_hold_only_when_the_rate_is_shown_below_one_half():
    v = _verdict(COLLAPSES, _jobs(*_cell(0, A6)))
    assert v.outcome == "does not hold" and v.p_value == pytest.approx(0.5**6) and v.p_against == v.p_value
    mixed = _verdict(COLLAPSES, _jobs(*_cell(0, A6[:3], "collapsed"), *_cell(0, A6[3:], seeds=[3, 4, 5])))
    assert mixed.outcome == "inconclusive" and mixed.reason.startswith("3/6 deciding jobs")
    assert _verdict(COLLAPSES, _jobs(("finished", 30.0, _tau(0.99)))).outcome == "n/a"  # never run
    not_rule = {"kind": "status", "where": {"method.tau_base": 0.99}, "is_not": "collapsed"}
    assert _verdict(not_rule, _jobs(*_cell(0.99, A6))).outcome == "holds"
    assert _verdict(not_rule, _jobs(*_cell(0.99, A6, "collapsed"))).outcome == "does not hold"


def test_audit_one_finished_and_two_failed_jobs_decide_nothing():
    jobs = _jobs(("finished", 30.0, _tau(0), 0), ("failed", None, _tau(0), 1), ("failed", None, _tau(0), 2))
    v = _verdict(COLLAPSES, jobs)
    assert v.outcome == "inconclusive" and "1 deciding seed, needs >= 5" in v.reason
    assert "dropped: tau_base=0: 2 of 3 (failed 2)" in v.reason


def test_audit_diverged_jobs_never_decide_a_status():
    rule = {"kind": "status", "where": {"method.tau_base": 0}, "is_not": "collapsed"}
    v = _verdict(rule, _jobs(*_cell(0, [None] * 3, "diverged")))
    assert v.outcome == "inconclusive" and "diverged 3" in v.reason
    # six seeds, two diverged: four decide (too few), and a third of the seeds is lost
    v = _verdict(rule, _jobs(*_cell(0, A6[:4]), *_cell(0, [None, None], "diverged", seeds=[4, 5])))
    assert v.outcome == "inconclusive" and "diverged 2" in v.reason
    with pytest.raises(StudyError, match="status 'diverged' never decides"):
        _study({"kind": "status", "where": {"method.tau_base": 0}, "is": "diverged"})


def test_status_is_evaluated_per_cell_with_holm_for_does_not_hold():
    rule = {"kind": "status", "where": {"method.name": "byol"}, "is_not": "collapsed"}
    jobs = _jobs(*_cell(0.9, A6), *_cell(0.99, A6, "collapsed"))
    v = _verdict(rule, jobs)
    assert v.outcome == "does not hold" and [c.scope for c in v.cells] == ["tau_base=0.9", "tau_base=0.99"]
    assert [c.outcome for c in v.cells] == ["holds", "does not hold"]
    assert v.reason.startswith("per cell: 1 holds, 1 does not hold; does not hold in some cell: Holm over 2 cells")
    assert v.p_against == pytest.approx(2 * 0.5**6)
    # five collapsed seeds: p = 0.031 in the cell, 0.0625 after Holm over the two cells: not shown
    five = _verdict(rule, _jobs(*_cell(0.9, A6), *_cell(0.99, A6[:5], "collapsed")))
    assert five.cells[1].outcome == "does not hold" and five.outcome == "inconclusive"
    assert five.line().startswith("? status: inconclusive (per cell: 1 holds, 1 does not hold;")


# --- less -----------------------------------------------------------------------------------------
LESS = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}, "margin": 2}


def test_less_is_paired_on_per_seed_differences_when_the_arms_share_seeds():
    b = _plus(A6, D6)
    v = _verdict(LESS, _jobs(*_cell(1, A6), *_cell(0.99, b)))
    assert v.outcome == "holds" and v.test == "one-sided paired t-test on per-seed differences (6 shared seeds)"
    ref = stats.ttest_rel([x - 2 for x in b], A6, alternative="greater")
    assert v.p_value == pytest.approx(ref.pvalue) and v.difference["df"] == pytest.approx(5.0)
    assert v.difference["estimate"] == pytest.approx(sum(D6) / 6)
    assert v.reason.endswith("no seed dropped")


def test_less_is_welch_when_the_arms_share_no_seed():
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0]
    rule = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}}
    v = _verdict(rule, _jobs(*_cell(1, a), *_cell(0.99, b, seeds=[10, 11, 12, 13])))
    assert v.test == "one-sided Welch t-test (unpaired)"
    assert v.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False, alternative="greater").pvalue)
    assert v.outcome == "holds" and v.p_value == pytest.approx(0.04996, abs=1e-4)
    assert _verdict({**rule, "alpha": 0.01}, _jobs(*_cell(1, a), *_cell(0.99, b, seeds=[10, 11, 12, 13]))).outcome == (
        "inconclusive"
    )


def test_pairing_keeps_the_power_that_the_shared_seed_spread_would_hide():
    a = [30.0, 45.0, 38.0, 52.0, 41.0, 35.0]  # a large seed-to-seed spread, shared by both arms
    b = _plus(a, [1.6, 0.9, 1.4, 1.1, 1.8, 1.2])
    rule = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}}
    v = _verdict(rule, _jobs(*_cell(1, a), *_cell(0.99, b)))
    assert v.outcome == "holds" and v.p_value < 1e-3
    assert stats.ttest_ind(b, a, equal_var=False, alternative="greater").pvalue > 0.3  # unpaired sees nothing


def test_overlapping_arms_are_inconclusive_and_the_opposite_does_not_hold():
    noisy = _plus(A6, [3.0, -2.0, 1.5, -1.0, 2.5, -3.5])
    v = _verdict(LESS, _jobs(*_cell(1, A6), *_cell(0.99, noisy)))
    assert v.outcome == "inconclusive" and "not shown" in v.reason and v.p_value > 0.05
    v = _verdict(LESS, _jobs(*_cell(1, _plus(A6, D6)), *_cell(0.99, A6)))
    assert v.outcome == "does not hold" and v.reason.startswith("b - a < 2")
    # a negative margin: "b at most 5 below a"
    within = {**LESS, "margin": -5}
    assert _verdict(
        within, _jobs(*_cell(1, A6), *_cell(0.99, _plus(A6, [-1.2, -0.4, -1.0, 0.1, -0.8, -0.5])))
    ).outcome == ("holds")


def test_less_needs_three_deciding_seeds_per_arm_and_the_jobs():
    v = _verdict(LESS, _jobs(*_cell(1, A6[:2]), *_cell(0.99, _plus(A6[:2], D6))))
    assert v.outcome == "inconclusive" and "2 deciding seeds, needs >= 3" in v.reason
    failed = _verdict(LESS, _jobs(*_cell(1, [None] * 3, "failed"), *_cell(0.99, A6[:3])))
    assert failed.outcome == "inconclusive" and "failed 3" in failed.reason
    assert _verdict(LESS, _jobs(*_cell(0.99, A6))).outcome == "n/a"


def test_audit_zero_variance_is_inconclusive_never_p_0():
    rule = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}}
    for metric in ("ppl", "rankme", "z_std_ratio"):
        same_seeds = _verdict(rule, _jobs(*_cell(1, [4.0] * 3), *_cell(0.99, [5.0] * 3)), metric=metric)
        assert same_seeds.outcome == "inconclusive" and "identical" in same_seeds.reason, metric
        apart = _verdict(rule, _jobs(*_cell(1, [4.0] * 3), *_cell(0.99, [5.0] * 3, seeds=[3, 4, 5])), metric=metric)
        assert apart.outcome == "inconclusive" and apart.p_value is None, metric
    # a constant per-seed difference is no spread either
    flat = _verdict(rule, _jobs(*_cell(1, A6), *_cell(0.99, [x + 1 for x in A6])), metric="ppl")
    assert flat.outcome == "inconclusive" and "identical" in flat.reason


def test_audit_different_seeds_with_identical_results_count_once():
    def record(seed):
        return {"status": "finished", "seed": seed, "config": _tau(1), "final": {"rankme": 3.0}, "epochs": []}

    jobs = [job_from_record(record(s), f"r{s}", "rankme") for s in range(3)]
    assert len({j.fingerprint for j in jobs}) == 1
    rule = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}}
    v = _verdict(rule, jobs + _jobs(*_cell(0.99, [4.0, 4.5, 5.2])), metric="rankme")
    assert v.outcome == "inconclusive" and "identical results to another job 2" in v.reason
    assert v.groups[0]["n"] == 1


def test_audit_survivorship_lost_seeds_block_the_verdict_and_are_named():
    b = _plus(A6, D6)
    half = _jobs(*_cell(1, A6[:4]), *_cell(0.99, b[:2]), *_cell(0.99, [None, None], "diverged", seeds=[2, 3]))
    v = _verdict(LESS, half)  # 2 of 4 seeds diverged in b: the survivors are not a random sample
    assert v.outcome == "inconclusive" and "diverged 2" in v.reason
    one = _jobs(*_cell(1, A6), *_cell(0.99, b[:5]), ("diverged", None, _tau(0.99), 5))
    v = _verdict(LESS, one)  # one of six lost: decides, and says so
    assert v.outcome == "holds" and v.reason.endswith("dropped: tau_base=0.99: 1 of 6 (diverged 1)")
    assert v.test.endswith("(5 shared seeds)")
    nan = _jobs(*_cell(1, A6), *_cell(0.99, b[:5]), ("finished", None, _tau(0.99), 5))
    v = _verdict(LESS, nan)
    assert "no number (NaN) 1" in v.reason and v.groups[1]["runs"] == "finished 6/6 (1 without a number)"
    assert v.groups[1]["n"] == 5


def test_less_or_status_has_two_routes_each_at_half_alpha():
    rule = {
        "kind": "less_or_status",
        "a": {"method.tau_base": 0},
        "b": {"method.tau_base": 0.99},
        "or_status": "collapsed",
        "margin": 10,
    }
    high = _plus(A6, [20.0] * 6)
    v = _verdict(rule, _jobs(*_cell(0, A6, "collapsed"), *_cell(0.99, high)))
    assert v.outcome == "holds" and "6/6 deciding jobs: is collapsed" in v.reason and "alpha / 2" in v.reason
    far = _plus(A6, [30.2, 29.1, 30.8, 29.7, 30.4, 29.5])
    v = _verdict(rule, _jobs(*_cell(0, A6), *_cell(0.99, far)))
    assert v.outcome == "holds" and v.test.startswith("one-sided paired") and "alpha / 2" in v.reason
    # five collapsed of five: p = 0.031 > alpha / 2, and a is only about 10 below b: neither route shows
    # the claim, and the status route is not refuted (the rate is not shown below 1/2): inconclusive
    v = _verdict(rule, _jobs(*_cell(0, A6[:5], "collapsed"), *_cell(0.99, _plus(A6[:5], D6))))
    assert v.outcome == "inconclusive"
    # neither route: a never collapses (p 1/64) and b - a < 10 significantly
    v = _verdict(rule, _jobs(*_cell(0, A6), *_cell(0.99, _plus(A6, [1.2, 0.4, 1.0, 0.1, 0.8, 0.5]))))
    assert v.outcome == "does not hold" and v.reason.startswith("neither route")


def test_less_never_pools_cells_of_another_key():
    """a and b fix tau_base; the table's other key (symmetric) is evaluated per cell, pairing cells."""
    b = _plus(A6, D6)
    jobs = _jobs(
        *_cell(1, A6, symmetric=True),
        *_cell(0.99, b, symmetric=True),
        *_cell(1, b, symmetric=False),
        *_cell(0.99, A6, symmetric=False),
    )
    v = _verdict(LESS, jobs, rows=("method.tau_base", "method.symmetric"))
    assert v.outcome == "does not hold"
    assert [(c.scope, c.outcome) for c in v.cells] == [
        ("symmetric=false", "does not hold"),
        ("symmetric=true", "holds"),
    ]
    assert all(g["n"] == 6 for c in v.cells for g in c.groups)  # 6 per side per cell, never 12


def test_audit_a_cell_never_run_blocks_holds():
    b = _plus(A6, D6)
    jobs = _jobs(*_cell(1, A6, symmetric=True), *_cell(0.99, b, symmetric=True), *_cell(1, A6, symmetric=False))
    v = _verdict(LESS, jobs, rows=("method.tau_base", "method.symmetric"))
    assert [c.outcome for c in v.cells] == ["n/a", "holds"]
    assert v.outcome == "inconclusive" and "1 never run: cannot hold" in v.reason


# --- interior optimum -----------------------------------------------------------------------------
INTERIOR = {"kind": "interior_argmax", "axis": "method.tau_base"}


def test_interior_argmax_tests_every_inner_value_against_both_ends():
    lo, mid, hi = A6, _plus(A6, D6), _plus(A6, [4.1, 5.3, 4.4, 5.9, 4.8, 5.2])
    v = _verdict(INTERIOR, _jobs(*_cell(0.9, lo), *_cell(0.99, mid), *_cell(0.999, hi)))
    assert v.outcome == "holds" and "inner tau_base=0.99 beats both ends" in v.reason
    assert "every inner value against both ends, Holm over the inner values" in v.test and "paired" in v.test
    # one inner value: its p is the larger of its two paired one-sided p's
    p_lo = stats.ttest_rel(mid, lo, alternative="greater").pvalue
    p_hi = stats.ttest_rel(mid, hi, alternative="greater").pvalue
    assert v.p_value == pytest.approx(max(p_lo, p_hi))
    assert v.detail.startswith("kNN by tau_base: 0.9: 41.4 ± 1.6 (n=6), 0.99: 51.4 ± 1.3 (n=6)")


def test_interior_holm_over_the_inner_values_covers_the_choice():
    pts = [A6, _plus(A6, D6), _plus(A6, [9.0, 10.5, 9.9, 10.1, 8.7, 10.6]), _plus(A6, [4.1, 5.3, 4.4, 5.9, 4.8, 5.2])]
    jobs = _jobs(*[spec for t, vals in zip((0.9, 0.99, 0.995, 0.999), pts) for spec in _cell(t, vals)])
    v = _verdict(INTERIOR, jobs)

    def p(i, k):
        return stats.ttest_rel(pts[i], pts[k], alternative="greater").pvalue

    per_inner = [max(p(1, 0), p(1, 3)), max(p(2, 0), p(2, 3))]
    assert v.outcome == "holds" and v.p_value == pytest.approx(2 * min(per_inner))


def test_interior_argmax_does_not_hold_when_an_end_beats_every_inner_value():
    edge = _jobs(*_cell(0.9, A6), *_cell(0.99, _plus(A6, [4.1, 5.3, 4.4, 5.9, 4.8, 5.2])), *_cell(0.999, _plus(A6, D6)))
    v = _verdict(INTERIOR, edge)
    assert v.outcome == "does not hold" and "the end tau_base=0.999 beats every inner value" in v.reason


def test_interior_argmax_inconclusive_when_noisy_or_too_few_seeds():
    noisy = [_plus(A6, [3.0, -2.0, 1.5, -1.0, 2.5, -3.5]), A6, _plus(A6, [-2.0, 2.5, -1.5, 3.0, -1.0, 1.0])]
    jobs = _jobs(*_cell(0.9, noisy[0]), *_cell(0.99, noisy[1]), *_cell(0.999, noisy[2]))
    assert _verdict(INTERIOR, jobs).outcome == "inconclusive"
    two = _jobs(*_cell(0.9, [40.0, 41.0]), *_cell(0.99, [52.0, 51.0]), *_cell(0.999, [45.0, 46.5]))
    v = _verdict(INTERIOR, two)
    assert v.outcome == "inconclusive" and "needs >= 3" in v.reason
    assert _verdict(INTERIOR, two[:4]).outcome == "n/a"  # two values only


def test_interior_argmin_for_lower_is_better_metrics():
    rule = {"kind": "interior_argmin", "axis": "method.tau_base"}
    valley = _jobs(
        *_cell(0.9, _plus(A6, D6)), *_cell(0.99, A6), *_cell(0.999, _plus(A6, [4.1, 5.3, 4.4, 5.9, 4.8, 5.2]))
    )
    assert _verdict(rule, valley, metric="ppl").outcome == "holds"
    slope = _jobs(
        *_cell(0.9, _plus(A6, D6)), *_cell(0.99, _plus(A6, [4.1, 5.3, 4.4, 5.9, 4.8, 5.2])), *_cell(0.999, A6)
    )
    assert _verdict(rule, slope, metric="ppl").outcome == "does not hold"


# --- larger drop ----------------------------------------------------------------------------------
DROP = {
    "kind": "larger_drop",
    "axis": "augment.name",
    "base": "full",
    "ablated": "no_color",
    "compare": "method.name",
    "more": "simclr",
    "less": "byol",
}
INIT6 = (29.0, 30.0, 31.0, 30.5, 29.5, 30.2)


def _four(simclr_full, simclr_no, byol_full, byol_no, init=INIT6, statuses=()):
    specs = []
    for method, aug, values in (
        ("simclr", "full", simclr_full),
        ("simclr", "no_color", simclr_no),
        ("byol", "full", byol_full),
        ("byol", "no_color", byol_no),
    ):
        status = dict(statuses).get((method, aug), "finished")
        for seed, v in enumerate(values):
            cfg = {"method": {"name": method}, "augment": {"name": aug}}
            specs.append((status, v, cfg, seed, None if init is None else init[seed]))
    return _jobs(*specs)


SF, SN = _plus(A6, [20.0] * 6), _plus(A6, [-4.0, -5.5, -4.2, -6.1, -3.8, -5.0])
BF, BN = _plus(A6, [15.0, 14.2, 15.9, 14.6, 15.3, 14.8]), _plus(A6, [10.3, 9.6, 11.0, 9.9, 10.6, 9.4])
ROWS = dict(rows=("augment.name",), columns=("method.name",))


def test_larger_drop_holds_with_its_premise_paired_on_per_seed_drops():
    v = _verdict(DROP, _four(SF, SN, BF, BN), **ROWS)
    assert v.outcome == "holds" and v.reason.endswith("premise holds; no seed dropped")
    per_seed = [(sf - sn) - (bf - bn) for sf, sn, bf, bn in zip(SF, SN, BF, BN)]
    ref = stats.ttest_1samp(per_seed, 0.0, alternative="greater")
    assert v.p_value == pytest.approx(ref.pvalue) and v.test.startswith("one-sided paired t-test")
    assert v.difference["estimate"] == pytest.approx(sum(per_seed) / 6) and v.difference["df"] == pytest.approx(5)
    assert v.detail.startswith("simclr: full 61.4 ± 1.6 (n=6) -> no_color 36.6")


def test_larger_drop_premise_fails_is_its_own_reason():
    collapsed = _four(SF, SN, BF, BN, statuses=[(("simclr", "no_color"), "collapsed")])
    v = _verdict(DROP, collapsed, **ROWS)
    assert v.outcome == "inconclusive" and "premise does not hold: simclr no_color collapsed" in v.reason
    at_init = _four(SF, SN, [31.0, 30.0, 29.5, 30.8, 29.9, 30.1], [20.0, 21.0, 22.0, 20.5, 21.7, 20.2])
    v = _verdict(DROP, at_init, **ROWS)
    assert v.outcome == "inconclusive" and "byol full not above random init 30.0" in v.reason
    no_init = _four(SF, SN, BF, BN, init=None)
    v = _verdict(DROP, no_init, **ROWS)
    assert v.outcome == "inconclusive" and "no random-init evaluation" in v.reason


def test_larger_drop_does_not_hold_with_its_premise_and_missing_cells_are_na():
    v = _verdict(DROP, _four(SF, _plus(SF, [-1.0, -2.2, -0.5, -1.7, -1.1, -0.9]), BF, BN), **ROWS)
    assert v.outcome == "does not hold" and v.reason.startswith("D < 0") and "premise holds" in v.reason
    missing = [j for j in _four(SF, SN, BF, BN) if j.config["augment"]["name"] != "no_color" or j.seed > 9]
    assert _verdict(DROP, missing, **ROWS).outcome == "n/a"


def test_audit_larger_drop_does_not_hold_only_on_its_premise():
    below = [20.0, 21.5, 19.0, 22.0, 20.5, 21.0]  # both base cells below the random init (about 30)
    jobs = _four(
        below,
        _plus(below, [-0.1, 0.2, -0.3, 0.1, 0.0, -0.2]),
        _plus(below, [1.0] * 6),
        _plus(below, [-9.0, -8.1, -9.7, -8.4, -9.2, -8.8]),
    )
    v = _verdict(DROP, jobs, **ROWS)
    assert v.outcome == "inconclusive" and "D < 0" in v.reason and "premise does not hold" in v.reason
    assert v.p_against is None


# --- equivalent -----------------------------------------------------------------------------------
EQUIV = {"kind": "equivalent", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}, "margin": 3}


def test_equivalent_by_tost():
    close = _plus(A6, [0.4, -0.3, 0.8, 0.1, -0.5, 0.6])
    v = _verdict(EQUIV, _jobs(*_cell(1, A6), *_cell(0.99, close)))
    d = [x - y for x, y in zip(A6, close)]
    p = max(stats.ttest_1samp(d, -3, alternative="greater").pvalue, stats.ttest_1samp(d, 3, alternative="less").pvalue)
    assert v.outcome == "holds" and v.p_value == pytest.approx(p) and v.test.startswith("TOST")
    far = _verdict(EQUIV, _jobs(*_cell(1, _plus(A6, D6)), *_cell(0.99, A6)))
    assert far.outcome == "does not hold" and "outside [-3, 3]" in far.reason
    noisy = _plus(A6, [4.0, -3.0, 2.5, -4.5, 3.5, -1.0])
    assert _verdict(EQUIV, _jobs(*_cell(1, A6), *_cell(0.99, noisy))).outcome == "inconclusive"


# --- the protocol ---------------------------------------------------------------------------------
SETS = {"seed_sets": [[0, 1, 2], [10, 11, 12]]}


def _six(a, b):
    seeds = [0, 1, 2, 10, 11, 12]
    return _jobs(*_cell(1, a, seeds=seeds), *_cell(0.99, b, seeds=seeds))


# --- above_init -----------------------------------------------------------------------------------
LEARNS = {"kind": "above_init", "where": {"method.tau_base": 0.99}}
INIT6 = [30.0, 33.0, 31.0, 29.5, 32.0, 30.5]  # each seed's random-init network


def _learned(values, inits=INIT6, status="finished"):
    return _jobs(*[(status, v, _tau(0.99), seed, i) for seed, (v, i) in enumerate(zip(values, inits))])


def test_above_init_is_paired_on_each_jobs_own_random_init():
    v = _verdict(LEARNS, _learned(_plus(INIT6, D6)))
    want = stats.ttest_1samp(D6, 0, alternative="greater").pvalue
    assert v.outcome == "holds" and v.p_value == pytest.approx(want) and "paired" in v.test
    assert "random init 31.0 (n=6)" in v.detail and v.difference["estimate"] == pytest.approx(sum(D6) / 6)
    margin = _verdict({**LEARNS, "margin": 12}, _learned(_plus(INIT6, D6)))  # every difference is below 12
    assert margin.outcome == "does not hold"
    want = stats.ttest_1samp(D6, 12, alternative="less").pvalue
    assert margin.p_value == pytest.approx(want)


def test_above_init_at_the_init_level_is_inconclusive_and_needs_evidence():
    noisy = _verdict(LEARNS, _learned(_plus(INIT6, [1.0, -1.2, 0.4, -0.3, 0.8, -0.5])))
    assert noisy.outcome == "inconclusive" and "not shown" in noisy.reason
    few = _verdict(LEARNS, _learned(_plus(INIT6[:2], D6[:2]), INIT6[:2]))
    assert few.outcome == "inconclusive" and "needs >= 3" in few.reason
    no_init = _verdict(LEARNS, _jobs(*_cell(0.99, A6)))
    assert no_init.outcome == "inconclusive" and "random-init evaluation" in no_init.reason
    lost = _learned(_plus(INIT6, D6))
    for j in lost[:2]:
        j.status, j.value = "diverged", None
    v = _verdict(LEARNS, lost)
    assert v.outcome == "inconclusive" and "lost 2 of 6" in v.reason and "diverged 2" in v.reason


def test_above_init_flips_for_lower_is_better_metrics():
    jobs = _learned(_plus(INIT6, [-d for d in D6]))  # perplexity falls with training
    assert _verdict(LEARNS, jobs, metric="val_ppl").outcome == "holds"
    assert _verdict(LEARNS, _learned(_plus(INIT6, D6)), metric="val_ppl").outcome == "does not hold"


def test_the_verdict_pools_the_seed_sets_and_shows_each_as_a_consistency_check():
    v = _verdict(LESS, _six(A6, _plus(A6, D6)), **SETS)
    assert v.outcome == "holds" and v.test.endswith("(6 shared seeds)")
    assert [(c["seeds"], c["outcome"]) for c in v.consistency] == [("0-2", "holds"), ("10-12", "holds")]
    assert "Seed sets on their own (a consistency check, not the rule): 0-2 holds, 10-12 holds." in v.line()
    assert v.as_dict()["consistency"][0]["seeds"] == "0-2"


def test_seeds_the_protocol_names_without_a_job_are_not_run_and_others_are_left_out():
    jobs = _jobs(*_cell(1, A6[:3]), *_cell(0.99, _plus(A6[:3], D6)))  # only set 0-2 run
    v = _verdict(LESS, jobs, **SETS)
    assert v.outcome == "inconclusive" and "lost 3 of 6 seeds" in v.reason and "not run 3" in v.reason
    extra = _six(A6, _plus(A6, D6)) + _jobs(*_cell(1, [99.0], seeds=[5]), *_cell(0.99, [1.0], seeds=[5]))
    v = _verdict(LESS, extra, **SETS)
    assert v.outcome == "holds" and "outside the protocol's seeds 1" in v.reason
    assert Study.from_block({"name": "s", "rows": ["x"], **SETS}).protocol == "6 seeds in 2 sets (0-2, 10-12), pooled"
    with pytest.raises(StudyError, match="seed_sets"):
        Study.from_block({"name": "s", "rows": ["x"], "seed_sets": [[0, 1], [1, 2]]})


# --- checking rules -------------------------------------------------------------------------------
def _study(rule: dict, metric: str = "knn_acc") -> Study:
    return Study.from_block({"name": "s", "rows": ["method.tau_base"], "metric": metric, "rules": [rule]})


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"kind": "bigger"}, "unknown kind 'bigger'"),
        ({**LESS, "margn": 2}, "unknown field 'margn'. Did you mean 'margin'?"),
        ({"kind": "less", "a": {"method.tau_base": 1}}, "missing b"),
        ({"kind": "status", "where": {"x": 1}}, "missing one of is / is_not"),
        ({"kind": "status", "where": {"x": 1}, "is": "collapsed", "is_not": "finished"}, "missing one of is / is_not"),
        ({**LESS, "margin": 150}, "margin 150 is larger than any possible effect (100: knn_acc spans 0-100)"),
        ({**LESS, "margin": -100}, "the rule cannot fail"),
        ({**DROP, "margin": 200}, "larger than any possible effect (200"),
        ({**EQUIV, "margin": 0}, "must be > 0"),
        ({**EQUIV, "margin": 120}, "cannot fail"),
        ({"kind": "less", "a": {"x": 1}, "b": {"y": 2}}, "a and b can select the same job"),
        ({**DROP, "ablated": "full"}, "base and ablated are the same value"),
        ({**LESS, "alpha": 0.9}, "alpha=0.9 must be in (0, 0.5]"),
        ({"kind": "status", "where": {"x": 1}, "is": "collapsed", "min_n": 0}, "min_n=0 must be an integer >= 1"),
        ({**LESS, "margin": "big"}, "margin='big' must be a number"),
    ],
)
def test_bad_rules_are_one_line_errors(rule, message):
    with pytest.raises(StudyError) as err:
        _study(rule)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_margins_of_unbounded_metrics_and_rule_fields_that_pass():
    assert _study({**LESS, "margin": 500}, metric="ppl").rules[0]["margin"] == 500  # perplexity has no upper end
    _study({**DROP, "margin": 150})  # a drop difference spans -200 .. 200
    _study({**LESS, "alpha": 0.01, "text": "t", "note": "n", "full_variant_only": "10 classes are too few"})
    with pytest.raises(StudyError, match="metric_range"):
        Study.from_block({"name": "s", "rows": ["a"], "metric_range": [5, 1]})
    bounded = {
        "name": "s",
        "rows": ["method.tau_base"],
        "metric": "z_std_ratio",
        "metric_range": [0, 1.5],
        "rules": [{**LESS, "margin": 2}],
    }
    with pytest.raises(StudyError, match="spans 0-1.5"):
        Study.from_block(bounded)


def test_every_kind_is_registered_with_its_fields():
    assert set(RULES) == {
        "status",
        "less",
        "less_or_status",
        "interior_argmax",
        "interior_argmin",
        "larger_drop",
        "equivalent",
        "above_init",
    }
    assert RULES["larger_drop"].required == ("axis", "base", "ablated", "compare", "more", "less")
    assert RULES["equivalent"].required == ("a", "b", "margin")


def test_full_variant_only_is_shown_beside_the_verdict():
    rule = {**LESS, "text": "a smaller batch hurts", "full_variant_only": "10 classes: 31 negatives are enough"}
    v = _verdict(rule, _jobs(*_cell(1, A6), *_cell(0.99, _plus(A6, D6))))
    assert v.line().startswith(
        "✓ a smaller batch hurts [full variant only: 10 classes: 31 negatives are enough]: holds."
    )
    assert v.as_dict()["rule"]["full_variant_only"].startswith("10 classes")
