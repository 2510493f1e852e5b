"""Expansions: seats, Duo add-ons and packs priced by the one proration rule (domain, no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from services.checkout.domain.catalog import Catalog
from services.checkout.domain.expansions import Expansion, Holdings, Kind, price_expansion
from services.checkout.domain.pricing import (
    AppliedDiscount,
    CurrentTerm,
    NamespaceFacts,
    Selection,
    assemble_quote,
    prorate,
    term_left,
)
from services.common.errors import DomainError

CATALOG = Catalog.load()
START, END = date(2026, 1, 25), date(2027, 1, 25)  # 365 days


def facts(plan: str = "premium", seats: int = 10, addons: tuple[tuple[str, int], ...] = (),
          start: date = START, end: date = END, top: bool = True) -> NamespaceFacts:
    current = CurrentTerm(7, plan, seats, start, end, addons) if plan != "free" else None
    return NamespaceFacts(300, top, plan, 4, current)


def price(expansion: Expansion, ns: NamespaceFacts | None = None, today: date = date(2026, 11, 21),
          holdings: Holdings | None = None) -> object:
    return price_expansion(CATALOG, expansion, ns or facts(), "globex", holdings or Holdings(), today)


def refusal(expansion: Expansion, ns: NamespaceFacts | None = None, today: date = date(2026, 11, 21)
            ) -> DomainError:
    with pytest.raises(DomainError) as excinfo:
        price(expansion, ns, today)
    return excinfo.value


def test_seats_are_prorated_like_an_upgrades_added_seats() -> None:
    quote = price_expansion(CATALOG, Expansion(Kind.SEATS, 3), facts(), "globex", Holdings(), date(2026, 11, 21))
    [line] = quote.lines
    assert (quote.days_left, quote.term_days) == (65, 365)
    assert line.amount == prorate(34800 * 3, 65, 365) == 18592
    assert quote.heading == "Add 3 seats to globex's Premium"
    assert quote.term_end == END and quote.subscription_id == 7
    assert (quote.after.seats, quote.after.plan) == (13, "premium")
    # The same seats added in an upgrade cost the same: one rule, written once.
    upgrade = assemble_quote(CATALOG, Selection("ultimate", 13), NamespaceFacts(
        300, True, "premium", 4, CurrentTerm(7, "premium", 10, START, END)), date(2026, 11, 21))
    ultimate = price_expansion(CATALOG, Expansion(Kind.SEATS, 3), facts("ultimate"), "globex", Holdings(),
                               date(2026, 11, 21))
    assert upgrade.lines[1].amount == ultimate.lines[0].amount


@pytest.mark.parametrize("today,days_left", [(START, 365), (date(2027, 1, 24), 1)])
def test_first_and_last_day(today: date, days_left: int) -> None:
    quote = price_expansion(CATALOG, Expansion(Kind.SEATS, 1), facts(), "globex", Holdings(), today)
    assert quote.days_left == days_left
    assert quote.total == prorate(34800, days_left, 365)
    if days_left == 365:
        assert quote.total == 34800  # the whole term costs the list price, not a cent more


def test_on_the_end_date_the_term_is_over() -> None:
    assert refusal(Expansion(Kind.SEATS, 1), today=END).code == "term_ended"


def test_a_leap_year_term_has_366_days() -> None:
    ns = facts(start=date(2028, 1, 10), end=date(2029, 1, 10))
    quote = price_expansion(CATALOG, Expansion(Kind.SEATS, 2), ns, "globex", Holdings(), date(2028, 3, 1))
    assert (quote.days_left, quote.term_days) == (315, 366)
    assert quote.total == prorate(34800 * 2, 315, 366)


def test_a_term_renewed_early_charges_to_its_new_end() -> None:
    # Renewed by hand a few days before the old end: the new term starts ahead.
    ns = facts(start=END, end=date(2028, 1, 25))
    today = date(2027, 1, 20)
    left = term_left(ns.current, today)  # type: ignore[arg-type]
    assert (left.days_left, left.term_days) == (370, 365)
    quote = price_expansion(CATALOG, Expansion(Kind.SEATS, 1), ns, "globex", Holdings(), today)
    assert quote.total == prorate(34800, 370, 365)


def test_duo_pro_on_premium_and_seats_added_to_it() -> None:
    quote = price_expansion(CATALOG, Expansion(Kind.ADDON, 5, "duo_pro"), facts(), "globex", Holdings(),
                            date(2026, 11, 21))
    assert quote.heading == "Add GitLab Duo Pro for 5 seats to globex"
    assert quote.total == prorate(22800 * 5, 65, 365)
    assert quote.after.addons == (("duo_pro", 5),)
    more = price_expansion(CATALOG, Expansion(Kind.ADDON, 2, "duo_pro"), facts(addons=(("duo_pro", 5),)),
                           "globex", Holdings(), date(2026, 11, 21))
    assert more.heading == "Add 2 seats to globex's GitLab Duo Pro"
    assert more.after.addons == (("duo_pro", 7),)


def test_addon_seats_never_exceed_the_subscriptions_and_the_error_names_the_maximum() -> None:
    problem = refusal(Expansion(Kind.ADDON, 4, "duo_pro"), facts(addons=(("duo_pro", 7),)))
    assert problem.code == "addon_seats_exceed_plan"
    assert problem.extra["maximum_seats"] == 10 and problem.extra["available_seats"] == 3
    assert "at most 10 seats" in problem.detail


def test_duo_enterprise_needs_ultimate() -> None:
    assert refusal(Expansion(Kind.ADDON, 1, "duo_enterprise")).code == "addon_not_available"
    quote = price(Expansion(Kind.ADDON, 1, "duo_enterprise"), facts("ultimate"))
    assert quote.lines[0].sku == "duo_enterprise"  # type: ignore[attr-defined]


@pytest.mark.parametrize("expansion,ns,code", [
    (Expansion(Kind.SEATS, 1), facts("free"), "no_subscription"),
    (Expansion(Kind.ADDON, 1, "duo_pro"), facts("free"), "no_subscription"),
    (Expansion(Kind.SEATS, 9991), facts(), "seats_above_maximum"),
    (Expansion(Kind.COMPUTE_MINUTES, 101), facts(), "quantity_above_maximum"),
    (Expansion(Kind.COMPUTE_MINUTES, 1), facts(top=False), "not_top_level"),
    (Expansion(Kind.STORAGE, 1), facts("free", top=False), "not_top_level"),
])
def test_refusals(expansion: Expansion, ns: NamespaceFacts, code: str) -> None:
    assert refusal(expansion, ns).code == code


def test_compute_minutes_for_a_free_group_are_one_time_and_never_end() -> None:
    quote = price_expansion(CATALOG, Expansion(Kind.COMPUTE_MINUTES, 2), facts("free"), "globex",
                            Holdings(compute_minutes=500), date(2026, 11, 21))
    assert quote.heading == "Buy 2,000 compute minutes for globex"
    assert (quote.total, quote.term_end, quote.days_left) == (2000, None, None)
    assert quote.after.compute_minutes == 2500


def test_storage_is_co_terminous_with_a_subscription_else_a_year() -> None:
    with_sub = price_expansion(CATALOG, Expansion(Kind.STORAGE, 3), facts(), "globex", Holdings(),
                               date(2026, 11, 21))
    assert with_sub.term_end == END and with_sub.total == prorate(6000 * 3, 65, 365)
    assert with_sub.after.storage_gib == 30
    alone = price_expansion(CATALOG, Expansion(Kind.STORAGE, 1), facts("free"), "globex", Holdings(),
                            date(2026, 11, 21))
    assert alone.term_end == date(2027, 11, 21) and alone.total == 6000


def test_a_discount_applies_to_the_prorated_line() -> None:
    discount = AppliedDiscount("DUO", "x", True, {"duo_pro": 1000})
    quote = price_expansion(CATALOG, Expansion(Kind.ADDON, 5, "duo_pro"), facts(), "globex", Holdings(),
                            date(2026, 11, 21), discount)
    assert quote.discount_total == 1000 and quote.total == prorate(22800 * 5, 65, 365) - 1000
