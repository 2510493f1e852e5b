"""Conversion by variation through an experiment's funnel, counted in SQL (the
same query on SQLite and PostgreSQL), then compared with the control by gbstats.

How units are counted:
- a unit (user or namespace, per metrics.toml) is in the experiment from its
  first exposure (`experiment_viewed`) with the experiment's hash attribute;
  exposures from several services count once;
- a unit exposed to more than one variation (a payload change) stays in the
  variation of its first exposure, the one it was assigned first (intent to
  treat: dropping it would make the groups depend on what happened after
  assignment); the report says how many there are;
- each step counts on its own: the unit reaches it at its first event of
  that step between its first exposure and `window_days` after it, whatever
  the other steps did (a buyer who saved a card before the exposure, or
  before choosing a plan, still bought); a step with `after = "previous"`
  must also come at or after the previous step's event;
  equal timestamps count as in order, since an exposure and the step that
  caused it are written in the same request;
- synthetic traffic is left out everywhere (exposures and steps); demo and
  real traffic count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Row,
    and_,
    case,
    distinct,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.engine import Engine

from experiments.definitions import ExperimentDefinition, Variation
from experiments.metrics import AFTER_PREVIOUS, UNIT_COLUMN, ExperimentMetrics, Filter
from experiments.stats import SRM_THRESHOLD, compare, srm_p_value
from experiments.store import EXPOSURE_STEP, events, last_collected_at

if TYPE_CHECKING:
    from experiments.decisions import Decision

SYNTHETIC = "synthetic"
MICROS_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class StepCount:
    step: str
    label: str
    units: int
    rate: float | None  # of the variation's exposed units


@dataclass(frozen=True)
class VariationResult:
    index: int
    name: str
    weight: float
    units: int
    multi_variant_units: int
    steps: tuple[StepCount, ...]


@dataclass(frozen=True)
class Comparison:
    """A variation against the control on one step (relative uplift of the rate)."""

    variation: int
    step: str
    label: str
    uplift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_win: float | None
    note: str | None = None


@dataclass(frozen=True)
class ExperimentReport:
    key: str
    name: str
    status: str
    feature: str | None
    unit: str
    window_days: int
    steps: tuple[tuple[str, str], ...]  # (step, label)
    variations: tuple[VariationResult, ...]
    comparisons: tuple[Comparison, ...]
    srm_p_value: float
    srm_warning: bool
    weights_assumed: bool  # the payload no longer has the rule: an equal split was assumed
    multi_variant_units: int
    unknown_variation_units: int  # exposed to a variation index the payload does not have
    collected_at: datetime | None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    step_definitions: tuple[str, ...] = ()  # what each step counts, in words
    decision: Decision | None = None  # the analysis plan's reading (experiments.decisions)

    @property
    def exposed_units(self) -> int:
        return sum(v.units for v in self.variations)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [{"step": s, "label": label} for s, label in self.steps]
        data["srm_threshold"] = SRM_THRESHOLD
        data["exposed_units"] = self.exposed_units
        for moment in ("collected_at", "generated_at"):
            value = getattr(self, moment)
            data[moment] = value.isoformat() if value else None
        return data


@dataclass(frozen=True)
class _Counts:
    units: int
    multi_variant_units: int
    reached: tuple[int, ...]


def analyse(engine: Engine, metrics: ExperimentMetrics, definition: ExperimentDefinition) -> ExperimentReport:
    with engine.connect() as conn:
        counts = _pivot(conn.execute(funnel_query(metrics, engine.dialect.name)).all(), len(metrics.steps))
        variations = definition.variations
        weights_assumed = not variations
        if weights_assumed:
            names = dict(conn.execute(select(events.c.variation_id, func.max(events.c.variation_name))
                                      .where(events.c.experiment_key == metrics.key)
                                      .group_by(events.c.variation_id)).all())
            seen = sorted({0, *(i for i in counts if i >= 0)})
            variations = tuple(Variation(i, str(names.get(i) or i), 1 / len(seen)) for i in seen)
    known = {v.index for v in variations}
    empty = _Counts(0, 0, (0,) * len(metrics.steps))
    results = tuple(_variation(v, counts.get(v.index, empty), metrics) for v in variations)
    srm = srm_p_value([r.units for r in results], [r.weight for r in results])
    return ExperimentReport(
        key=metrics.key, name=definition.name, status=definition.status, feature=definition.feature,
        unit=metrics.unit, window_days=metrics.window_days,
        steps=tuple((s.step, s.label) for s in metrics.steps),
        step_definitions=tuple(s.definition(metrics.window_days) for s in metrics.steps),
        variations=results, comparisons=_comparisons(results),
        srm_p_value=srm, srm_warning=srm < SRM_THRESHOLD, weights_assumed=weights_assumed,
        multi_variant_units=sum(c.multi_variant_units for c in counts.values()),
        unknown_variation_units=sum(c.units for i, c in counts.items() if i not in known),
        collected_at=last_collected_at(engine))


@dataclass(frozen=True)
class Exposed:
    units: int
    complete: int  # their conversion window has closed
    first_us: int  # the earliest first exposure


def exposure_counts(engine: Engine, metrics: ExperimentMetrics, now_us: int) -> dict[int, Exposed]:
    """{variation index: exposed units} (each unit in its first exposure's variation)."""
    units = units_cte(metrics)
    closed = case((units.c.exposed_us + metrics.window_days * MICROS_PER_DAY <= now_us, 1), else_=0)
    with engine.connect() as conn:
        return {int(v): Exposed(int(n), int(done or 0), int(first)) for v, n, done, first in conn.execute(
            select(units.c.variation_id, func.count(), func.sum(closed), func.min(units.c.exposed_us))
            .group_by(units.c.variation_id)).all()}


def funnel_query(metrics: ExperimentMetrics, dialect: str) -> CompoundSelect[Any]:
    """Rows of (variation_id, position, units, multi): position -1 counts the
    exposed units (multi: those that saw several variations), position k the
    units reaching step k.

    Each step is one CTE that looks up every unit's events of that step in
    the (step, unit, time) index (a left join: a step counts on its own,
    whatever the others did), carrying the variation, the times and the
    deadline along, so no CTE is ever joined to another: PostgreSQL estimates
    a CTE at one row until the table is analysed, and a join between two
    would then run as a nested loop over both (joining each step to one
    shared exposures CTE took 51 s on the bench store).
    """
    units = units_cte(metrics)
    unit_column = events.c[UNIT_COLUMN[metrics.unit]]
    counts: list[Any] = [
        select(units.c.variation_id, literal(-1).label("position"), func.count().label("units"),
               func.sum(case((units.c.variations > 1, 1), else_=0)).label("multi"))
        .group_by(units.c.variation_id)]
    previous = (select(units.c.unit_id, units.c.variation_id, units.c.exposed_us,
                       (units.c.exposed_us + metrics.window_days * MICROS_PER_DAY).label("deadline_us"))
                .cte("exposed"))
    for position, step in enumerate(metrics.steps):
        # From the exposure, unless the step must follow the previous one (NULL: never reached).
        since = (previous.c[f"at_{position - 1}"] if step.after == AFTER_PREVIOUS and position
                 else previous.c.exposed_us)
        carried = list(previous.c)
        previous = (
            select(*carried, func.min(events.c.occurred_us).label(f"at_{position}"))
            .select_from(previous.outerjoin(events, and_(
                unit_column == previous.c.unit_id, events.c.step == step.step, events.c.traffic != SYNTHETIC,
                events.c.occurred_us >= since, events.c.occurred_us <= previous.c.deadline_us,
                *(property_equals(dialect, name, value) for name, value in step.where.items()))))
            .group_by(*carried)
            .cte(f"step_{position}"))
    counts += [select(previous.c.variation_id, literal(position).label("position"),
                      func.count(previous.c[f"at_{position}"]).label("units"), literal(0).label("multi"))
               .group_by(previous.c.variation_id) for position in range(len(metrics.steps))]
    return union_all(*counts)


def _pivot(rows: Sequence[Row[int, int, int, int]], steps: int) -> dict[int, _Counts]:
    exposed: dict[int, tuple[int, int]] = {}
    reached: dict[int, list[int]] = {}
    for variation, position, units, multi in rows:
        if position < 0:
            exposed[variation] = (int(units), int(multi))
        else:
            reached.setdefault(variation, [0] * steps)[position] = int(units)
    return {variation: _Counts(units, multi, tuple(reached.get(variation, [0] * steps)))
            for variation, (units, multi) in exposed.items()}


def units_cte(metrics: ExperimentMetrics) -> Any:
    """Each exposed unit once: its first exposure's variation and time, and how many variations it saw."""
    ranked = (
        select(events.c.unit_id, events.c.variation_id, events.c.occurred_us,
               func.row_number().over(partition_by=events.c.unit_id,
                                      order_by=(events.c.occurred_us, events.c.id)).label("position"))
        .where(events.c.experiment_key == metrics.key, events.c.step == EXPOSURE_STEP,
               events.c.hash_attribute == metrics.hash_attribute, events.c.traffic != SYNTHETIC)
        .cte("exposures"))
    return (
        select(ranked.c.unit_id,
               func.min(case((ranked.c.position == 1, ranked.c.variation_id))).label("variation_id"),
               func.min(ranked.c.occurred_us).label("exposed_us"),
               func.count(distinct(ranked.c.variation_id)).label("variations"))
        .group_by(ranked.c.unit_id)
        .cte("units"))


def property_equals(dialect: str, name: str, value: Filter) -> ColumnElement[bool]:
    """The property has this value and this JSON type (5 is not "5", true is not 1).

    PostgreSQL's ->> gives text ('true', '5'); SQLite's json_extract gives SQL
    values (1 for true): each dialect compares its way, and checks the type."""
    if dialect == "postgresql":
        kind = "boolean" if isinstance(value, bool) else "number" if isinstance(value, int) else "string"
        text = value if isinstance(value, str) else json.dumps(value)
        return and_(func.json_typeof(events.c.properties[name]) == kind,
                    events.c.properties[name].as_string() == text)
    path = f"$.{name}"
    if isinstance(value, bool):
        return func.json_type(events.c.properties, path) == ("true" if value else "false")
    kind = "integer" if isinstance(value, int) else "text"
    return and_(func.json_type(events.c.properties, path) == kind,
                func.json_extract(events.c.properties, path) == value)


def _variation(variation: Variation, counts: _Counts, metrics: ExperimentMetrics) -> VariationResult:
    steps = tuple(StepCount(step=s.step, label=s.label, units=n,
                            rate=n / counts.units if counts.units else None)
                  for s, n in zip(metrics.steps, counts.reached, strict=True))
    return VariationResult(index=variation.index, name=variation.name, weight=variation.weight,
                           units=counts.units, multi_variant_units=counts.multi_variant_units, steps=steps)


def _comparisons(results: tuple[VariationResult, ...]) -> tuple[Comparison, ...]:
    control, *others = results
    found = []
    for variation in others:
        for base, step in zip(control.steps, variation.steps, strict=True):
            effect = compare(control.units, base.units, variation.units, step.units)
            found.append(Comparison(variation=variation.index, step=step.step, label=step.label,
                                    uplift=effect.uplift, ci_low=effect.ci_low, ci_high=effect.ci_high,
                                    p_value=effect.p_value, chance_to_win=effect.chance_to_win,
                                    note=effect.note))
    return tuple(found)
