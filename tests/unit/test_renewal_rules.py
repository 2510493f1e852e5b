"""Renewal pricing, reminder windows, dunning and card flags (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest

from services.checkout.domain.catalog import Catalog
from services.checkout.domain.renewal import (
    RenewalRules,
    Term,
    card_flags,
    changes_between,
    grace_ends,
    manual_renewal_opens,
    next_retry,
    renewal_quote,
)

CATALOG = Catalog.load()
RULES = RenewalRules.load()
END = date(2027, 11, 21)
TERM = Term("premium", 5, (("duo_pro", 5),), date(2026, 11, 21), END)


def test_rules_come_from_data() -> None:
    assert RULES.notices(auto_renew=True) == (90, 45, 30, 15)
    assert RULES.notices(auto_renew=False) == (90, 45, 30)
    assert (RULES.grace_days, RULES.dunning_retry_days[-1], RULES.manual_renewal_window_days) == (14, 14, 30)


def test_renewal_is_at_list_price_for_a_new_year() -> None:
    quote = renewal_quote(CATALOG, TERM, billable_members=3)
    assert [(line.sku, line.quantity, line.amount) for line in quote.lines] == [
        ("premium", 5, 5 * 34800), ("duo_pro", 5, 5 * 22800)]
    assert quote.total == 5 * (34800 + 22800)
    assert (quote.renewal_date, quote.new_term_end, quote.seats_owed) == (END, date(2028, 11, 21), 0)


def test_seats_rise_to_billable_members_and_owed_seats_are_shown() -> None:
    quote = renewal_quote(CATALOG, TERM, billable_members=8)
    assert quote.seats == 8 and quote.seats_owed == 3
    assert quote.lines[0].amount == 8 * 34800
    assert quote.lines[1].quantity == 5  # add-on seats stay as bought (never above the plan's)


def test_addon_seats_never_exceed_plan_seats() -> None:
    quote = renewal_quote(CATALOG, Term("premium", 2, (("duo_pro", 9),), TERM.term_start, END), 0)
    assert quote.lines[1].quantity == 2


def test_what_changed_between_reminder_and_charge() -> None:
    stated = renewal_quote(CATALOG, TERM, 3).snapshot()
    assert changes_between(stated, renewal_quote(CATALOG, TERM, 3)) == []
    grown = changes_between(stated, renewal_quote(CATALOG, TERM, 7))
    assert grown and "from 5 to 7" in grown[0]
    assert changes_between(None, renewal_quote(CATALOG, TERM, 7)) == []


@pytest.mark.parametrize("today,expected", [
    (date(2027, 11, 1), END),                  # a manual renewal failed early: try on the day
    (END, date(2027, 11, 22)),
    (date(2027, 11, 22), date(2027, 11, 24)),
    (date(2027, 12, 1), date(2027, 12, 5)),
    (date(2027, 12, 5), None),                 # the last dunning day has come: over
])
def test_dunning_retries_on_the_configured_days(today: date, expected: date | None) -> None:
    assert next_retry(END, today, RULES) == expected


def test_windows() -> None:
    assert manual_renewal_opens(END, RULES) == date(2027, 10, 22)
    assert grace_ends(END, RULES) == date(2027, 12, 5)


@pytest.mark.parametrize("month,year,today,expired,before_renewal", [
    (11, 2027, date(2027, 11, 30), False, False),   # valid through the end of its month
    (10, 2027, date(2027, 11, 1), True, True),
    (12, 2027, date(2027, 11, 1), False, False),
    (11, 2027, date(2027, 10, 1), False, False),
    (10, 2027, date(2027, 9, 1), False, True),       # will have expired by the renewal
])
def test_card_flags(month: int, year: int, today: date, expired: bool, before_renewal: bool) -> None:
    assert card_flags(month, year, today, END) == {"expired": expired, "expires_before_renewal": before_renewal}


def test_each_notice_is_due_until_the_next_one_and_the_last_until_the_renewal() -> None:
    assert RULES.windows(auto_renew=True) == ((90, 45), (45, 30), (30, 15), (15, 0))
    assert RULES.windows(auto_renew=False) == ((90, 45), (45, 30), (30, 0))
    assert [RULES.next_notice(d, auto_renew=True) for d in (90, 45, 30, 15)] == [45, 30, 15, 0]
    assert RULES.next_notice(30, auto_renew=False) == 0  # no auto-renewal notice to give way to
