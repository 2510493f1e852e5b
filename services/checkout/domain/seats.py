"""Seats over a term: who holds a billable seat when, the most used, what is
owed, and the quarterly reconciliation's arithmetic (../shared/domain.md,
"Seats over a term"). Plain Python: the use cases read the holdings and apply
the results.

Seats in use at a moment is the number of holdings open then; the max used
in a window is the highest of that step function within it. Both are derived
from the holdings, so the max "resets" at a new term simply because the
window starts there, and a late change lands where it belongs in time.

A reconciliation charges for the quarter that closed the seats it used above
those bought, each at the annual price / 4 for every quarter left in the
term; the fourth quarter is never charged (the renewal trues up). The preview
and the charge price with the same function (`quarter_charge`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from services.checkout.domain.pricing import add_months

QUARTERS = 4
RULES_FILE = Path(__file__).resolve().parents[1] / "data" / "seats.toml"


@dataclass(frozen=True)
class SeatRules:
    notice_to_charge_days: int  # the mail on the reconciliation date, the charge this many days later
    explain_after_renewal_days: int  # the "how seats are counted" mail, this many days after a renewal
    max_bulk_assignments: int  # Duo seats assigned or unassigned in one request

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> SeatRules:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        return cls(int(data["notice_to_charge_days"]), int(data["explain_after_renewal_days"]),
                   int(data["max_bulk_assignments"]))


@dataclass(frozen=True)
class Holding:
    """One member holding a billable seat from `took_at` until `left_at` (None: still)."""

    user_id: int
    took_at: datetime
    left_at: datetime | None = None


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def in_use_at(holdings: Iterable[Holding], at: datetime) -> int:
    return sum(1 for h in holdings if h.took_at <= at and (h.left_at is None or h.left_at > at))


def series(holdings: Sequence[Holding], start: datetime,
           end: datetime | None = None) -> list[tuple[datetime, int]]:
    """Seats in use at `start` and after every change up to `end` (exclusive;
    None: every change known): a step function, one point per moment it changed."""
    points = [(start, in_use_at(holdings, start))]
    changes = sorted({t for h in holdings for t in (h.took_at, h.left_at)
                      if t is not None and start < t and (end is None or t < end)})
    for moment in changes:
        count = in_use_at(holdings, moment)
        if count != points[-1][1]:
            points.append((moment, count))
    return points


def max_used(holdings: Sequence[Holding], start: datetime, end: datetime | None = None) -> int:
    """The most seats in use at any moment in [start, end)."""
    return max(count for _, count in series(holdings, start, end))


def seats_owed(max_seats_used: int, seats: int) -> int:
    return max(0, max_seats_used - seats)


# --- quarters -------------------------------------------------------------------------
def quarter_end(term_start: date, quarter: int) -> date:
    """The day quarter `quarter` (1-4) of the term that starts on `term_start` ends
    (exclusive; the next quarter starts that day): its reconciliation date."""
    return add_months(term_start, 3 * quarter)


def quarter_start(term_start: date, quarter: int) -> date:
    return add_months(term_start, 3 * (quarter - 1))


def quarter_on(term_start: date, day: date) -> int:
    """The quarter of the term that `day` falls in (1-4; 4 past the end too)."""
    for quarter in range(1, QUARTERS):
        if day < quarter_end(term_start, quarter):
            return quarter
    return QUARTERS


def starts_on_or_before(day: date, months: int) -> date:
    """The latest term start whose `months`-th month ends on or before `day`:
    `add_months(start, months) <= day` exactly when `start <=` this (a bound a
    query can use, since add_months only ever moves forward as start does)."""
    start = add_months(day, -months)
    while add_months(start + timedelta(days=1), months) <= day:
        start += timedelta(days=1)
    return start


def quarter_charge(unit_amount: int, overage_seats: int, quarter: int) -> int:
    """What the reconciliation of quarter `quarter` charges for `overage_seats`:
    the annual price / 4 per seat for each quarter left in the term, rounded to
    the cent once. Nothing after the fourth: the renewal trues up."""
    left = QUARTERS - quarter
    if overage_seats <= 0 or left <= 0:
        return 0
    return (unit_amount * overage_seats * left + QUARTERS // 2) // QUARTERS


@dataclass(frozen=True)
class QuarterResult:
    quarter: int
    max_seats_used: int
    seats_before: int
    overage_seats: int  # seats the subscription gains (none in the fourth quarter)
    amount: int

    @property
    def seats_after(self) -> int:
        return self.seats_before + self.overage_seats


def reconcile(seats: int, max_seats_used: int, quarter: int, unit_amount: int) -> QuarterResult:
    """One quarter's reconciliation: the seats used above those bought are added
    and charged for the quarters left; in the fourth, nothing (the renewal does)."""
    overage = seats_owed(max_seats_used, seats) if quarter < QUARTERS else 0
    amount = quarter_charge(unit_amount, overage, quarter)
    return QuarterResult(quarter, max_seats_used, seats, overage, amount)


def reconcile_term(seats: int, quarter_maxes: Sequence[int], unit_amount: int) -> list[QuarterResult]:
    """A whole term's reconciliations, each quarter starting from the seats the
    last one left (the platform's published example is its test)."""
    results = []
    for quarter, most in enumerate(quarter_maxes, start=1):
        result = reconcile(seats, most, quarter, unit_amount)
        results.append(result)
        seats = result.seats_after
    return results


@dataclass(frozen=True)
class AddPreview:
    """What adding members would do to this quarter's reconciliation."""

    new_seats: int  # members who would take a seat they do not hold now
    seats_in_use_after: int
    owed_before: int
    owed_after: int
    amount_before: int  # what the next reconciliation charges as things are
    amount_after: int  # ... and after the add

    @property
    def will_increase_overage(self) -> bool:
        return self.owed_after > self.owed_before

    @property
    def additional_seats_owed(self) -> int:
        return self.owed_after - self.owed_before

    @property
    def additional_amount(self) -> int:
        return self.amount_after - self.amount_before


def preview_add(seats: int, in_use: int, quarter_max: int, new_seats: int, quarter: int,
                unit_amount: int) -> AddPreview:
    """`new_seats` more members now, with `seats` bought, `in_use` now and
    `quarter_max` the most used so far this quarter."""
    after = in_use + new_seats
    before_result = reconcile(seats, quarter_max, quarter, unit_amount)
    after_result = reconcile(seats, max(quarter_max, after), quarter, unit_amount)
    return AddPreview(new_seats, after, seats_owed(quarter_max, seats),
                      seats_owed(max(quarter_max, after), seats),
                      before_result.amount, after_result.amount)


# --- block seat overages ----------------------------------------------------------------
def overage_refusal(path: str, seats: int, in_use: int) -> str | None:
    """Why one more billable member is refused while overages are blocked, or None."""
    if in_use + 1 <= seats:
        return None
    return (f"{path} uses {in_use} of its {seats} paid seats and blocks seat overages: "
            "buy more seats, or add the member with a role that takes no seat.")
