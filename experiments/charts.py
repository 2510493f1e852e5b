"""Geometry of the report's inline SVG charts, computed here so the templates
only draw: a funnel per variation, and an interval mark per comparison."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from experiments import formatting
from experiments.analysis import VariationResult
from experiments.decisions import Curve

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


class Interval(Protocol):
    """A relative uplift with its interval (a funnel comparison or a plan metric's result)."""

    @property
    def uplift(self) -> float | None: ...
    @property
    def ci_low(self) -> float | None: ...
    @property
    def ci_high(self) -> float | None: ...


def interval_scale(comparisons: Sequence[Interval]) -> float:
    """One scale for a table, so the intervals compare at a glance."""
    ends = [abs(e) for c in comparisons for e in (c.ci_low, c.ci_high) if e is not None]
    return max([MIN_SCALE, *ends])


def interval_mark(comparison: Interval, scale: float, higher_is_better: bool = True) -> IntervalMark | None:
    if comparison.ci_low is None or comparison.ci_high is None or comparison.uplift is None:
        return None
    half = INTERVAL_WIDTH / 2 - 4

    def x(value: float) -> float:
        return round(INTERVAL_WIDTH / 2 + max(-1.0, min(1.0, value / scale)) * half, 1)

    up, down = ("better", "worse") if higher_is_better else ("worse", "better")
    tone = up if comparison.ci_low > 0 else down if comparison.ci_high < 0 else "unclear"
    return IntervalMark(width=INTERVAL_WIDTH, zero=x(0), low=x(comparison.ci_low), high=x(comparison.ci_high),
                        point=x(comparison.uplift), tone=tone)


CURVE_WIDTH = 360
CURVE_HEIGHT = 150
CURVE_PAD = 28  # room for the axis labels


@dataclass(frozen=True)
class CurveLine:
    variation: int
    name: str
    points: str  # SVG polyline points
    final: str  # "12.3% by day 14"


@dataclass(frozen=True)
class CurveChart:
    width: int
    height: int
    pad: int
    lines: tuple[CurveLine, ...]
    top_label: str  # the y axis' top value
    days: int
    description: str


def time_to_convert_chart(curves: tuple[Curve, ...], days: int) -> CurveChart:
    """Cumulative conversion by day since exposure, one line per variation, one scale."""
    top = max([0.01, *(max(c.shares, default=0.0) for c in curves)])
    plot_w, plot_h = CURVE_WIDTH - CURVE_PAD, CURVE_HEIGHT - CURVE_PAD

    def point(day: int, share: float) -> str:
        return f"{CURVE_PAD + day / max(days, 1) * plot_w:.1f},{plot_h - share / top * plot_h:.1f}"

    lines = tuple(CurveLine(c.variation, c.name, " ".join(point(d, s) for d, s in enumerate(c.shares)),
                            f"{formatting.percent(c.shares[-1] if c.shares else None)} by day {days}")
                  for c in curves)
    description = "; ".join(f"{line.name}: {line.final}" for line in lines)
    return CurveChart(width=CURVE_WIDTH, height=CURVE_HEIGHT, pad=CURVE_PAD, lines=lines,
                      top_label=formatting.percent(top, 0), days=days,
                      description=f"Cumulative conversion by days since exposure. {description}")
