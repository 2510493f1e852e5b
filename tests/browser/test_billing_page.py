"""The Billing page in a real browser: cards, automatic renewal with its reason
and mail, and who may do what."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import OutboxMessage, PaymentMethod
from services.common.clock import FixedClock
from services.notifications.domain import messages as M
from services.notifications.domain.rendering import render
from tests.browser.helpers import Site, enter_card, funnel_steps
from tests.support import LocalStripe

GLOBEX = 200


@pytest.fixture
def phone(viewport: dict[str, int]) -> None:
    viewport.update(width=375, height=740)


def open_billing(page: Page, site: Site, user_id: int = 1) -> None:
    site.sign_in(page, user_id=user_id, next_path=f"/billing/{GLOBEX}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Billing for globex")


def add_card(page: Page, number: str, make_default: bool) -> None:
    enter_card(page, number)
    page.get_by_label("Make it the default card").set_checked(make_default)
    page.get_by_role("button", name="Add card").click()
    expect(page.locator("#page-status")).to_have_text("The card was added.")


def cards(site: Site) -> list[tuple[str, bool, bool]]:
    with Session(site.app.extensions["checkout"].ctx.engine) as s:
        return [(c.last4, c.is_default, c.removed_at is not None)
                for c in s.scalars(select(PaymentMethod).order_by(PaymentMethod.id))]


def test_change_the_default_card_and_remove_the_old_one(phone: None, page: Page, checkout_site: Site,
                                                        localstripe: LocalStripe) -> None:
    open_billing(page, checkout_site)
    expect(page.locator("#cards")).to_contain_text("No card on file.")
    add_card(page, "4242424242424242", make_default=True)
    add_card(page, "5555555555554444", make_default=False)
    listed = page.locator(".saved-card")
    expect(listed).to_have_count(2)
    expect(listed.nth(0)).to_contain_text("Default")
    expect(listed.nth(1)).not_to_contain_text("Default")

    # The default pays for the renewal: removing it is refused with what to do instead.
    listed.nth(0).get_by_role("button", name="Remove").click()
    expect(page.locator("#cards-error")).to_contain_text("Add another card and make it the default first")

    listed.nth(1).get_by_role("button", name="Make default").click()
    expect(page.locator("#page-status")).to_have_text("The default card changed.")
    expect(page.locator(".saved-card").nth(1)).to_contain_text("Default")
    page.locator(".saved-card").nth(0).get_by_role("button", name="Remove").click()
    expect(page.locator("#page-status")).to_have_text("The card was removed.")
    expect(page.locator(".saved-card")).to_have_count(1)
    expect(page.locator(".saved-card")).to_contain_text("ending 4444")
    assert cards(checkout_site) == [("4242", False, True), ("4444", True, False)]
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # cards, orders, managers fit a phone
    assert {"card_captured", "default_card_changed", "card_removed"} <= set(funnel_steps(checkout_site.app))


def _mail(site: Site, topic: str) -> Any:
    """The mail notifications makes of the event checkout published."""
    with Session(site.app.extensions["checkout"].ctx.engine) as s:
        [payload] = [m.payload for m in s.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic))]
    planned = M.auto_renew_changed(payload, site.app.extensions["checkout"].ctx.clock.now())
    return render(planned.template, planned.context)


def test_turn_auto_renew_off_with_a_reason_and_see_the_mail(phone: None, page: Page, checkout_site: Site) -> None:
    open_billing(page, checkout_site)
    expect(page.locator("#renewal-summary")).to_contain_text(
        "Renews automatically on January 25, 2027 for $1,740.00")
    page.get_by_role("button", name="Turn off automatic renewal").click()
    form = page.locator("#auto-renew-off")
    expect(form).to_contain_text("The subscription stays active until January 25, 2027")
    expect(page.locator("#save-offer")).to_be_hidden()  # no save offer unless its experiment gives one
    form.get_by_role("button", name="Turn off automatic renewal").click()
    expect(page.locator("#reason-error")).to_have_text("Choose a reason.")
    form.get_by_label("It costs too much").check()
    form.get_by_role("button", name="Turn off automatic renewal").click()
    expect(page.locator("#page-status")).to_have_text(
        "Automatic renewal is off. We sent a confirmation by mail.")
    expect(page.locator("#renewal-summary")).to_contain_text(
        "The subscription ends on January 25, 2027; paid features continue until February 8, 2027")
    # Nothing is wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    mail = _mail(checkout_site, "subscription.auto_renew_changed")
    assert mail.subject == "Automatic renewal is off for globex: it ends on January 25, 2027"
    assert "your reason: It costs too much" in mail.text
    assert "returns to the Free plan" in mail.text and f"/billing/{GLOBEX}" in mail.text

    page.get_by_role("button", name="Turn automatic renewal back on").click()
    expect(page.locator("#renewal-summary")).to_contain_text("Renews automatically on January 25, 2027")
    assert {"auto_renew_off", "auto_renew_on"} <= set(funnel_steps(checkout_site.app))


def test_a_developer_is_refused(page: Page, checkout_site: Site) -> None:
    open_billing(page, checkout_site, user_id=3)  # Carol, a Developer of globex
    expect(page.locator("#read-only")).to_have_text(
        "Only Owners and billing managers of globex see its cards and orders.")
    expect(page.locator("#seats-bought")).to_have_text("5")  # the plan and seats she may read
    expect(page.get_by_role("button", name="Turn off automatic renewal")).to_have_count(0)
    expect(page.locator("#cards")).to_have_count(0)
    # The API behind the buttons refuses her too, with a stable code.
    answer = page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const r = await fetch('/namespaces/200/billing/cards', {headers: {'X-CSRF-Token': csrf}});
        return [r.status, (await r.json()).code];
    }""")
    assert answer == [403, "billing_manager_required"]


def test_invite_a_billing_manager_who_then_adds_a_card(page: Page, checkout_site: Site) -> None:
    open_billing(page, checkout_site)
    invite = page.get_by_label("Invite someone to manage billing")
    invite.fill("erin@partner")
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("#invite-error")).to_have_text("Not a valid email address.")
    invite.fill("erin@partner.test")
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("#page-status")).to_have_text("Invitation sent.")
    expect(page.locator(".invitation")).to_contain_text("Invited: erin@partner.test")
    with Session(checkout_site.app.extensions["checkout"].ctx.engine) as s:
        [link] = [m.payload["accept_url"] for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "billing.manager_invited"))]
    path = "/billing/invitation?token=" + link.rsplit("=", 1)[-1]

    page.context.clear_cookies()
    # The person invited, not a member of globex, signs in with the address invited.
    checkout_site.sign_in(page, 50, next_path=path)
    expect(page.get_by_role("heading", level=1)).to_have_text("Manage billing for globex")
    page.get_by_role("button", name="Accept").click()
    page.wait_for_url(f"**/billing/{GLOBEX}")
    expect(page.locator("#page-status")).to_have_text("You manage billing for this namespace now.")
    add_card(page, "4242424242424242", make_default=True)
    expect(page.locator(".saved-card")).to_contain_text("Default")
    assert cards(checkout_site) == [("4242", True, False)]

    page.goto(f"{checkout_site.url}{path}")  # the link works once
    expect(page.get_by_role("heading", level=1)).to_have_text("Invitation already used")


def test_schedule_a_seat_reduction_and_see_it_in_the_renewal_preview(page: Page, checkout_site: Site) -> None:
    open_billing(page, checkout_site)
    expect(page.locator("#renewal-total")).to_have_text("$1,740.00")
    page.get_by_text("Change at renewal").click()
    seats = page.get_by_label("Seats from the renewal on")
    seats.fill("3")
    page.get_by_role("button", name="Schedule the change").click()
    expect(page.locator("#change-error")).to_contain_text("at least 4 seats")
    seats.fill("4")
    page.get_by_role("button", name="Schedule the change").click()
    expect(page.locator("#page-status")).to_have_text("The change is scheduled for the renewal.")
    expect(page.locator("#scheduled-change")).to_contain_text(
        "Scheduled for the renewal on January 25, 2027: Renew with 4 seats.")
    expect(page.locator("#renewal-total")).to_have_text("$1,392.00")
    expect(page.locator("#renewal-summary")).to_contain_text("for $1,392.00 (4 seats, list price)")

    page.get_by_role("button", name="Cancel the change").click()
    expect(page.locator("#page-status")).to_have_text("The scheduled change was canceled.")
    expect(page.locator("#scheduled-change")).to_have_count(0)
    expect(page.locator("#renewal-total")).to_have_text("$1,740.00")
    assert {"change_scheduled", "scheduled_change_canceled"} <= set(funnel_steps(checkout_site.app))


def test_renew_now_from_thirty_days_before_the_end(page: Page, checkout_site: Site, clock: FixedClock) -> None:
    clock.set(datetime(2026, 12, 26, 9, 0, tzinfo=UTC))  # the term ends January 25, 2027
    open_billing(page, checkout_site)
    add_card(page, "4242424242424242", make_default=True)
    page.on("dialog", lambda dialog: dialog.accept())  # "Renew now for $1,740.00? ..."
    page.get_by_role("button", name="Renew now").click()
    expect(page.locator("#page-status")).to_have_text("Renewed. Thank you!")
    expect(page.locator("#term")).to_have_text("January 25, 2027 to January 25, 2028")
    expect(page.locator("#orders")).to_contain_text("January 25, 2027: $1,740.00 — succeeded (renewed by hand)")
