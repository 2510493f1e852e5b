"""How numbers read in every report format (text, HTML)."""

from __future__ import annotations

from datetime import datetime

DASH = "–"


def count(value: int) -> str:
    return f"{value:,}"


def units(value: int, unit: str) -> str:
    """3, "user" -> '3 users'; 1, "namespace" -> '1 namespace'."""
    return f"{count(value)} {unit}" + ("" if value == 1 else "s")


def percent(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def signed_percent(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value * 100:+.{digits}f}%"


def signed_points(value: float | None, digits: int = 2) -> str:
    """An absolute difference of two rates: 0.012 -> '+1.20 pp'."""
    return DASH if value is None else f"{value * 100:+.{digits}f} pp"


def interval(low: float | None, high: float | None) -> str:
    return DASH if low is None or high is None else f"[{signed_percent(low)}, {signed_percent(high)}]"


def cents(value: float) -> str:
    """17400.0 -> '$174.00'."""
    return f"${value / 100:,.2f}"


def p_value(value: float | None) -> str:
    if value is None:
        return DASH
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def chance(value: float | None) -> str:
    if value is None:
        return DASH
    if value > 0.999:
        return ">99.9%"
    if value < 0.001:
        return "<0.1%"
    return percent(value)


def moment(value: datetime | None) -> str:
    return "never" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def split(weights: list[float]) -> str:
    """0.5, 0.5 -> '50/50'."""
    return "/".join(f"{w * 100:.0f}" for w in weights)


def verdict(p: float | None, uplift: float | None, alpha: float = 0.05) -> str:
    if p is None or uplift is None:
        return "no result yet"
    if p >= alpha:
        return "not significant"
    return "significantly better" if uplift > 0 else "significantly worse"
