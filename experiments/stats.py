"""The statistics, all from gbstats (GrowthBook's own engine): a conversion is a
proportion per unit; each variation is compared with the control on relative
uplift with a two-sided Welch t-test (95% interval, p-value) and with the
Bayesian effect model (flat prior) for the chance to win; the split is checked
for a sample ratio mismatch with gbstats' chi-squared test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.messages import (
    BASELINE_VARIATION_ZERO_MESSAGE,
    NO_UNITS_IN_VARIATION_MESSAGE,
    ZERO_NEGATIVE_VARIANCE_MESSAGE,
)
from gbstats.models.statistics import ProportionStatistic
from gbstats.utils import check_srm

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
