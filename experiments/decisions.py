"""From an experiment's analysis plan and its data to a decision.

- Only units whose conversion window has closed are compared; units still
  inside it are counted apart (they may yet convert, and the arms' windows
  close at different speeds).
- While the planned sample is being collected every comparison uses gbstats'
  sequential t-test, whose false-positive rate holds however often it is read,
  at a fifth of the plan's alpha; once every variation has its planned sample,
  the fixed-horizon t-test at the rest of it (experiments/plan.py).
- The verdict rests on the primary metric alone (its variations corrected as
  the plan says): winner, loser, keep collecting, or inconclusive once the
  planned sample is in without a significant difference. A plan in "fixed"
  mode gives no verdict before the planned sample.
- Secondary metrics are corrected across metrics and variations (Holm or
  Benjamini-Hochberg); guardrails are read uncorrected (a false alarm is
  cheaper than a missed regression) and a significant regression is flagged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from experiments.analysis import ExperimentReport, analyse
from experiments.definitions import ExperimentDefinition
from experiments.formatting import signed_percent, signed_points
from experiments.measures import MetricSums, metric_sums, time_to_convert
from experiments.metrics import HASH_ATTRIBUTE, HIGHER, MEAN, PER_UNIT, RATE, ExperimentMetrics, Metric
from experiments.plan import FIXED, AnalysisPlan
from experiments.stats import (
    Effect,
    Statistic,
    Sums,
    adjust,
    cuped,
    exact_rates,
    proportion,
    sample_mean,
    t_test,
    variance_reduction,
)
from experiments.store import to_micros

PRIMARY, SECONDARY, GUARDRAIL = "primary", "secondary", "guardrail"
WINNER, LOSER, INCONCLUSIVE, KEEP_COLLECTING = "winner", "loser", "inconclusive", "keep collecting"
SEQUENTIAL_TEST, FIXED_TEST = "sequential", "fixed-horizon"
EMPTY = Sums(0, 0.0, 0.0)


@dataclass(frozen=True)
class MetricResult:
    """One metric, one variation against the control, over complete windows."""

    metric: str
    label: str
    role: str
    definition: str
    kind: str
    better: str
    value_property: str | None  # what a mean averages (`total`: cents)
    variation: int
    control_units: int
    units: int
    control_mean: float | None
    mean: float | None
    uplift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    adjusted_p_value: float | None  # after the plan's correction (secondary, primary across variations)
    significant: bool
    direction: str  # "better", "worse" (as the metric's `better` reads) or "unclear"
    cuped_variance_reduction: float | None  # None: not regression-adjusted
    relative: bool = True  # False: uplift and interval are absolute differences (a guardrail rate's points)
    note: str | None = None


@dataclass(frozen=True)
class Progress:
    variation: int
    name: str
    complete: int  # units whose window has closed: these enter the verdict
    in_window: int  # units still inside their window: counted apart


@dataclass(frozen=True)
class Verdict:
    variation: int
    name: str
    verdict: str
    reason: str


@dataclass(frozen=True)
class Curve:
    """Cumulative share of complete units that converted by each day after exposure."""

    variation: int
    name: str
    units: int
    shares: tuple[float, ...]  # index: days since exposure, 0..window


@dataclass(frozen=True)
class Decision:
    plan: AnalysisPlan
    planned_per_variation: int
    planned_total: int
    test: str  # SEQUENTIAL_TEST while collecting, FIXED_TEST once the planned sample is in
    alpha: float  # the level that test is read at (the plan's early or final share of its alpha)
    progress: tuple[Progress, ...]
    progress_share: float  # the smallest variation's complete units over its planned sample
    reached: bool
    verdicts: tuple[Verdict, ...]
    results: tuple[MetricResult, ...]
    guardrail_alerts: tuple[str, ...]
    unit_notes: tuple[str, ...]
    time_to_convert: tuple[Curve, ...]

    def role(self, role: str) -> tuple[MetricResult, ...]:
        return tuple(r for r in self.results if r.role == role)


def report(engine: Engine, metrics: ExperimentMetrics, definition: ExperimentDefinition,
           now: datetime | None = None) -> ExperimentReport:
    """The funnel report with the plan's decision, when the experiment has a plan."""
    found = analyse(engine, metrics, definition)
    if metrics.plan is None:
        return found
    return dataclasses.replace(found, decision=decide(engine, metrics, definition, found, now))


def decide(engine: Engine, metrics: ExperimentMetrics, definition: ExperimentDefinition,
           funnel: ExperimentReport, now: datetime | None = None) -> Decision:
    plan = metrics.plan
    assert plan is not None
    now_us = to_micros(now or datetime.now(UTC))
    variations = [(v.index, v.name) for v in funnel.variations]
    roles = [(plan.primary, PRIMARY), *((m, SECONDARY) for m in plan.secondary),
             *((m, GUARDRAIL) for m in plan.guardrails)]
    with engine.connect() as conn:
        sums = metric_sums(conn, metrics, list({m: metrics.metric(m) for m, _ in roles}.values()), now_us)
        curves = time_to_convert(conn, metrics, metrics.metric(plan.primary), now_us)
    per_variation = plan.sample_per_variation()
    primary = sums[plan.primary]
    progress = tuple(Progress(i, name, primary.complete.get(i, EMPTY).n, primary.open.get(i, 0))
                     for i, name in variations)
    share = min(p.complete for p in progress) / per_variation if progress else 0.0
    reached = share >= 1
    sequential = not reached
    tuning = plan.planned_sample(len(variations))
    level = plan.early_alpha if sequential else plan.final_alpha
    raw = [_compare(metrics, metrics.metric(metric_id), role, index, sums[metric_id],
                    plan.alpha if role == GUARDRAIL else level, sequential, tuning)
           for metric_id, role in roles for index, _ in variations[1:]]
    results = _corrected(raw, plan.correction, level)
    names = dict(variations)
    return Decision(
        plan=plan, planned_per_variation=per_variation, planned_total=per_variation * len(variations),
        test=SEQUENTIAL_TEST if sequential else FIXED_TEST, alpha=level, progress=progress,
        progress_share=share, reached=reached,
        verdicts=tuple(_verdict(r, names[r.variation], plan, reached) for r in results if r.role == PRIMARY),
        results=results,
        guardrail_alerts=tuple(
            f"{r.label} is significantly worse in {names[r.variation]} ({change(r)}, "
            f"p = {r.p_value:.3g}): investigate before shipping, whatever the primary metric says."
            for r in results if r.role == GUARDRAIL and r.significant and r.direction == "worse"
            and r.p_value is not None),
        unit_notes=_unit_notes(metrics, definition, [metrics.metric(m) for m, _ in roles]),
        time_to_convert=tuple(_curve(i, names[i], primary.complete.get(i, EMPTY).n, curves.get(i, {}),
                                     metrics.window_days) for i, _ in variations))


def _compare(experiment: ExperimentMetrics, metric: Metric, role: str, variation: int, sums: MetricSums,
             alpha: float, sequential: bool, tuning: float) -> MetricResult:
    control, treated = sums.complete.get(0, EMPTY), sums.complete.get(variation, EMPTY)
    reduction = None
    pair: tuple[Statistic, Statistic]
    if metric.kind == MEAN:
        pair = (sample_mean(control), sample_mean(treated))
        adjusted = (cuped(control, treated)
                    if metric.per == PER_UNIT and metric.pre_exposure_days and control.n > 1 and treated.n > 1
                    else None)
        if adjusted:
            reduction, pair = variance_reduction(pair, adjusted), adjusted
    else:
        pair = (proportion(control), proportion(treated))
    # A rare guardrail's relative change is all noise (1 refund against 3); its
    # absolute difference, in percentage points, is what the alarm reads.
    relative = not (role == GUARDRAIL and metric.kind == RATE)
    if control.n < 2 or treated.n < 2:
        effect = Effect(None, None, None, None, None, note="no complete windows yet in a variation")
    elif metric.kind == RATE and control.total == treated.total == 0:
        effect = Effect(None, None, None, None, None, note="none yet in any variation")
    else:
        effect = t_test(pair[0], pair[1], sequential=sequential, alpha=alpha, tuning=tuning,
                        relative=relative)
    direction = "unclear"
    if effect.ci_low is not None and effect.ci_high is not None and (effect.ci_low > 0 or effect.ci_high < 0):
        direction = "better" if (effect.ci_low > 0) == (metric.better == HIGHER) else "worse"
    elif role == GUARDRAIL and metric.kind == RATE and min(control.n, treated.n) > 1 \
            and control.total == 0 < treated.total:
        p = exact_rates(control, treated)
        effect = Effect(None, None, None, p, None,
                        note="none in the control: Fisher's exact test on the counts (no relative change)")
        direction = "better" if metric.better == HIGHER else "worse"
    return MetricResult(
        metric=metric.id, label=metric.label, role=role, definition=metric.definition(experiment.window_days),
        kind=metric.kind, better=metric.better, value_property=metric.value, variation=variation,
        control_units=control.n, units=treated.n,
        control_mean=control.mean, mean=treated.mean, uplift=effect.uplift, ci_low=effect.ci_low,
        ci_high=effect.ci_high, p_value=effect.p_value, adjusted_p_value=effect.p_value,
        significant=effect.p_value is not None and effect.p_value < alpha, direction=direction,
        cuped_variance_reduction=reduction, relative=relative, note=effect.note)


def _corrected(results: list[MetricResult], correction: str, alpha: float) -> tuple[MetricResult, ...]:
    """The primary across variations, and the secondaries across metrics and
    variations, each family corrected as the plan says; guardrails as they are."""
    found = list(results)
    for role in (PRIMARY, SECONDARY):
        family = [i for i, r in enumerate(found) if r.role == role and r.p_value is not None]
        adjusted = adjust([found[i].p_value or 0.0 for i in family], correction)  # type: ignore[arg-type]
        for i, p in zip(family, adjusted, strict=True):
            significant = p < alpha
            found[i] = dataclasses.replace(found[i], adjusted_p_value=p, significant=significant,
                                           direction=found[i].direction if significant else "unclear")
    return tuple(found)


def _verdict(result: MetricResult, name: str, plan: AnalysisPlan, reached: bool) -> Verdict:
    may_call = reached or plan.mode != FIXED
    if result.significant and may_call:
        won = result.direction == "better"
        return Verdict(result.variation, name, WINNER if won else LOSER,
                       f"{result.label} {signed_percent(result.uplift)} against the control "
                       f"(adjusted p = {result.adjusted_p_value:.3g}, "
                       f"{'fixed-horizon' if reached else 'sequential'} test).")
    if reached:
        return Verdict(result.variation, name, INCONCLUSIVE,
                       "The planned sample is in and the primary metric shows no significant difference: "
                       f"any effect is likely smaller than the planned {plan.mde:.0%}.")
    reason = result.note or ("No significant difference yet." if plan.mode != FIXED
                             else "A fixed-horizon plan is read only once the planned sample is in.")
    return Verdict(result.variation, name, KEEP_COLLECTING, reason)


def change(result: MetricResult) -> str:
    """The uplift as it reads: a relative change, or a difference in percentage points."""
    return signed_percent(result.uplift) if result.relative else signed_points(result.uplift)


def _unit_notes(metrics: ExperimentMetrics, definition: ExperimentDefinition,
                used: list[Metric]) -> tuple[str, ...]:
    notes = []
    if definition.hash_attribute and definition.hash_attribute != metrics.hash_attribute:
        notes.append(f"The payload randomises on {definition.hash_attribute!r} but this report analyses by "
                     f"{metrics.unit} ({HASH_ATTRIBUTE[metrics.unit]!r}): no exposure will match.")
    mismatched = [m.label for m in {m.id: m for m in used}.values() if m.unit and m.unit != metrics.unit]
    if mismatched and metrics.unit == "user":
        notes.append(f"{', '.join(mismatched)}: measured per namespace, but this experiment randomises "
                     "users. Each user's own events count, so a namespace whose members sit in different "
                     "variations has its orders in one of them only, and colleagues who did not buy count "
                     "as non-converters: treat these as indicative, and randomise by namespace to decide "
                     "on them.")
    elif mismatched:
        notes.append(f"{', '.join(mismatched)}: measured per user, but this experiment randomises "
                     "namespaces. Only events that carry the namespace count (a card saved outside a "
                     "namespace's checkout does not).")
    return tuple(notes)


def _curve(variation: int, name: str, units: int, by_day: dict[int, int], window_days: int) -> Curve:
    shares, reached = [], 0
    for day in range(window_days + 1):
        reached += by_day.get(day, 0)
        shares.append(reached / units if units else 0.0)
    return Curve(variation, name, units, tuple(shares))
