"""A metric's sufficient statistics per variation, counted in SQL (SQLite and
PostgreSQL alike), split by whether each unit's conversion window has closed.

Per unit (in the variation of its first exposure, as in the funnel):
- x, its value: 1/0 for a rate; the sum of the events' `value` property inside
  the window for a mean per unit; that sum over the events' number for a mean
  per converter (units without an event are left out);
- y, its pre-exposure value: the same sum over `pre_exposure_days` before the
  first exposure (CUPED);
- the time of its first counted event, for the time-to-convert curve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, cast, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.types import Float

from experiments.analysis import MICROS_PER_DAY, SYNTHETIC, property_equals, units_cte
from experiments.metrics import ORDER_KINDS, PER_CONVERTER, RATE, UNIT_COLUMN, ExperimentMetrics, Metric
from experiments.stats import Sums
from experiments.store import events


@dataclass(frozen=True)
class MetricSums:
    complete: Mapping[int, Sums]  # variation -> units whose window has closed
    open: Mapping[int, int]  # variation -> units still inside their window


def metric_sums(conn: Connection, experiment: ExperimentMetrics, metric: Metric, now_us: int) -> MetricSums:
    per_unit = _per_unit(experiment, metric, conn.dialect.name)
    x: ColumnElement[Any]
    if metric.kind == RATE:
        x, counted = case((per_unit.c.events > 0, 1.0), else_=0.0), literal(True)
    elif metric.per == PER_CONVERTER:
        x, counted = per_unit.c.post / per_unit.c.events, per_unit.c.events > 0
    else:
        x, counted = per_unit.c.post, literal(True)
    closed = per_unit.c.exposed_us + experiment.window_days * MICROS_PER_DAY <= now_us
    y = per_unit.c.pre
    rows = conn.execute(
        select(per_unit.c.variation_id, closed.label("closed"), func.count(), func.sum(x), func.sum(x * x),
               func.sum(y), func.sum(y * y), func.sum(x * y))
        .where(counted).group_by(per_unit.c.variation_id, closed)).all()
    complete: dict[int, Sums] = {}
    still_open: dict[int, int] = {}
    for variation, is_closed, n, *sums in rows:
        if is_closed:
            complete[int(variation)] = Sums(int(n), *(float(v or 0) for v in sums))
        else:
            still_open[int(variation)] = int(n)
    return MetricSums(complete, still_open)


def time_to_convert(conn: Connection, experiment: ExperimentMetrics, metric: Metric,
                    now_us: int) -> dict[int, dict[int, int]]:
    """{variation: {whole days from exposure to the first counted event: units}},
    over units whose window has closed."""
    per_unit = _per_unit(experiment, metric, conn.dialect.name)
    day = ((per_unit.c.first_us - per_unit.c.exposed_us) / MICROS_PER_DAY).label("day")
    rows = conn.execute(
        select(per_unit.c.variation_id, day, func.count())
        .where(per_unit.c.events > 0,
               per_unit.c.exposed_us + experiment.window_days * MICROS_PER_DAY <= now_us)
        .group_by(per_unit.c.variation_id, day)).all()
    found: dict[int, dict[int, int]] = {}
    for variation, days, n in rows:
        found.setdefault(int(variation), {})[int(days)] = int(n)
    return found


def _per_unit(experiment: ExperimentMetrics, metric: Metric, dialect: str) -> Any:
    units = units_cte(experiment)
    window_end = units.c.exposed_us + experiment.window_days * MICROS_PER_DAY
    in_window = and_(events.c.occurred_us >= units.c.exposed_us, events.c.occurred_us <= window_end)
    before = events.c.occurred_us < units.c.exposed_us
    value: ColumnElement[Any] = (literal(1.0) if metric.kind == RATE
                                 else cast(events.c.properties[metric.value].as_float(), Float))
    conditions = [
        events.c[UNIT_COLUMN[experiment.unit]] == units.c.unit_id, events.c.step == metric.step,
        events.c.traffic != SYNTHETIC, events.c.occurred_us <= window_end,
        events.c.occurred_us >= units.c.exposed_us - metric.pre_exposure_days * MICROS_PER_DAY,
        *(property_equals(dialect, name, v) for name, v in metric.where.items()),
    ]
    if metric.order_kinds:
        kind = events.c.properties["kind"].as_string()
        # an order without a kind is a first purchase (orders from before kinds existed)
        accepted = [kind.in_(metric.order_kinds)]
        if ORDER_KINDS[0] in metric.order_kinds:
            accepted.append(kind.is_(None))
        conditions.append(or_(*accepted))
    return (
        select(units.c.unit_id, units.c.variation_id, units.c.exposed_us,
               func.coalesce(func.sum(case((in_window, value), else_=0.0)), 0.0).label("post"),
               func.count(case((in_window, 1))).label("events"),
               func.coalesce(func.sum(case((before, value), else_=0.0)), 0.0).label("pre"),
               func.min(case((in_window, events.c.occurred_us))).label("first_us"))
        .select_from(units.outerjoin(events, and_(*conditions)))
        .group_by(units.c.unit_id, units.c.variation_id, units.c.exposed_us)
        .cte("per_unit"))
