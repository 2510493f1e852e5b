"""Pricing and seat rules (domain, no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from services.checkout.domain.catalog import Catalog
from services.checkout.domain.pricing import (
    AddOnSelection,
    AppliedDiscount,
    NamespaceFacts,
    Selection,
    add_months,
    assemble_quote,
    minimum_seats,
    price_lines,
)
from services.common.errors import DomainError

CATALOG = Catalog.load()
TODAY = date(2026, 11, 21)


def ns(billable: int = 3, top: bool = True, plan: str = "free") -> NamespaceFacts:
    return NamespaceFacts(id=100, is_top_level=top, current_plan=plan, billable_members=billable)


def code_of(excinfo: pytest.ExceptionInfo[DomainError]) -> str:
    return excinfo.value.code


def test_catalog_has_public_list_prices() -> None:
    assert CATALOG.plans["premium"].unit_amount == 29 * 12 * 100
    assert CATALOG.plans["ultimate"].unit_amount == 99 * 12 * 100
    assert CATALOG.addons["duo_pro"].unit_amount == 19 * 12 * 100
    assert CATALOG.addons["duo_enterprise"].unit_amount == 39 * 12 * 100
    assert CATALOG.addons["duo_enterprise"].requires_plans == ("ultimate",)
    assert not CATALOG.plans["free"].purchasable


def test_catalog_rejects_addon_requiring_unknown_plan() -> None:
    data = {"version": "x", "currency": "usd", "term_months": 12, "max_seats": 10,
            "plans": {"p": {"name": "P", "unit_amount": 1, "purchasable": True, "rank": 1}},
            "addons": {"a": {"name": "A", "unit_amount": 1, "requires_plans": ["nope"]}}}
    with pytest.raises(ValueError, match="unknown plans"):
        Catalog.from_dict(data)


@pytest.mark.parametrize("billable,expected", [(0, 1), (1, 1), (7, 7)])
def test_minimum_seats_is_at_least_one_and_covers_billable_members(billable: int, expected: int) -> None:
    assert minimum_seats(billable) == expected


def test_premium_quote_in_cents_with_a_one_year_term() -> None:
    quote = assemble_quote(CATALOG, Selection("premium", 5), ns(3), TODAY)
    assert [(line.sku, line.quantity, line.amount) for line in quote.lines] == [("premium", 5, 174000)]
    assert quote.total == 174000
    assert quote.minimum_seats == 3
    assert (quote.term_start, quote.term_end) == (TODAY, date(2027, 11, 21))


def test_addon_lines_are_priced_per_addon_seat() -> None:
    quote = assemble_quote(CATALOG, Selection("ultimate", 10, (AddOnSelection("duo_enterprise", 4),)),
                           ns(3), TODAY)
    assert [line.amount for line in quote.lines] == [1188000, 4 * 46800]
    assert quote.total == 1188000 + 187200


def test_seats_below_billable_members_are_refused_with_the_minimum() -> None:
    with pytest.raises(DomainError) as excinfo:
        price_lines(CATALOG, Selection("premium", 2), ns(4))
    assert code_of(excinfo) == "seats_below_minimum"
    assert excinfo.value.extra == {"minimum_seats": 4, "billable_members": 4}
    assert "at least 4 seats" in (excinfo.value.detail or "")


def test_seats_above_self_service_maximum_are_refused() -> None:
    with pytest.raises(DomainError) as excinfo:
        price_lines(CATALOG, Selection("premium", CATALOG.max_seats + 1), ns(1))
    assert code_of(excinfo) == "seats_above_maximum"


@pytest.mark.parametrize("selection,code", [
    (Selection("platinum", 5), "unknown_plan"),
    (Selection("free", 5), "plan_not_purchasable"),
    (Selection("premium", 5, (AddOnSelection("duo_enterprise", 1),)), "addon_not_available"),
    (Selection("premium", 5, (AddOnSelection("duo_pro", 6),)), "addon_seats_exceed_plan"),
    (Selection("premium", 5, (AddOnSelection("duo_pro", 0),)), "addon_seats_exceed_plan"),
    (Selection("premium", 5, (AddOnSelection("duo_pro", 1), AddOnSelection("duo_pro", 1))),
     "duplicate_addon"),
    (Selection("premium", 5, (AddOnSelection("copilot", 1),)), "unknown_addon"),
])
def test_selection_rules(selection: Selection, code: str) -> None:
    with pytest.raises(DomainError) as excinfo:
        price_lines(CATALOG, selection, ns(1))
    assert code_of(excinfo) == code


def test_subgroups_can_not_buy() -> None:
    with pytest.raises(DomainError) as excinfo:
        price_lines(CATALOG, Selection("premium", 5), ns(1, top=False))
    assert code_of(excinfo) == "not_top_level"


def test_addon_seats_may_equal_plan_seats() -> None:
    lines = price_lines(CATALOG, Selection("premium", 5, (AddOnSelection("duo_pro", 5),)), ns(1))
    assert lines[1].quantity == 5


def test_discount_is_capped_at_the_line_amount() -> None:
    discount = AppliedDiscount("X", "x", True, {"premium": 10**9})
    quote = assemble_quote(CATALOG, Selection("premium", 2), ns(1), TODAY, discount)
    assert quote.discount_total == quote.subtotal
    assert quote.total == 0


@pytest.mark.parametrize("start,months,end", [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2026, 11, 21), 12, date(2027, 11, 21)),
    (date(2026, 12, 15), 1, date(2027, 1, 15)),
])
def test_add_months_clamps_to_month_end(start: date, months: int, end: date) -> None:
    assert add_months(start, months) == end


# --- upgrades -------------------------------------------------------------------
from services.checkout.domain.pricing import CurrentTerm, prorate  # noqa: E402

TERM = CurrentTerm(subscription_id=7, plan="premium", seats=5, term_start=date(2026, 1, 25),
                   term_end=date(2027, 1, 25))
PREMIUM_NS = NamespaceFacts(id=200, is_top_level=True, current_plan="premium", billable_members=4,
                            current=TERM)


@pytest.mark.parametrize("amount,left,term,expected", [(36500, 1, 365, 100), (100, 1, 3, 33),
                                                       (200, 1, 3, 67), (420000, 65, 365, 74795)])
def test_prorate_rounds_to_the_nearest_cent(amount: int, left: int, term: int, expected: int) -> None:
    assert prorate(amount, left, term) == expected


def test_upgrade_charges_the_difference_for_the_rest_of_the_term() -> None:
    quote = assemble_quote(CATALOG, Selection("ultimate", 5), PREMIUM_NS, TODAY)
    [line] = quote.lines
    days_left = (TERM.term_end - TODAY).days
    assert days_left == 65
    assert (line.quantity, line.unit_amount) == (5, 118800 - 34800)
    assert line.amount == prorate((118800 - 34800) * 5, 65, 365)
    assert quote.term_end == TERM.term_end and quote.upgrade_of == 7
    assert "65 of 365 days" in line.description


def test_upgrade_with_more_seats_and_an_addon() -> None:
    selection = Selection("ultimate", 8, (AddOnSelection("duo_enterprise", 2),))
    quote = assemble_quote(CATALOG, selection, PREMIUM_NS, TODAY)
    assert [(line.sku, line.quantity) for line in quote.lines] == [
        ("ultimate", 5), ("ultimate_seats", 3), ("duo_enterprise", 2)]
    assert quote.lines[1].amount == prorate(118800 * 3, 65, 365)
    assert quote.lines[2].amount == prorate(46800 * 2, 65, 365)


@pytest.mark.parametrize("selection,code", [(Selection("premium", 5), "already_subscribed"),
                                            (Selection("ultimate", 4), "seats_below_minimum")])
def test_upgrade_refusals(selection: Selection, code: str) -> None:
    with pytest.raises(DomainError) as excinfo:
        assemble_quote(CATALOG, selection, PREMIUM_NS, TODAY)
    assert code_of(excinfo) == code


def test_no_upgrade_after_the_term_ended() -> None:
    with pytest.raises(DomainError) as excinfo:
        assemble_quote(CATALOG, Selection("ultimate", 5), PREMIUM_NS, TERM.term_end)
    assert code_of(excinfo) == "term_ended"


def test_upgrade_does_not_charge_addon_seats_already_paid() -> None:
    held = NamespaceFacts(id=200, is_top_level=True, current_plan="premium", billable_members=4,
                          current=CurrentTerm(7, "premium", 5, TERM.term_start, TERM.term_end, (("duo_pro", 3),)))
    same = assemble_quote(CATALOG, Selection("ultimate", 5, (AddOnSelection("duo_pro", 3),)), held, TODAY)
    assert [line.sku for line in same.lines] == ["ultimate"]
    more = assemble_quote(CATALOG, Selection("ultimate", 5, (AddOnSelection("duo_pro", 5),)), held, TODAY)
    assert [(line.sku, line.quantity) for line in more.lines] == [("ultimate", 5), ("duo_pro", 2)]
    # 2 seats x $228 x 65/365 days = $81.21
    assert more.lines[1].amount == 8121
    # 5 seats x ($1,188 - $348) x 65/365 = $747.95
    assert more.lines[0].amount == 74795
