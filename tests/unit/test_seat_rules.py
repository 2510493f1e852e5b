"""Seats over a term (domain/seats.py): in use, max used, quarters, the
reconciliation charge with the platform's published example, the preview."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.checkout.domain import seats as S


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


HOLDINGS = [S.Holding(1, at(1)), S.Holding(2, at(2), at(5)), S.Holding(3, at(3), at(4)), S.Holding(4, at(6))]


def test_in_use_max_and_series() -> None:
    assert S.in_use_at(HOLDINGS, at(3)) == 3
    assert S.in_use_at(HOLDINGS, at(4)) == 2  # left at that moment: no longer counted
    assert S.series(HOLDINGS, at(1)) == [(at(1), 1), (at(2), 2), (at(3), 3), (at(4), 2), (at(5), 1),
                                         (at(6), 2)]
    assert S.max_used(HOLDINGS, at(1)) == 3
    assert S.max_used(HOLDINGS, at(4)) == 2  # a window that starts later has its own max
    assert S.max_used(HOLDINGS, at(1), at(3)) == 2
    assert S.seats_owed(3, 2) == 1 and S.seats_owed(1, 2) == 0


def test_quarters_of_a_term() -> None:
    start = date(2026, 1, 31)
    assert [S.quarter_end(start, q) for q in (1, 2, 3, 4)] == [
        date(2026, 4, 30), date(2026, 7, 31), date(2026, 10, 31), date(2027, 1, 31)]
    assert S.quarter_on(start, date(2026, 4, 29)) == 1 and S.quarter_on(start, date(2026, 4, 30)) == 2
    assert S.quarter_on(start, date(2027, 3, 1)) == 4


@pytest.mark.parametrize("day", [date(2026, 4, 30), date(2026, 3, 1), date(2026, 2, 28), date(2024, 2, 29)])
def test_the_bound_a_query_uses_for_quarter_ends(day: date) -> None:
    bound = S.starts_on_or_before(day, 3)
    assert S.add_months(bound, 3) <= day < S.add_months(date.fromordinal(bound.toordinal() + 1), 3)


def test_the_platforms_published_example() -> None:
    """100 seats at $100/year; Q1 max 110 -> 10 x $25 x 3; Q2 max 105 -> nothing;
    Q3 max 120 -> 10 x $25 x 1; Q4 -> nothing (the renewal trues up)."""
    results = S.reconcile_term(100, [110, 105, 120, 120], unit_amount=10_000)
    assert [(r.overage_seats, r.amount, r.seats_after) for r in results] == [
        (10, 75_000, 110), (0, 0, 110), (10, 25_000, 120), (0, 0, 120)]


def test_fourth_quarter_charges_nothing_and_rounding_is_once() -> None:
    assert S.quarter_charge(10_000, 50, 4) == 0
    assert S.quarter_charge(1_001, 1, 3) == 250  # 250.25 cents, rounded once
    assert S.quarter_charge(1_002, 1, 1) == 752  # 751.5 rounds half up


def test_the_preview_prices_with_the_reconciliation() -> None:
    preview = S.preview_add(seats=100, in_use=100, quarter_max=103, new_seats=5, quarter=2,
                            unit_amount=10_000)
    assert preview.will_increase_overage and preview.additional_seats_owed == 2
    assert (preview.owed_before, preview.owed_after) == (3, 5)
    assert preview.amount_after == S.reconcile(100, 105, 2, 10_000).amount == 25_000
    assert preview.additional_amount == 10_000
    within = S.preview_add(seats=100, in_use=90, quarter_max=95, new_seats=5, quarter=1, unit_amount=10_000)
    assert not within.will_increase_overage and within.amount_after == 0


def test_block_seat_overages_reason() -> None:
    assert S.overage_refusal("globex", 5, 4) is None
    assert "uses 5 of its 5 paid seats" in (S.overage_refusal("globex", 5, 5) or "")
