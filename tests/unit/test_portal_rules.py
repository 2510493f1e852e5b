"""The customer portal's rules (pure): changes scheduled for the renewal, card
removal, marks on cards, automatic renewal's reason and its end."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.checkout.domain.catalog import Catalog
from services.checkout.domain.portal import PortalRules, check_auto_renew_change, check_card_removal
from services.checkout.domain.renewal import (
    ScheduledChange,
    Term,
    changes_between,
    check_change,
    renewal_quote,
)
from services.common.errors import Conflict, Invalid

CATALOG = Catalog.load()
RULES = PortalRules.load()
END = date(2027, 11, 21)
ULTIMATE = Term("ultimate", 10, (("duo_enterprise", 10), ("duo_pro", 10)), date(2026, 11, 21), END)


def test_a_scheduled_change_prices_the_renewal_and_says_so() -> None:
    change = ScheduledChange(seats=6, plan="premium", drop_addons=("duo_enterprise",))
    quote = renewal_quote(CATALOG, replace(ULTIMATE, change=change), billable_members=4)
    assert (quote.plan, quote.seats) == ("premium", 6)
    assert [line.sku for line in quote.lines] == ["premium", "duo_pro"]
    assert quote.lines[1].quantity == 6  # add-on seats follow the plan's
    assert quote.total == 6 * 34800 + 6 * 22800
    assert quote.snapshot()["scheduled_change"] == [
        "Move to Premium.", "Renew with 6 seats.", "Drop GitLab Duo Enterprise."]
    # The reminder stated the change, so the charge differs in nothing.
    assert changes_between(quote.snapshot(), quote) == []


def test_seats_never_go_below_the_billable_members_even_if_they_grew() -> None:
    quote = renewal_quote(CATALOG, replace(ULTIMATE, change=ScheduledChange(seats=6)), billable_members=8)
    assert quote.seats == 8


@pytest.mark.parametrize("change,code", [
    (ScheduledChange(), "nothing_to_change"),
    (ScheduledChange(seats=3), "seats_below_billable"),
    (ScheduledChange(plan="ultimate"), "plan_not_lower"),
    (ScheduledChange(plan="free"), "plan_not_lower"),
    (ScheduledChange(plan="platinum"), "plan_not_lower"),
    (ScheduledChange(drop_addons=("storage",)), "addon_not_held"),
    (ScheduledChange(plan="premium"), "addon_needs_plan"),  # Duo Enterprise needs Ultimate
])
def test_changes_that_break_a_rule_are_refused(change: ScheduledChange, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_change(CATALOG, ULTIMATE, 4, change)
    assert refused.value.code == code


def test_allowed_changes_pass() -> None:
    check_change(CATALOG, ULTIMATE, 4, ScheduledChange(seats=4))
    check_change(CATALOG, ULTIMATE, 4, ScheduledChange(plan="premium", drop_addons=("duo_enterprise",)))


def test_the_card_renewals_charge_can_not_go() -> None:
    with pytest.raises(Conflict) as refused:
        check_card_removal(is_default=True, cards_left=2, renewing=["globex"])
    assert refused.value.code == "card_needed_for_renewal" and "default card" in str(refused.value)
    with pytest.raises(Conflict, match="last card"):
        check_card_removal(is_default=False, cards_left=1, renewing=["globex"])
    check_card_removal(is_default=False, cards_left=2, renewing=["globex"])  # a spare card
    check_card_removal(is_default=True, cards_left=1, renewing=[])  # nothing renews automatically


def test_cards_are_marked_expired_or_expiring() -> None:
    today = date(2026, 11, 21)
    assert RULES.card_marks(10, 2026, today, None) == {"expired": True, "expiring": False}
    assert RULES.card_marks(12, 2026, today, None) == {"expired": False, "expiring": True}  # within 60 days
    assert RULES.card_marks(3, 2027, today, None) == {"expired": False, "expiring": False}
    assert RULES.card_marks(3, 2027, today, date(2027, 6, 1)) == {"expired": False, "expiring": True}


def test_turning_auto_renew_off_needs_a_known_reason_and_on_only_until_the_end() -> None:
    assert RULES.check_reason(False, "too_expensive") == "too_expensive"
    assert RULES.check_reason(True, "too_expensive") is None
    for reason, code in ((None, "reason_required"), ("meh", "unknown_reason")):
        with pytest.raises(Invalid) as refused:
            RULES.check_reason(False, reason)
        assert refused.value.code == code and refused.value.extra["reasons"][0] == "too_expensive"
    check_auto_renew_change(True, END, date(2027, 11, 20))
    check_auto_renew_change(False, END, END)
    with pytest.raises(Conflict, match="November 21, 2027"):
        check_auto_renew_change(True, END, END)


def test_an_add_on_the_lower_plan_can_not_carry_ends_with_the_term() -> None:
    # Duo Enterprise bought after "move to Premium" was scheduled: Premium can not carry it.
    quote = renewal_quote(CATALOG, replace(ULTIMATE, change=ScheduledChange(plan="premium")), billable_members=4)
    assert [line.sku for line in quote.lines] == ["premium", "duo_pro"]
    assert quote.dropped_addons == ("duo_enterprise",)
