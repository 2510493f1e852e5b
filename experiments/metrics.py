"""Metric definitions as data (experiments/metrics.toml): the shared metrics
(revenue from the billing ledger, guardrails) and, per experiment, the unit of
analysis, the funnel steps, the conversion window and the analysis plan."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.plan import AnalysisPlan, PlanError, parse_plan
from experiments.store import EXPOSURE_STEP
from flags.payload import NAMESPACE_ID, USER_ID
from funnel.telemetry import Step

METRICS_FILE = Path(__file__).resolve().parent / "metrics.toml"
# unit of analysis -> the hash attribute its exposures carry, and the event column holding its id.
HASH_ATTRIBUTE = {"user": USER_ID, "namespace": NAMESPACE_ID}
UNIT_COLUMN = {"user": "user_id", "namespace": "namespace_id"}
MAX_WINDOW_DAYS = 366
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Filter = str | int | bool


class MetricsError(ValueError):
    """metrics.toml is not valid; the message says where and why."""


# Where a step's event may fall: anywhere from the exposure to the window's end,
# whatever the other steps did (the default: a purchase is a purchase whatever
# order the card and plan steps took), or only after the previous step's event
# (a strict sequence).
AFTER_EXPOSURE, AFTER_PREVIOUS = "exposure", "previous"


@dataclass(frozen=True)
class FunnelStep:
    step: str
    label: str
    where: Mapping[str, Filter] = field(default_factory=dict)
    after: str = AFTER_EXPOSURE

    def definition(self, window_days: int) -> str:
        """What the step counts, in words, shown on the report next to its label."""
        filters = "".join(f", {name} = {json.dumps(value)}" for name, value in self.where.items())
        since = "the previous step" if self.after == AFTER_PREVIOUS else "the first exposure"
        return (f"a `{self.step}` event{filters} at or after {since} and within {window_days} days "
                "of the first exposure, whatever the other steps did")


RATE, MEAN = "rate", "mean"
PER_UNIT, PER_CONVERTER = "unit", "converter"
HIGHER, LOWER = "higher", "lower"
ORDER_STEP = "purchase_completed"
MONEY = frozenset({"total"})  # value properties in integer cents
# An order's `kind` on purchase_completed; an order without one is a first purchase.
ORDER_KINDS = ("purchase", "upgrade", "expansion")
METRIC_KEYS = ("label", "type", "step", "where", "value", "per", "order_kinds", "unit", "better",
               "pre_exposure_days", "description")


@dataclass(frozen=True)
class Metric:
    """A number per unit from its events inside the conversion window.

    rate: did the unit have such an event (1 or 0); mean: the sum of the
    events' `value` property per exposed unit (`per = "unit"`, 0 for a unit
    with none) or per event among the units that had one (`per = "converter"`,
    e.g. the average order value)."""

    id: str
    label: str
    kind: str
    step: str
    where: Mapping[str, Filter] = field(default_factory=dict)
    value: str | None = None
    per: str = PER_UNIT
    order_kinds: tuple[str, ...] = ()
    unit: str | None = None  # the unit its events belong to; None: a user's and a namespace's alike
    better: str = HIGHER
    pre_exposure_days: int = 0  # CUPED: the same metric over this many days before exposure
    description: str = ""

    def definition(self, window_days: int) -> str:
        """What is counted, in words, for the report."""
        filters = "".join(f", {name} = {json.dumps(value)}" for name, value in self.where.items())
        if self.order_kinds:
            filters += f", order kind {' or '.join(self.order_kinds)}"
        events = f"`{self.step}` events{filters} within {window_days} days of the first exposure"
        if self.kind == RATE:
            counted = f"share of exposed units with one or more {events}"
        elif self.per == PER_UNIT:
            counted = f"sum of `{self.value}` over {events}, per exposed unit (0 for none)"
        else:
            counted = f"mean `{self.value}` per event over {events}, among units with one"
        return f"{self.description} ({counted})" if self.description else counted


@dataclass(frozen=True)
class ExperimentMetrics:
    key: str
    unit: str
    window_days: int
    steps: tuple[FunnelStep, ...]
    metrics: Mapping[str, Metric] = field(default_factory=dict)  # shared metrics, by id
    plan: AnalysisPlan | None = None

    @property
    def hash_attribute(self) -> str:
        return HASH_ATTRIBUTE[self.unit]

    def metric(self, metric_id: str) -> Metric:
        """A shared metric, or the rate of reaching a funnel step (named by its step)."""
        if metric_id in self.metrics:
            return self.metrics[metric_id]
        step = next(s for s in self.steps if s.step == metric_id)
        return Metric(id=step.step, label=step.label, kind=RATE, step=step.step, where=step.where)


def load_metrics(path: Path = METRICS_FILE) -> dict[str, ExperimentMetrics]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MetricsError(f"{path}: can not be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise MetricsError(f"{path}: not valid TOML ({exc})") from None
    return parse_metrics(data, str(path.name))


def parse_metrics(data: Mapping[str, Any], source: str = "metrics.toml") -> dict[str, ExperimentMetrics]:
    unknown = set(data) - {"experiments", "metrics"}
    if unknown:
        raise MetricsError(f"{source}: unknown top-level key(s) {sorted(unknown)}; "
                           "expected [metrics.<id>] and [experiments.<key>] tables")
    shared = data.get("metrics", {})
    if not isinstance(shared, dict):
        raise MetricsError(f"{source}: metrics must be [metrics.<id>] tables")
    metrics = {key: _metric(f"{source}: metrics.{key}", key, spec) for key, spec in shared.items()}
    experiments = data.get("experiments")
    if not isinstance(experiments, dict) or not experiments:
        raise MetricsError(f"{source}: no experiments; define at least one [experiments.<key>] table")
    return {key: _experiment(f"{source}: experiments.{key}", key, spec, metrics)
            for key, spec in experiments.items()}


def _experiment(where: str, key: str, spec: Any, metrics: Mapping[str, Metric]) -> ExperimentMetrics:
    if not isinstance(spec, dict):
        raise MetricsError(f"{where}: must be a table")
    unknown = set(spec) - {"unit", "window_days", "steps", "plan"}
    if unknown:
        raise MetricsError(f"{where}: unknown key(s) {sorted(unknown)}; "
                           "expected unit, window_days, steps, plan")
    unit = spec.get("unit")
    if unit not in HASH_ATTRIBUTE:
        raise MetricsError(f"{where}.unit: must be one of {sorted(HASH_ATTRIBUTE)}, not {unit!r}")
    window = _days(f"{where}.window_days", spec.get("window_days"), 1)
    steps = spec.get("steps")
    if not isinstance(steps, list) or not steps:
        raise MetricsError(f"{where}.steps: must be a non-empty list of {{ step = ..., label = ... }}")
    found = ExperimentMetrics(key=key, unit=unit, window_days=window, metrics=metrics,
                              steps=tuple(_step(f"{where}.steps[{i}]", s) for i, s in enumerate(steps)))
    if "plan" not in spec:
        return found
    ids = [s.step for s in found.steps] + [m for m in metrics if m not in {s.step for s in found.steps}]
    rates = [i for i in ids if found.metric(i).kind == RATE]
    try:
        plan = parse_plan(f"{where}.plan", spec["plan"], ids, rates)
    except PlanError as exc:
        raise MetricsError(str(exc)) from None
    return dataclasses.replace(found, plan=plan)


def _days(where: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_WINDOW_DAYS:
        raise MetricsError(f"{where}: must be a whole number of days from {low} to "
                           f"{MAX_WINDOW_DAYS}, not {value!r}")
    return value


def _metric(where: str, key: str, spec: Any) -> Metric:
    if not isinstance(spec, dict):
        raise MetricsError(f"{where}: must be a table")
    unknown = set(spec) - set(METRIC_KEYS)
    if unknown:
        raise MetricsError(f"{where}: unknown key(s) {sorted(unknown)}; expected {', '.join(METRIC_KEYS)}")
    kind = spec.get("type")
    if kind not in (RATE, MEAN):
        raise MetricsError(f"{where}.type: must be {RATE!r} or {MEAN!r}, not {kind!r}")
    step = _step(where, {k: spec[k] for k in ("step", "label", "where") if k in spec})
    value = spec.get("value")
    if kind == MEAN and (not isinstance(value, str) or not PROPERTY_NAME.fullmatch(value)):
        raise MetricsError(f"{where}.value: a mean needs the numeric property it sums, not {value!r}")
    if kind == RATE and value is not None:
        raise MetricsError(f"{where}.value: a rate counts units, it has no value")
    per = spec.get("per", PER_UNIT)
    if per not in (PER_UNIT, PER_CONVERTER):
        raise MetricsError(f"{where}.per: must be {PER_UNIT!r} or {PER_CONVERTER!r}, not {per!r}")
    kinds = spec.get("order_kinds", [])
    if not isinstance(kinds, list) or any(k not in ORDER_KINDS for k in kinds):
        raise MetricsError(f"{where}.order_kinds: must be a list of {', '.join(ORDER_KINDS)}, not {kinds!r}")
    if kinds and step.step != ORDER_STEP:
        raise MetricsError(f"{where}.order_kinds: only for {ORDER_STEP} events")
    unit = spec.get("unit")
    if unit is not None and unit not in HASH_ATTRIBUTE:
        raise MetricsError(f"{where}.unit: must be one of {sorted(HASH_ATTRIBUTE)}, not {unit!r}")
    better = spec.get("better", HIGHER)
    if better not in (HIGHER, LOWER):
        raise MetricsError(f"{where}.better: must be {HIGHER!r} or {LOWER!r}, not {better!r}")
    pre = spec.get("pre_exposure_days", 0)
    if pre:
        pre = _days(f"{where}.pre_exposure_days", pre, 1)
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise MetricsError(f"{where}.description: must be a string")
    return Metric(id=key, label=step.label, kind=kind, step=step.step, where=step.where, value=value,
                  per=per, order_kinds=tuple(kinds), unit=unit, better=better, pre_exposure_days=pre,
                  description=description.strip())


def _step(where: str, spec: Any) -> FunnelStep:
    if not isinstance(spec, dict):
        raise MetricsError(f"{where}: must be an inline table {{ step = ..., label = ... }}")
    unknown = set(spec) - {"step", "label", "where", "after"}
    if unknown:
        raise MetricsError(f"{where}: unknown key(s) {sorted(unknown)}; expected step, label, where, after")
    step = spec.get("step")
    known = sorted(s.value for s in Step if s.value != EXPOSURE_STEP)
    if step == EXPOSURE_STEP:
        raise MetricsError(f"{where}.step: {EXPOSURE_STEP} is the exposure itself, not a funnel step")
    if step not in known:
        raise MetricsError(f"{where}.step: unknown step {step!r}; known steps: {', '.join(known)}")
    label = spec.get("label", step)
    if not isinstance(label, str) or not label.strip():
        raise MetricsError(f"{where}.label: must be a non-empty string")
    filters = spec.get("where", {})
    if not isinstance(filters, dict):
        raise MetricsError(f"{where}.where: must be a table of property = value")
    for name, value in filters.items():
        if not PROPERTY_NAME.fullmatch(name):
            raise MetricsError(f"{where}.where: {name!r} is not a property name (letters, digits, _)")
        if not isinstance(value, str | int | bool):
            raise MetricsError(f"{where}.where.{name}: must be a string, integer or boolean, not {value!r}")
    after = spec.get("after", AFTER_EXPOSURE)
    if after not in (AFTER_EXPOSURE, AFTER_PREVIOUS):
        raise MetricsError(f"{where}.after: must be {AFTER_EXPOSURE!r} or {AFTER_PREVIOUS!r}, not {after!r}")
    return FunnelStep(step=step, label=label.strip(), where=dict(filters), after=after)
