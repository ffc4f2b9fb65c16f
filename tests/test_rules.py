"""Each rule kind's three outcomes on synthetic jobs with known numbers, per-cell evaluation, and the
one-line errors for rules that cannot be evaluated or cannot fail."""

import pytest
from scipy import stats

from ssl_bench.report.block import Study, StudyError
from ssl_bench.report.cells import Job
from ssl_bench.report.rules import RULES, evaluate_rules


def _jobs(*specs) -> list[Job]:
    """(status, value %, config[, seed[, init %]]) -> jobs; value None = no number."""
    out = []
    for i, spec in enumerate(specs):
        status, value, cfg, *rest = spec
        seed = rest[0] if rest else i
        init = rest[1] if len(rest) > 1 else None
        out.append(Job(run=f"j{i}", status=status, config=cfg, seed=seed, value=value, init=init))
    return out


def _verdict(rule: dict, jobs: list[Job], rows=("method.tau_base",), columns=(), metric="knn_acc"):
    study = Study.from_block(
        {"name": "s", "rows": list(rows), "columns": list(columns), "metric": metric, "rules": [rule]}
    )
    return evaluate_rules(study, jobs)[0]


def _tau(t, **extra) -> dict:
    return {"method": {"name": "byol", "tau_base": t, **extra}}


def _cell(t, values, status="finished", **extra):
    return [(status, v, _tau(t, **extra), seed) for seed, v in enumerate(values)]


# --- status ---------------------------------------------------------------------------------------
def test_status_needs_min_n_decided_jobs_to_hold():
    rule = {"kind": "status", "where": {"method.tau_base": 0}, "is": "collapsed"}
    v = _verdict(rule, _jobs(*_cell(0, [10.0, 11.0, 12.0], "collapsed")))
    assert v.outcome == "holds" and v.reason == "3/3 decided jobs: is collapsed" and v.test == "status count"
    v = _verdict(rule, _jobs(*_cell(0, [10.0, 11.0], "collapsed")))
    assert v.outcome == "inconclusive" and v.reason.endswith("needs >= 3")
    assert _verdict({**rule, "min_n": 2}, _jobs(*_cell(0, [10.0, 11.0], "collapsed"))).outcome == "holds"


def test_status_majority_against_does_not_hold_mixed_is_inconclusive():
    rule = {"kind": "status", "where": {"method.tau_base": 0}, "is": "collapsed"}
    against = _jobs(("collapsed", 10.0, _tau(0)), ("finished", 30.0, _tau(0)), ("finished", 31.0, _tau(0)))
    v = _verdict(rule, against)
    assert v.outcome == "does not hold" and v.reason.startswith("2/3 decided jobs contradict")
    assert v.detail == "tau_base=0: 23.7 ± 29.4 (n=3), finished 2/3, collapsed 1/3"  # s = 11.85, t_{.975,2} = 4.30
    mixed = _jobs(("collapsed", 10.0, _tau(0)), ("collapsed", 11.0, _tau(0)), ("finished", 30.0, _tau(0)))
    assert _verdict(rule, mixed).outcome == "inconclusive" and "mixed" in _verdict(rule, mixed).reason
    failed = _jobs(("failed", None, _tau(0)), ("failed", None, _tau(0)))
    assert _verdict(rule, failed).outcome == "inconclusive"  # jobs exist, none decides
    assert _verdict(rule, _jobs(("finished", 30.0, _tau(0.99)))).outcome == "n/a"  # never run
    not_rule = {"kind": "status", "where": {"method.tau_base": 0.99}, "is_not": "collapsed"}
    assert _verdict(not_rule, _jobs(*_cell(0.99, [50.0, 51.0, 52.0]))).outcome == "holds"
    assert _verdict(not_rule, _jobs(*_cell(0.99, [9.0, 9.5], "collapsed"))).outcome == "does not hold"


def test_status_is_evaluated_per_cell():
    rule = {"kind": "status", "where": {"method.name": "byol"}, "is_not": "collapsed"}
    jobs = _jobs(*_cell(0.9, [50.0, 51.0, 52.0]), *_cell(0.99, [10.0, 11.0, 12.0], "collapsed"))
    v = _verdict(rule, jobs)
    assert v.outcome == "does not hold" and [c.scope for c in v.cells] == ["tau_base=0.9", "tau_base=0.99"]
    assert [c.outcome for c in v.cells] == ["holds", "does not hold"]
    assert v.reason == "per cell: 1 holds, 1 does not hold"
    assert v.line() == "✗ status: does not hold (per cell: 1 holds, 1 does not hold)."


# --- less -----------------------------------------------------------------------------------------
LESS = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}, "margin": 2}


def test_less_holds_when_the_difference_clears_the_margin_significantly():
    v = _verdict(LESS, _jobs(*_cell(1, [40.0, 41.0, 42.0]), *_cell(0.99, [50.0, 51.0, 52.0])))
    assert v.outcome == "holds" and v.test == "one-sided Welch t-test"
    # b - a = 10, se = sqrt(1/3 + 1/3), df = 4: t = (10 - 2) / 0.8165 = 9.80
    assert v.p_value == pytest.approx(stats.t.sf(8 / (2 / 3) ** 0.5, 4))
    assert v.difference["estimate"] == 10.0 and v.difference["df"] == pytest.approx(4.0)
    half = 2.776445 * (2 / 3) ** 0.5  # t_{0.975, 4} x se
    assert v.difference["ci"] == pytest.approx([10 - half, 10 + half], abs=1e-5)
    assert "b - a = 10.0 [7.7, 12.3] (95% CI), margin 2" in v.detail
    assert [g["n"] for g in v.groups] == [3, 3] and v.groups[0]["mean"] == 41.0


def test_less_p_value_equals_scipy_welch():
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0]
    v = _verdict(
        {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}},
        _jobs(*_cell(1, a), *_cell(0.99, b)),
    )
    assert v.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False, alternative="greater").pvalue)
    assert v.outcome == "holds" and v.p_value == pytest.approx(0.04996, abs=1e-4)


def test_overlapping_cis_are_inconclusive():
    v = _verdict(LESS, _jobs(*_cell(1, [45.0, 50.0, 55.0]), *_cell(0.99, [47.0, 52.0, 57.0])))
    assert v.outcome == "inconclusive" and "not shown" in v.reason and v.p_value > 0.05


def test_less_does_not_hold_when_the_opposite_is_significant():
    v = _verdict(LESS, _jobs(*_cell(1, [50.0, 51.0, 52.0]), *_cell(0.99, [40.0, 41.0, 42.0])))
    assert v.outcome == "does not hold" and v.reason.startswith("b - a < 2")
    # a margin that b - a is just below: 0.99 only 1 point above 1, claim says > 2 -> does not hold
    close = _verdict(LESS, _jobs(*_cell(1, [50.0, 50.1, 49.9]), *_cell(0.99, [51.0, 51.1, 50.9])))
    assert close.outcome == "does not hold"
    # a negative margin: "b at most 5 below a"
    within = {**LESS, "margin": -5}
    assert _verdict(within, _jobs(*_cell(1, [50.0, 51.0, 52.0]), *_cell(0.99, [49.0, 50.0, 51.0]))).outcome == "holds"


def test_less_needs_two_seeds_and_the_jobs():
    v = _verdict(LESS, _jobs(("finished", 40.0, _tau(1)), *_cell(0.99, [50.0, 51.0])))
    assert v.outcome == "inconclusive" and v.reason == "needs >= 2 seeds per cell"
    failed = _verdict(LESS, _jobs(("failed", None, _tau(1)), *_cell(0.99, [50.0, 51.0])))
    assert failed.outcome == "inconclusive"
    assert _verdict(LESS, _jobs(*_cell(0.99, [50.0, 51.0]))).outcome == "n/a"


def test_less_or_status():
    rule = {
        "kind": "less_or_status",
        "a": {"method.tau_base": 0},
        "b": {"method.tau_base": 0.99},
        "or_status": "collapsed",
        "margin": 10,
    }
    v = _verdict(rule, _jobs(*_cell(0, [45.0, 46.0, 47.0], "collapsed"), *_cell(0.99, [50.0, 51.0, 52.0])))
    assert v.outcome == "holds" and v.reason == "every decided job of a (3) is collapsed"
    v = _verdict(rule, _jobs(*_cell(0, [20.0, 21.0, 22.0]), *_cell(0.99, [50.0, 51.0, 52.0])))
    assert v.outcome == "holds" and v.test == "one-sided Welch t-test"
    # two collapsed jobs are too few for the status part: falls back to less (45 vs 50 - 10: does not hold)
    v = _verdict(rule, _jobs(*_cell(0, [45.0, 46.0], "collapsed"), *_cell(0.99, [50.0, 51.0, 52.0])))
    assert v.outcome == "does not hold"


def test_less_never_pools_cells_of_another_key():
    """a and b fix tau_base; the table's other key (symmetric) is evaluated per cell, pairing cells."""
    jobs = _jobs(
        *_cell(1, [40.0, 41.0, 42.0], symmetric=True),
        *_cell(0.99, [50.0, 51.0, 52.0], symmetric=True),
        *_cell(1, [50.0, 51.0, 52.0], symmetric=False),
        *_cell(0.99, [40.0, 41.0, 42.0], symmetric=False),
    )
    v = _verdict(LESS, jobs, rows=("method.tau_base", "method.symmetric"))
    assert v.outcome == "does not hold"
    assert [(c.scope, c.outcome) for c in v.cells] == [
        ("symmetric=false", "does not hold"),
        ("symmetric=true", "holds"),
    ]
    assert all(g["n"] == 3 for c in v.cells for g in c.groups)  # 3 per side per cell, never 6


# --- interior optimum -----------------------------------------------------------------------------
INTERIOR = {"kind": "interior_argmax", "axis": "method.tau_base"}


def test_interior_argmax_holds_when_the_inner_best_beats_each_end():
    jobs = _jobs(
        *_cell(0.9, [40.0, 41.0, 42.0]),
        *_cell(0.99, [50.0, 51.0, 52.0]),
        *_cell(0.999, [45.0, 46.0, 47.0]),
        *_cell(1.0, [10.0, 11.0, 12.0], "collapsed"),
    )
    v = _verdict(INTERIOR, jobs)
    assert v.outcome == "holds" and "best inner tau_base=0.99" in v.reason and "Holm" in v.test
    assert v.detail.startswith("kNN by tau_base: 0.9: 41.0 ± 2.5 (n=3), 0.99: 51.0 ± 2.5 (n=3)")
    assert "1.0: 11.0 ± 2.5 (n=3) [collapsed 3/3]" in v.detail
    # Holm over the two ends: adjusted = max(2 p_min, p_max); vs 1.0 (t = 40 / 0.8165) p_min is tiny, so the
    # rule's p is the unadjusted p against 0.9 (t = 10 / 0.8165, df 4)
    assert v.p_value == pytest.approx(stats.t.sf(10 / (2 / 3) ** 0.5, 4))


def test_interior_argmax_does_not_hold_when_an_end_beats_every_inner_value():
    edge = _jobs(*_cell(0.9, [40.0, 41.0, 42.0]), *_cell(0.99, [45.0, 46.0, 47.0]), *_cell(0.999, [50.0, 51.0, 52.0]))
    v = _verdict(INTERIOR, edge)
    assert v.outcome == "does not hold" and "the end tau_base=0.999 beats every inner value" in v.reason


def test_interior_argmax_inconclusive_when_noisy_or_single_seed():
    noisy = _jobs(*_cell(0.9, [45.0, 50.0, 55.0]), *_cell(0.99, [47.0, 52.0, 57.0]), *_cell(0.999, [44.0, 49.0, 54.0]))
    assert _verdict(INTERIOR, noisy).outcome == "inconclusive"
    single = _jobs(("finished", 40.0, _tau(0.9)), ("finished", 52.0, _tau(0.99)), ("finished", 45.0, _tau(0.999)))
    v = _verdict(INTERIOR, single)
    assert v.outcome == "inconclusive" and v.reason == "needs >= 2 seeds per cell"
    assert _verdict(INTERIOR, single[:2]).outcome == "n/a"  # two values only


def test_interior_argmin_for_lower_is_better_metrics():
    rule = {"kind": "interior_argmin", "axis": "method.tau_base"}
    valley = _jobs(*_cell(0.9, [40.0, 41.0, 42.0]), *_cell(0.99, [30.0, 31.0, 32.0]), *_cell(0.999, [35.0, 36.0, 37.0]))
    assert _verdict(rule, valley, metric="ppl").outcome == "holds"
    slope = _jobs(*_cell(0.9, [40.0, 41.0, 42.0]), *_cell(0.99, [30.0, 31.0, 32.0]), *_cell(0.999, [20.0, 21.0, 22.0]))
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


def _four(simclr_full, simclr_no, byol_full, byol_no, init=(29.0, 30.0, 31.0), statuses=()):
    specs = []
    for method, aug, values in (
        ("simclr", "full", simclr_full),
        ("simclr", "no_color", simclr_no),
        ("byol", "full", byol_full),
        ("byol", "no_color", byol_no),
    ):
        status = dict(statuses).get((method, aug), "finished")
        for seed, v in enumerate(values):
            specs.append(
                (
                    status,
                    v,
                    {"method": {"name": method}, "augment": {"name": aug}},
                    seed,
                    None if init is None else init[seed],
                )
            )
    return _jobs(*specs)


def test_larger_drop_holds_with_its_premise():
    v = _verdict(
        DROP,
        _four([60.0, 61.0, 62.0], [35.0, 36.0, 37.0], [55.0, 56.0, 57.0], [50.0, 51.0, 52.0]),
        rows=("augment.name",),
        columns=("method.name",),
    )
    assert v.outcome == "holds" and v.reason.endswith("premise holds")
    # D = 25 - 5 = 20, var = 4 x 1/3, df = (4/3)^2 / (4 x (1/3)^2 / 2) = 8
    assert v.difference["estimate"] == 20.0 and v.difference["df"] == pytest.approx(8.0)
    assert v.p_value == pytest.approx(stats.t.sf(20 / (4 / 3) ** 0.5, 8))
    assert v.detail.startswith("simclr: full 61.0 ± 2.5 (n=3) -> no_color 36.0 ± 2.5 (n=3); byol: full 56.0")


def test_larger_drop_premise_fails_is_its_own_reason():
    collapsed = _four(
        [60.0, 61.0, 62.0],
        [15.0, 16.0, 17.0],
        [55.0, 56.0, 57.0],
        [50.0, 51.0, 52.0],
        statuses=[(("simclr", "no_color"), "collapsed")],
    )
    v = _verdict(DROP, collapsed, rows=("augment.name",), columns=("method.name",))
    assert v.outcome == "inconclusive" and "premise does not hold: simclr no_color collapsed" in v.reason
    at_init = _four([60.0, 61.0, 62.0], [35.0, 36.0, 37.0], [31.0, 30.0, 29.5], [20.0, 21.0, 22.0])
    v = _verdict(DROP, at_init, rows=("augment.name",), columns=("method.name",))
    assert v.outcome == "inconclusive" and "byol full not above random init 30.0" in v.reason
    no_init = _four([60.0, 61.0, 62.0], [35.0, 36.0, 37.0], [55.0, 56.0, 57.0], [50.0, 51.0, 52.0], init=None)
    v = _verdict(DROP, no_init, rows=("augment.name",), columns=("method.name",))
    assert v.outcome == "inconclusive" and "no random-init evaluation" in v.reason


def test_larger_drop_does_not_hold_and_missing_cells():
    v = _verdict(
        DROP,
        _four([60.0, 61.0, 62.0], [58.0, 59.0, 60.0], [55.0, 56.0, 57.0], [45.0, 46.0, 47.0]),
        rows=("augment.name",),
        columns=("method.name",),
    )
    assert v.outcome == "does not hold" and v.reason.startswith("D < 0")
    missing = [
        j
        for j in _four([60.0, 61.0], [35.0, 36.0], [55.0, 56.0], [50.0, 51.0])
        if not (j.config["method"]["name"] == "byol" and j.config["augment"]["name"] == "no_color")
    ]
    assert _verdict(DROP, missing, rows=("augment.name",), columns=("method.name",)).outcome == "n/a"


# --- equivalent -----------------------------------------------------------------------------------
EQUIV = {"kind": "equivalent", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}, "margin": 3}


def test_equivalent_by_tost():
    v = _verdict(EQUIV, _jobs(*_cell(1, [50.0, 51.0, 52.0]), *_cell(0.99, [50.5, 51.5, 52.5])))
    # a - b = -0.5, se 0.8165, df 4: p = max(P(T > 2.5 / 0.8165), P(T > 3.5 / 0.8165))
    assert v.outcome == "holds" and v.p_value == pytest.approx(stats.t.sf(2.5 / (2 / 3) ** 0.5, 4))
    assert v.test.startswith("TOST")
    far = _verdict(EQUIV, _jobs(*_cell(1, [60.0, 61.0, 62.0]), *_cell(0.99, [50.0, 51.0, 52.0])))
    assert far.outcome == "does not hold" and "outside [-3, 3]" in far.reason
    noisy = _verdict(EQUIV, _jobs(*_cell(1, [45.0, 50.0, 55.0]), *_cell(0.99, [47.0, 52.0, 57.0])))
    assert noisy.outcome == "inconclusive"


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
    }
    assert RULES["larger_drop"].required == ("axis", "base", "ablated", "compare", "more", "less")
    assert RULES["equivalent"].required == ("a", "b", "margin")


def test_alpha_of_the_rule_and_of_the_study():
    jobs = _jobs(*_cell(1, [1.0, 2.0, 3.0]), *_cell(0.99, [2.0, 4.0, 6.0, 8.0]))  # one-sided p = 0.04996
    rule = {"kind": "less", "a": {"method.tau_base": 1}, "b": {"method.tau_base": 0.99}}
    assert _verdict(rule, jobs).outcome == "holds"
    assert _verdict({**rule, "alpha": 0.01}, jobs).outcome == "inconclusive"
    study = Study.from_block({"name": "s", "rows": ["method.tau_base"], "alpha": 0.01, "rules": [rule]})
    assert evaluate_rules(study, jobs)[0].outcome == "inconclusive" and study.alpha == 0.01


def test_full_variant_only_is_shown_beside_the_verdict():
    rule = {**LESS, "text": "a smaller batch hurts", "full_variant_only": "10 classes: 31 negatives are enough"}
    v = _verdict(rule, _jobs(*_cell(1, [40.0, 41.0, 42.0]), *_cell(0.99, [50.0, 51.0, 52.0])))
    assert v.line().startswith(
        "✓ a smaller batch hurts [full variant only: 10 classes: 31 negatives are enough]: holds."
    )
    assert v.as_dict()["rule"]["full_variant_only"].startswith("10 classes")
