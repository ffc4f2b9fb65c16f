"""The report's statistics layer against hand-computed values (t tables, the Welch-Satterthwaite
formula worked by hand, a TOST p-value) and against scipy's own Welch test where both apply."""

import math

import pytest
from scipy import stats

from ssl_bench.report.statistics import (
    Estimate,
    NeedsSeeds,
    NoSpread,
    Summary,
    binomial_variance,
    contrast,
    holm,
    paired,
    summarize,
    t_quantile,
    welch,
)


def test_t_quantiles_match_the_tables():
    assert t_quantile(0.975, 2) == pytest.approx(4.302653, abs=1e-6)
    assert t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-6)
    assert t_quantile(0.95, 10) == pytest.approx(1.812461, abs=1e-6)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)  # the normal


def test_summary_mean_std_se_and_student_t_ci():
    s = summarize([1.0, 2.0, 3.0])
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    assert s.se == pytest.approx(1 / math.sqrt(3))
    assert s.df == 2
    lo, hi = s.ci()
    assert lo == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-6)  # 2 -+ 2.484138
    assert hi == pytest.approx(4.484138, abs=1e-6)
    one = summarize([5.0])
    assert one.n == 1 and one.mean == 5.0 and one.std is None and one.ci() is None and one.se is None
    assert summarize([]).mean is None


def test_binomial_term_adds_to_the_variance_with_infinite_df():
    # accuracies 48, 50, 52 % on 1,000 test images: s^2/n = 4/3, binomial 0.5 * 0.5 / 1000 = 2.5e-4 = 2.5 %^2
    known = binomial_variance(0.50, 1000) * 100**2
    assert known == pytest.approx(2.5)
    s = summarize([48.0, 50.0, 52.0], known_var=known)
    assert s.var_mean == pytest.approx(4 / 3 + 2.5)
    # Welch-Satterthwaite: (4/3 + 2.5)^2 / ((4/3)^2 / 2) = 14.694444 / 0.888889 = 16.53125
    assert s.df == pytest.approx(16.53125)
    assert s.half_width() == pytest.approx(2.114382 * math.sqrt(4 / 3 + 2.5), abs=1e-5)
    # no seed spread at all: only the known term, the normal quantile
    flat = summarize([50.0, 50.0], known_var=known)
    assert flat.df == math.inf and flat.half_width() == pytest.approx(1.959964 * math.sqrt(2.5), abs=1e-5)
    with pytest.raises(ValueError):
        binomial_variance(0.5, 0)


def test_welch_df_by_hand_and_equal_to_scipy():
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0, 8.0]
    est = welch(summarize(a), summarize(b))
    # var: 1/3 + (20/3)/4 = 2; df = 2^2 / ((1/3)^2/2 + (5/3)^2/3) = 4 / 0.981481 = 4.075472
    assert est.value == -3.0 and est.se == pytest.approx(math.sqrt(2))
    assert est.df == pytest.approx(4.075472, abs=1e-6)
    ref = stats.ttest_ind(a, b, equal_var=False, alternative="less")
    assert est.p_less(0) == pytest.approx(ref.pvalue) and ref.df == pytest.approx(est.df)
    assert est.p_greater(0) == pytest.approx(1 - ref.pvalue)
    # a margin shifts the null: H1 mean(b) - mean(a) > 1
    flip = welch(summarize(b), summarize(a))
    assert flip.p_greater(1.0) == pytest.approx(stats.t.sf((3 - 1) / math.sqrt(2), 4.075472), abs=1e-6)


def test_contrast_of_four_cells_df_by_hand():
    # a difference of drops over four cells with n = 2 and s = 1, 2, 1, 2: each s^2/n = 0.5, 2, 0.5, 2;
    # var = 5, df = 5^2 / (0.5^2 + 2^2 + 0.5^2 + 2^2) / 1 = 25 / 8.5 = 2.941176
    cells = [Summary(2, m, s) for m, s in ((60.0, 1.0), (35.0, 2.0), (55.0, 1.0), (50.0, 2.0))]
    est = contrast([(1, cells[0]), (-1, cells[1]), (-1, cells[2]), (1, cells[3])])
    assert est.value == pytest.approx(25 - 5) and est.se == pytest.approx(math.sqrt(5))
    assert est.df == pytest.approx(2.941176, abs=1e-6)
    # the split is shared: its binomial term counts once (the mean of the cells' terms, here
    # (0 + 4 + 0 + 0) / 4 = 1), in the numerator only: (5 + 1)^2 / 8.5
    cells[1] = Summary(2, 35.0, 2.0, known_var=4.0)
    est = contrast([(1, c) for c in cells])
    assert est.se == pytest.approx(math.sqrt(6)) and est.df == pytest.approx(36 / 8.5)
    # a difference of two accuracies on the same split: one binomial term, not two
    a, b = summarize([48.0, 50.0, 52.0], known_var=2.5), summarize([58.0, 60.0, 62.0], known_var=2.4)
    assert welch(b, a).se == pytest.approx(math.sqrt(4 / 3 + 4 / 3 + 2.45))


def test_tost_p_value_by_hand():
    # difference 1.0, se 0.5, df 10, bounds +-2: t1 = (1 + 2) / 0.5 = 6, t2 = (1 - 2) / 0.5 = -2
    from ssl_bench.report.statistics import Estimate

    est = Estimate(1.0, 0.5, 10.0)
    assert est.p_greater(-2) == pytest.approx(6.6054e-5, rel=1e-3)
    assert est.p_less(2) == pytest.approx(0.036694, abs=1e-6)  # t table: P(T_10 > 2) = 0.0367
    assert est.tost(2) == pytest.approx(0.036694, abs=1e-6)  # the larger of the two
    assert Estimate(1.0, 0.5, 10.0).tost(1.5) > 0.05  # 1 +- 0.9 (90% CI) crosses 1.5


def test_needs_two_seeds_per_cell():
    with pytest.raises(NeedsSeeds, match="needs >= 2 seeds per cell"):
        welch(summarize([1.0]), summarize([2.0, 3.0]))
    with pytest.raises(NeedsSeeds):
        welch(summarize([]), summarize([2.0, 3.0]))


def test_zero_seed_variance_is_no_evidence_never_p_0_or_1():
    with pytest.raises(NoSpread, match="identical"):
        welch(summarize([5.0, 5.0]), summarize([3.0, 3.0]))
    with pytest.raises(NoSpread):  # the binomial term does not stand in for the seed spread
        welch(summarize([50.0, 50.0], known_var=2.5), summarize([40.0, 40.0], known_var=2.4))
    with pytest.raises(NoSpread):
        paired([2.0, 2.0, 2.0])
    assert issubclass(NoSpread, NeedsSeeds)
    est = Estimate(1.0, 0.0, 4.0)  # a standard error of 0 decides nothing either way
    assert est.p_greater(0) == 1.0 and est.p_less(3.0) == 1.0


def test_paired_equals_scipy_ttest_rel_and_carries_the_split_once():
    a, b = [50.0, 53.0, 49.0, 55.0], [52.0, 56.0, 50.0, 59.0]
    est = paired([y - x for x, y in zip(a, b)])
    ref = stats.ttest_rel(b, a, alternative="greater")
    assert est.p_greater(0) == pytest.approx(ref.pvalue) and est.df == pytest.approx(3.0)
    ci = stats.ttest_rel(b, a).confidence_interval(0.95)
    assert est.ci() == pytest.approx((ci.low, ci.high))
    # differences 2, 3, 1, 4: mean 2.5, s^2 = 5/3; a known term adds to the numerator only
    with_split = paired([2.0, 3.0, 1.0, 4.0], known_var=1.0)
    seed = (5 / 3) / 4
    assert with_split.se == pytest.approx(math.sqrt(seed + 1.0))
    assert with_split.df == pytest.approx((seed + 1.0) ** 2 / (seed**2 / 3))
    with pytest.raises(NeedsSeeds):
        paired([1.0])


def test_holm_step_down():
    assert holm([0.01, 0.04]) == pytest.approx([0.02, 0.04])
    assert holm([0.03, 0.01]) == pytest.approx([0.03, 0.02])
    assert holm([0.04, 0.03]) == pytest.approx([0.06, 0.06])  # monotone: max(2 * 0.03, 0.04)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
