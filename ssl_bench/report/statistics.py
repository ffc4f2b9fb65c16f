"""The statistics of a report: pure functions of numbers, no records, no configs.

A **cell** (one configuration of a sweep) holds the metric of its jobs, one number per seed. Its
:class:`Summary` gives n (jobs with a number), the mean, the standard deviation (ddof 1), the
standard error of the mean and a 95% confidence interval from Student's t.

**The evaluation split's binomial error.** Every job of a study is evaluated on the *same* test
split, so the error from drawing that split (``p (1 - p) / N_eval`` for an accuracy ``p`` measured
on ``N_eval`` images) is not part of the seed-to-seed spread: all seeds share it. A claim is about
the method, not about these particular test images, so for accuracy metrics the binomial variance
of the cell's mean accuracy is added to the variance of the mean::

    var_mean = s^2 / n + p (1 - p) / N_eval

The binomial term is a known variance (it is not estimated from the seeds), so in the
Welch-Satterthwaite degrees of freedom it counts with infinite degrees of freedom: it adds to the
numerator (the total variance), not to the denominator (the sum over estimated terms)::

    df = (sum_i c_i^2 s_i^2 / n_i + k)^2 / sum_i (c_i^2 s_i^2 / n_i)^2 / (n_i - 1)

for a contrast ``sum_i c_i mean_i`` of independent cells (two cells for a difference, four for a
difference of drops). **The split is shared**, so in a contrast its error is counted once, not per
cell: ``k`` is the mean of the cells' binomial variances (for one cell, its own). A cell with n < 2
has no estimate of the seed variance: no CI, and every test that needs it is undecidable
(:class:`NeedsSeeds`); a contrast whose seed variance is exactly 0 (identical numbers) has no
evidence either way (:class:`NoSpread`), never a p of 0 or 1.

**Paired designs.** Arms that share seeds (one seed = one initial network and one data order) are
compared on the per-seed contrasts ``d_s = sum_i c_i x_is`` (:func:`paired`): a one-sample t-test of
``d`` (``scipy.stats.ttest_1samp``; equal to ``ttest_rel`` for two arms), with the split's binomial
variance added once as above.

**Tests.** A directional claim ("a is below b by more than m") is a one-sided t-test of
``H1: estimate > margin``; an equivalence claim ("a is within m of b") is two one-sided tests
(TOST, Schuirmann 1987) of ``H1: estimate > -m`` and ``H1: estimate < m``, whose p-value is the
larger of the two. Several tests of one claim are corrected with Holm's step-down method.

Why not ``scipy.stats.ttest_ind(equal_var=False)`` directly: it takes raw samples and knows no
known-variance term, so it cannot carry the binomial error, and it has no TOST. The distributions
(t quantiles and tails) come from ``scipy.stats``; only the variance bookkeeping above is written
here. Without a binomial term the results equal scipy's Welch and paired tests (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

ALPHA = 0.05


class NeedsSeeds(ValueError):
    """A test needs the seed variance of a cell that has fewer than 2 numbers."""


class NoSpread(NeedsSeeds):
    """The seeds' numbers are identical (seed variance 0): a t-test has no evidence either way."""


NO_SPREAD = "the seeds' numbers are identical (seed variance 0): no evidence either way"


def t_quantile(q: float, df: float) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom (``inf``: the normal)."""
    return float(stats.norm.ppf(q) if math.isinf(df) else stats.t.ppf(q, df))


def t_sf(x: float, df: float) -> float:
    """P(T > x) for Student's t with ``df`` degrees of freedom (``inf``: the normal)."""
    return float(stats.norm.sf(x) if math.isinf(df) else stats.t.sf(x, df))


def binomial_variance(p: float, n_eval: int) -> float:
    """Variance of an accuracy ``p`` (a fraction) measured on ``n_eval`` independent items."""
    if n_eval <= 0:
        raise ValueError(f"n_eval must be positive, got {n_eval}")
    p = min(max(p, 0.0), 1.0)
    return p * (1.0 - p) / n_eval


@dataclass(frozen=True)
class Summary:
    """n, mean and spread of one cell; ``known_var``: a variance of the mean known without the
    seeds (the binomial term, in the values' units squared)."""

    n: int
    mean: float | None
    std: float | None  # sample standard deviation (ddof 1); None for n < 2
    known_var: float = 0.0

    @property
    def seed_var(self) -> float | None:
        """s^2 / n: the variance of the mean from the seed-to-seed spread."""
        return None if self.std is None else self.std**2 / self.n

    @property
    def var_mean(self) -> float | None:
        return None if self.seed_var is None else self.seed_var + self.known_var

    @property
    def se(self) -> float | None:
        """Standard error of the mean (seed spread and the known term)."""
        return None if self.var_mean is None else math.sqrt(self.var_mean)

    @property
    def df(self) -> float | None:
        """Welch-Satterthwaite degrees of freedom of the mean (n - 1 without a known term; inf when
        the seeds' numbers are identical)."""
        if self.std is None:
            return None
        seed = self.std**2 / self.n
        return math.inf if seed == 0 else (seed + self.known_var) ** 2 / (seed**2 / (self.n - 1))

    def ci(self, alpha: float = ALPHA) -> tuple[float, float] | None:
        """Two-sided (1 - alpha) confidence interval of the mean; None for n < 2."""
        if self.mean is None or self.std is None or self.df is None or self.se is None:
            return None
        half = t_quantile(1 - alpha / 2, self.df) * self.se
        return self.mean - half, self.mean + half

    def half_width(self, alpha: float = ALPHA) -> float | None:
        ci = self.ci(alpha)
        return None if ci is None else (ci[1] - ci[0]) / 2


def summarize(values: Sequence[float], known_var: float = 0.0) -> Summary:
    """The :class:`Summary` of one cell's numbers."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return Summary(0, None, None, known_var)
    m = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - m) ** 2 for v in vals) / (n - 1)) if n > 1 else None
    return Summary(n, m, std, known_var)


@dataclass(frozen=True)
class Estimate:
    """A linear combination of cell means with its standard error and degrees of freedom."""

    value: float
    se: float
    df: float

    def ci(self, alpha: float = ALPHA) -> tuple[float, float]:
        half = t_quantile(1 - alpha / 2, self.df) * self.se
        return self.value - half, self.value + half

    def p_greater(self, margin: float = 0.0) -> float:
        """One-sided p-value of ``H1: true value > margin`` (1 without a standard error: no evidence)."""
        if self.se == 0:
            return 1.0
        return t_sf((self.value - margin) / self.se, self.df)

    def p_less(self, margin: float = 0.0) -> float:
        """One-sided p-value of ``H1: true value < margin`` (1 without a standard error: no evidence)."""
        if self.se == 0:
            return 1.0
        return t_sf((margin - self.value) / self.se, self.df)

    def tost(self, margin: float) -> float:
        """TOST p-value of ``H1: -margin < true value < margin`` (the larger one-sided p)."""
        return max(self.p_greater(-margin), self.p_less(margin))


def contrast(terms: Sequence[tuple[float, Summary]]) -> Estimate:
    """``sum c_i mean_i`` of independent cells: variance ``sum c_i^2 s_i^2 / n_i`` plus the split's
    binomial variance once (the mean of the cells' ``known_var``), Welch-Satterthwaite df with the
    known term at infinite df. Raises :class:`NeedsSeeds` when a cell has n < 2 and
    :class:`NoSpread` when the seed variance is 0."""
    value, var, denom = 0.0, 0.0, 0.0
    known = [s.known_var for c, s in terms if c != 0]
    for c, s in terms:
        if s.mean is None or s.std is None:
            raise NeedsSeeds(f"a cell has n = {s.n}: needs >= 2 seeds per cell")
        value += c * s.mean
        seed = c * c * s.std**2 / s.n
        var += seed
        denom += seed**2 / (s.n - 1)
    if denom == 0:
        raise NoSpread(NO_SPREAD)
    var += math.fsum(known) / len(known) if known else 0.0
    return Estimate(value, math.sqrt(var), var**2 / denom)


def paired(values: Sequence[float], known_var: float = 0.0) -> Estimate:
    """The mean of per-seed contrasts ``values`` (one per seed shared by every arm), its standard
    error ``sqrt(s^2 / n + known_var)`` and Satterthwaite df (``n - 1`` without a known term): the
    one-sample t-test of ``scipy.stats.ttest_1samp``, with the split's binomial variance once."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n < 2:
        raise NeedsSeeds(f"{n} shared seed(s): a paired test needs >= 2")
    mean = math.fsum(vals) / n
    seed = math.fsum((v - mean) ** 2 for v in vals) / (n - 1) / n
    if seed == 0:
        raise NoSpread(NO_SPREAD)
    var = seed + known_var
    return Estimate(mean, math.sqrt(var), var**2 / (seed**2 / (n - 1)))


def welch(a: Summary, b: Summary) -> Estimate:
    """mean(a) - mean(b) with Welch's standard error and degrees of freedom."""
    return contrast([(1.0, a), (-1.0, b)])


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, family-wise error), in the input order."""
    m = len(pvalues)
    ranked = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(ranked):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
