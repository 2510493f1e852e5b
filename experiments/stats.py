"""The statistics, all from gbstats (GrowthBook's own engine): a conversion is a
proportion per unit, revenue a sample mean per unit (regression-adjusted on
pre-exposure revenue: CUPED); each variation is compared with the control on
relative uplift with a two-sided Welch t-test (95% interval, p-value), or its
sequential (always valid) version while the sample is still being collected,
and with the Bayesian effect model (flat prior) for the chance to win; the
split is checked for a sample ratio mismatch with gbstats' chi-squared test.
Multiple-testing corrections (Holm-Bonferroni, Benjamini-Hochberg) are here
too: gbstats leaves them to its caller."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.messages import (
    BASELINE_VARIATION_ZERO_MESSAGE,
    NO_UNITS_IN_VARIATION_MESSAGE,
    ZERO_NEGATIVE_VARIANCE_MESSAGE,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)
from gbstats.utils import check_srm
from scipy.stats import fisher_exact

ALPHA = 0.05
SRM_THRESHOLD = 0.001
# gbstats' reasons for giving no result, in words a reader can act on.
REASONS = {
    BASELINE_VARIATION_ZERO_MESSAGE: "no conversions in the control yet",
    ZERO_NEGATIVE_VARIANCE_MESSAGE: "not enough data (in a variation every unit converted, or none did)",
    NO_UNITS_IN_VARIATION_MESSAGE: "no units in one of the variations",
}


@dataclass(frozen=True)
class Effect:
    """One variation against the control on one step. All None when gbstats can not tell yet."""

    uplift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_win: float | None
    note: str | None = None


def compare(control_units: int, control_conversions: int, units: int, conversions: int) -> Effect:
    control = ProportionStatistic(n=control_units, sum=control_conversions)
    variation = ProportionStatistic(n=units, sum=conversions)
    frequentist = TwoSidedTTest(
        control, variation, FrequentistConfig(alpha=ALPHA, difference_type="relative")).compute_result()
    bayesian = EffectBayesianABTest(
        control, variation, EffectBayesianConfig(alpha=ALPHA, difference_type="relative")).compute_result()
    error = frequentist.error_message or bayesian.error_message
    if error:
        return Effect(None, None, None, None, None, note=REASONS.get(error, error))
    values = [float(v) for v in (frequentist.expected, *frequentist.ci, frequentist.p_value,
                                 bayesian.chance_to_win)]
    if not all(math.isfinite(v) for v in values):
        return Effect(None, None, None, None, None, note="not enough data")
    uplift, ci_low, ci_high, p_value, chance_to_win = values
    return Effect(uplift, ci_low, ci_high, p_value, chance_to_win)


def srm_p_value(units: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-squared p-value of the observed split against the configured weights."""
    if len(units) < 2:
        return 1.0
    return float(check_srm(list(units), list(weights)))


Statistic: TypeAlias = ProportionStatistic | SampleMeanStatistic | RegressionAdjustedStatistic


@dataclass(frozen=True)
class Sums:
    """A metric's sufficient statistics over one variation's units: the value
    x per unit, and its pre-exposure value y (CUPED)."""

    n: int
    total: float  # sum of x
    squares: float  # sum of x²
    pre_total: float = 0.0
    pre_squares: float = 0.0
    cross: float = 0.0  # sum of x·y

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


def proportion(sums: Sums) -> ProportionStatistic:
    return ProportionStatistic(n=sums.n, sum=sums.total)


def sample_mean(sums: Sums) -> SampleMeanStatistic:
    return SampleMeanStatistic(n=sums.n, sum=sums.total, sum_squares=sums.squares)


def cuped(control: Sums, treatment: Sums) -> tuple[RegressionAdjustedStatistic,
                                                  RegressionAdjustedStatistic] | None:
    """Both arms regression-adjusted on pre-exposure values with gbstats' pooled
    theta, or None when there is no pre-exposure variance to use."""
    def adjusted(s: Sums) -> RegressionAdjustedStatistic:
        return RegressionAdjustedStatistic(
            n=s.n, post_statistic=sample_mean(s),
            pre_statistic=SampleMeanStatistic(n=s.n, sum=s.pre_total, sum_squares=s.pre_squares),
            post_pre_sum_of_products=s.cross, theta=0)
    a, b = adjusted(control), adjusted(treatment)
    theta = compute_theta(a, b)
    if not theta or not math.isfinite(theta):
        return None
    a.theta = b.theta = theta
    return a, b


def variance_reduction(plain: tuple[Statistic, Statistic], adjusted: tuple[Statistic, Statistic]) -> float:
    """How much less variance the adjusted difference has (0.3: 30% less)."""
    def spread(pair: tuple[Statistic, Statistic]) -> float:
        return float(sum(s.variance / s.n for s in pair))
    before = spread(plain)
    return 1 - spread(adjusted) / before if before else 0.0


def t_test(control: Statistic, treatment: Statistic, *, sequential: bool, alpha: float = ALPHA,
           tuning: float = 5000, relative: bool = True) -> Effect:
    """The uplift (relative, or the absolute difference), its interval and
    p-value: gbstats' sequential two-sided t-test (valid at every look;
    `tuning` is the sample it is most sensitive at) or its fixed-horizon Welch
    t-test."""
    difference = "relative" if relative else "absolute"
    result = (SequentialTwoSidedTTest(control, treatment, SequentialConfig(
                  alpha=alpha, difference_type=difference, sequential_tuning_parameter=tuning))
              if sequential else
              TwoSidedTTest(control, treatment, FrequentistConfig(alpha=alpha, difference_type=difference))
              ).compute_result()
    if result.error_message:
        note = REASONS.get(result.error_message, result.error_message)
        return Effect(None, None, None, None, None, note=note)
    values = [float(v) for v in (result.expected, *result.ci, result.p_value)]
    if not all(math.isfinite(v) for v in values):
        return Effect(None, None, None, None, None, note="not enough data")
    uplift, low, high, p = values
    return Effect(uplift, low, high, p, None)


def exact_rates(control: Sums, treatment: Sums) -> float:
    """Fisher's exact two-sided p-value for two rates. Only where gbstats has no
    answer: a guardrail that never happened in the control (a relative change
    from zero is undefined) must still be able to raise its alarm."""
    table = [[int(control.total), control.n - int(control.total)],
             [int(treatment.total), treatment.n - int(treatment.total)]]
    return float(fisher_exact(table).pvalue)


def adjust(p_values: Sequence[float], method: Literal["holm", "bh"]) -> list[float]:
    """Adjusted p-values, in the input order: Holm-Bonferroni (controls the
    chance of any false positive) or Benjamini-Hochberg (the expected share of
    false positives among those called)."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [0.0] * count
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (count - rank) * p_values[i]))
            adjusted[i] = running
    else:
        running = 1.0
        for rank in range(count - 1, -1, -1):
            i = order[rank]
            running = min(running, count * p_values[i] / (rank + 1))
            adjusted[i] = running
    return adjusted
