"""Geometry of the report's inline SVG charts, computed here so the templates
only draw: a funnel per variation, and an interval mark per comparison."""

from __future__ import annotations

from dataclasses import dataclass

from experiments import formatting
from experiments.analysis import Comparison, VariationResult

FUNNEL_WIDTH = 360
ROW_HEIGHT = 60
BAR_HEIGHT = 20
MIN_BAR = 2  # a step nobody reached still shows a sliver, so the row reads as zero, not missing
INTERVAL_WIDTH = 140
MIN_SCALE = 0.05


@dataclass(frozen=True)
class FunnelRow:
    label: str
    y: int
    bar_width: float
    value: str  # "1,234 · 12.3%"
    from_previous: str  # "38.0% of the previous step", "" for the first row


@dataclass(frozen=True)
class FunnelChart:
    width: int
    height: int
    bar_height: int
    rows: tuple[FunnelRow, ...]
    description: str


def funnel_chart(variation: VariationResult) -> FunnelChart:
    counts = [("Exposed", variation.units)] + [(s.label, s.units) for s in variation.steps]
    rows = []
    for position, (label, reached) in enumerate(counts):
        share = reached / variation.units if variation.units else 0.0
        previous = counts[position - 1][1] if position else 0
        rows.append(FunnelRow(
            label=label, y=position * ROW_HEIGHT, bar_width=max(MIN_BAR, round(share * FUNNEL_WIDTH, 1)),
            value=f"{formatting.count(reached)} · {formatting.percent(share if variation.units else None)}",
            from_previous=(f"{formatting.percent(reached / previous)} of the previous step"
                           if position > 1 and previous else "")))
    description = "; ".join(f"{r.label}: {r.value}" for r in rows)
    return FunnelChart(width=FUNNEL_WIDTH, height=len(rows) * ROW_HEIGHT, bar_height=BAR_HEIGHT,
                       rows=tuple(rows), description=f"Funnel of {variation.name}: {description}")


@dataclass(frozen=True)
class IntervalMark:
    width: int
    zero: float
    low: float
    high: float
    point: float
    tone: str  # "better", "worse" or "unclear"


def interval_scale(comparisons: list[Comparison]) -> float:
    """One scale for a table, so the intervals compare at a glance."""
    ends = [abs(e) for c in comparisons for e in (c.ci_low, c.ci_high) if e is not None]
    return max([MIN_SCALE, *ends])


def interval_mark(comparison: Comparison, scale: float) -> IntervalMark | None:
    if comparison.ci_low is None or comparison.ci_high is None or comparison.uplift is None:
        return None
    half = INTERVAL_WIDTH / 2 - 4

    def x(value: float) -> float:
        return round(INTERVAL_WIDTH / 2 + max(-1.0, min(1.0, value / scale)) * half, 1)

    tone = "better" if comparison.ci_low > 0 else "worse" if comparison.ci_high < 0 else "unclear"
    return IntervalMark(width=INTERVAL_WIDTH, zero=x(0), low=x(comparison.ci_low), high=x(comparison.ci_high),
                        point=x(comparison.uplift), tone=tone)
