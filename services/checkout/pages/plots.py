"""The Billing page's plot of seats in use over the term, drawn server-side as SVG
coordinates (no chart library, and it prints as it shows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

WIDTH, HEIGHT, PAD = 560, 160, 28


@dataclass(frozen=True)
class SeatPlot:
    width: int
    height: int
    used: str  # polyline points of seats in use, a step per change, up to now
    bought_y: float  # the line of seats bought
    top: int  # the y axis' top value
    description: str


def seat_plot(points: list[dict[str, object]], bought: int, term_start: date, term_end: date,
              now: datetime) -> SeatPlot | None:
    """Seats in use (a step line up to `now`) against the seats bought, over the term."""
    if not points:
        return None
    start = datetime.combine(term_start, time(), UTC)
    span = (datetime.combine(term_end, time(), UTC) - start).total_seconds() or 1.0
    series = [(datetime.fromisoformat(str(p["at"])), int(str(p["seats_in_use"]))) for p in points]
    top = max([bought, *(n for _, n in series)]) or 1

    def x(at: datetime) -> float:
        return round(PAD + (WIDTH - 2 * PAD) * min(max((at - start).total_seconds() / span, 0.0), 1.0), 1)

    def y(n: int) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * n / top, 1)

    coords: list[tuple[float, float]] = []
    for at, n in series:
        if coords:
            coords.append((x(at), coords[-1][1]))  # hold the last count until this change
        coords.append((x(at), y(n)))
    coords.append((max(x(now), coords[-1][0]), coords[-1][1]))
    most = max(n for _, n in series)
    return SeatPlot(WIDTH, HEIGHT, " ".join(f"{a},{b}" for a, b in coords), y(bought), top,
                    f"Seats in use this term, from {series[0][1]} to {series[-1][1]} now (at most {most}), "
                    f"against {bought} seats bought.")
