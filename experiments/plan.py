"""An experiment's analysis plan, declared as data next to its metrics
(`[experiments.<key>.plan]` in metrics.toml) before anyone looks at results:
the hypothesis, the one primary metric the verdict rests on, the secondary and
guardrail metrics, the effect worth detecting and the power to detect it, the
sample that takes (computed here from the baseline), how it is read and how
secondary comparisons are corrected for their number."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy.stats import norm

SEQUENTIAL, FIXED = "sequential", "fixed"
HOLM, BENJAMINI_HOCHBERG = "holm", "bh"
MODES = (SEQUENTIAL, FIXED)
CORRECTIONS = (HOLM, BENJAMINI_HOCHBERG)
# The false-positive budget `alpha` is split between the two kinds of read, so
# that together they stay within it (Bonferroni): early stops on the sequential
# test while collecting get this share, the one fixed-horizon read at the
# planned sample the rest. Without the split, sequential reads at alpha plus a
# final read at alpha call 5.8% of A/A tests (benchmarks/results/experiment_decisions.md).
EARLY_STOP_SHARE = 0.2
PLAN_KEYS = ("hypothesis", "primary", "secondary", "guardrails", "mde", "power", "alpha", "baseline",
             "baseline_sd", "mode", "correction")


class PlanError(ValueError):
    """The plan is not valid; the message names the field."""


@dataclass(frozen=True)
class AnalysisPlan:
    hypothesis: str
    primary: str
    secondary: tuple[str, ...]
    guardrails: tuple[str, ...]
    mde: float  # the smallest relative change of the primary metric worth detecting (0.1: 10%)
    power: float
    alpha: float
    baseline: float  # the primary metric in the control: a rate, or a mean per unit
    baseline_sd: float | None  # a mean's standard deviation per unit; None for a rate
    mode: str
    correction: str

    @property
    def early_alpha(self) -> float:
        """The sequential test's level while collecting."""
        return round(self.alpha * EARLY_STOP_SHARE, 12)

    @property
    def final_alpha(self) -> float:
        """The fixed-horizon test's level at the planned sample."""
        return round(self.alpha - self.early_alpha, 12)

    def sample_per_variation(self) -> int:
        """Units each variation needs for the final read (at `final_alpha`) to
        find a relative change of `mde` with `power`: the two-sided
        z-approximation on the variance gbstats gives a relative difference
        (delta method). A rate's variance is p(1-p); a mean's standard
        deviation is taken to scale with the effect, as revenue's does."""
        z = norm.ppf(1 - self.final_alpha / 2) + norm.ppf(self.power)
        lift = 1 + self.mde
        if self.baseline_sd is None:
            treated = self.baseline * lift
            spread = (treated * (1 - treated) + self.baseline * (1 - self.baseline) * lift ** 2) \
                / self.baseline ** 2
        else:
            spread = 2 * (self.baseline_sd * lift / self.baseline) ** 2
        return int(math.ceil(z ** 2 * spread / self.mde ** 2))

    def planned_sample(self, variations: int) -> int:
        return self.sample_per_variation() * max(variations, 2)


def parse_plan(where: str, spec: Any, metric_ids: Sequence[str], rate_ids: Sequence[str]) -> AnalysisPlan:
    """`metric_ids`: what the plan may name; `rate_ids`: those that are rates
    (a rate primary takes its baseline as a rate, a mean one needs baseline_sd)."""
    if not isinstance(spec, Mapping):
        raise PlanError(f"{where}: must be a table")
    unknown = set(spec) - set(PLAN_KEYS)
    if unknown:
        raise PlanError(f"{where}: unknown key(s) {sorted(unknown)}; expected {', '.join(PLAN_KEYS)}")
    hypothesis = spec.get("hypothesis")
    if not isinstance(hypothesis, str) or not hypothesis.strip():
        raise PlanError(f"{where}.hypothesis: must say what is expected to change and why")
    primary = spec.get("primary")
    if primary not in metric_ids:
        raise PlanError(f"{where}.primary: must be one metric, one of {', '.join(metric_ids)}; "
                        f"not {primary!r}")
    secondary = _metric_list(f"{where}.secondary", spec.get("secondary", []), metric_ids)
    guardrails = _metric_list(f"{where}.guardrails", spec.get("guardrails", []), metric_ids)
    if primary in secondary:
        raise PlanError(f"{where}.secondary: {primary!r} is the primary metric")
    mde = _number(f"{where}.mde", spec.get("mde"), 0, 10, "a relative change such as 0.1 for 10%")
    power = _number(f"{where}.power", spec.get("power", 0.8), 0.5, 1, "a probability such as 0.8")
    alpha = _number(f"{where}.alpha", spec.get("alpha", 0.05), 0, 0.5, "a probability such as 0.05")
    is_rate = primary in rate_ids
    baseline = _number(f"{where}.baseline", spec.get("baseline"), 0, 1 if is_rate else math.inf,
                       "the primary metric's rate in the control, such as 0.08" if is_rate
                       else "the primary metric's mean per unit in the control")
    baseline_sd = None
    if is_rate:
        if "baseline_sd" in spec:
            raise PlanError(f"{where}.baseline_sd: only for a mean primary metric; {primary!r} is a rate")
        if baseline * (1 + mde) >= 1:
            raise PlanError(f"{where}.mde: a rate of {baseline} raised by {mde:.0%} is not below 1")
    else:
        baseline_sd = _number(f"{where}.baseline_sd", spec.get("baseline_sd"), 0, math.inf,
                              "the primary metric's standard deviation per unit")
    mode = spec.get("mode", SEQUENTIAL)
    if mode not in MODES:
        raise PlanError(f"{where}.mode: must be one of {', '.join(MODES)}, not {mode!r}")
    correction = spec.get("correction", HOLM)
    if correction not in CORRECTIONS:
        raise PlanError(f"{where}.correction: must be {HOLM!r} (Holm-Bonferroni) or "
                        f"{BENJAMINI_HOCHBERG!r} (Benjamini-Hochberg), not {correction!r}")
    return AnalysisPlan(hypothesis=hypothesis.strip(), primary=str(primary), secondary=secondary,
                        guardrails=guardrails, mde=mde, power=power, alpha=alpha, baseline=baseline,
                        baseline_sd=baseline_sd, mode=mode, correction=correction)


def _metric_list(where: str, value: Any, metric_ids: Sequence[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PlanError(f"{where}: must be a list of metric names")
    for name in value:
        if name not in metric_ids:
            raise PlanError(f"{where}: unknown metric {name!r}; known metrics: {', '.join(metric_ids)}")
    if len(set(value)) != len(value):
        raise PlanError(f"{where}: names a metric twice")
    return tuple(value)


def _number(where: str, value: Any, low: float, high: float, meaning: str) -> float:
    """A number strictly between low and high."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value < high:
        bounds = f"between {low} and {high}" if math.isfinite(high) else f"above {low}"
        raise PlanError(f"{where}: must be a number {bounds} ({meaning}), not {value!r}")
    return float(value)
