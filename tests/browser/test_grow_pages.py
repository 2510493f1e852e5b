"""An existing customer grows on the checkout page in a real browser: seats, a Duo
add-on (from its trial), compute minutes and storage, with the saved card offered
instead of a new one, a declined card, and 3-D Secure.

globex is Premium with 5 seats, its term January 25, 2026 to January 25, 2027: on
November 21, 2026 (the tests' clock) 65 of 365 days are left, so a seat costs
$348 x 65 / 365 and a Duo Pro seat $228 x 65 / 365."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import Order, PaymentMethod, Subscription, SubscriptionAddOn
from tests.browser.helpers import (
    Site,
    buy_button,
    count,
    enter_card,
    funnel_steps,
    pay_with_3d_secure,
    payment_intents,
    save_card,
)
from tests.support import LocalStripe

ACME, GLOBEX = 100, 200


def heading(page: Page) -> object:
    return expect(page.get_by_role("heading", level=1))


def expect_expansion_done(page: Page, what: str, total: str) -> None:
    page.wait_for_url("**/checkout/orders/*")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Thank you! Your order for \w+ is complete."))
    expect(page.locator("#order-heading")).to_have_text(f"{what}: done.")
    expect(page.locator("#order-total")).to_have_text(total)


def orders_completed(site: Site) -> int:
    return count(site.app, Order, Order.status == "completed")


def test_a_returning_buyer_pays_with_the_saved_card_without_the_billing_form(
        page: Page, checkout_site: Site, localstripe: LocalStripe) -> None:
    save_card(checkout_site, localstripe)
    checkout_site.sign_in(page, next_path=f"/checkout?namespace_id={ACME}")
    saved = page.get_by_label(re.compile(r"Your saved Visa card ending in 4242, expires \d\d/\d{4}"))
    expect(saved).to_be_checked()
    expect(page.get_by_label("Company")).to_be_hidden()
    expect(page.locator("#card-element")).to_be_hidden()

    page.get_by_label("Use a different card").check()  # still possible: the form comes back, filled in
    expect(page.get_by_label("Company")).to_have_value("Acme Corp")
    expect(page.locator("#card-element")).to_be_visible()
    saved.check()
    expect(page.get_by_label("Company")).to_be_hidden()

    expect(buy_button(page)).to_have_text("Pay $696.00")
    buy_button(page).click()
    page.wait_for_url("**/checkout/orders/*")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you! acme is on Premium.")
    assert count(checkout_site.app, PaymentMethod) == 1  # no card typed again
    assert funnel_steps(checkout_site.app).count("card_setup_started") == 1  # the API's, before the page
    assert [pi.amount for pi in payment_intents(checkout_site.app, localstripe)] == [69600]


def test_add_seats_from_the_namespace_picker_with_the_saved_card(page: Page, checkout_site: Site,
                                                                 localstripe: LocalStripe) -> None:
    save_card(checkout_site, localstripe)
    checkout_site.sign_in(page)
    globex = page.locator("li.card", has=page.get_by_role("heading", name="globex", exact=True))
    globex.get_by_role("link", name="Add seats").click()

    heading(page).to_have_text("Add 1 seat to globex's Premium")
    expect(page.locator(".lead")).to_have_text("globex is on Premium with 5 seats today.")
    expect(page.get_by_label("Company")).to_be_hidden()
    page.get_by_label("Seats to add").fill("3")
    heading(page).to_have_text("Add 3 seats to globex's Premium")
    expect(page.locator("#quote-total")).to_have_text("Total today: $185.92")
    expect(page.locator("#quote-after")).to_have_text("Afterwards: 8 seats on Premium.")
    page.get_by_label("Discount code").fill("SMB2026")  # for a first Premium purchase only
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#discount_code-error")).not_to_be_empty()
    expect(page.locator("#discount_code-error")).not_to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#quote-total")).to_have_text("Total today: $185.92")
    expect(buy_button(page)).to_have_text("Pay $185.92")
    buy_button(page).click()

    expect_expansion_done(page, "Add 3 seats to globex's Premium", "$185.92")
    expect(page.locator("#next-renewal")).to_contain_text("8 seats")
    assert [pi.amount for pi in payment_intents(checkout_site.app, localstripe)] == [18592]


def test_a_duo_pro_trial_links_to_buying_duo_pro(page: Page, trials_site: Site, checkout_site: Site,
                                                 localstripe: LocalStripe) -> None:
    trials_site.sign_in(page, next_path="/trials")
    duo = page.get_by_role("region", name="globex").locator(".trial[data-kind=duo_pro]")
    duo.get_by_role("button", name="Start the GitLab Duo Pro trial").click()
    expect(duo).to_contain_text("Active: 60 days left")
    duo.get_by_role("link", name="Buy GitLab Duo Pro").click()

    page.wait_for_url(f"{checkout_site.url}/checkout?namespace_id={GLOBEX}&mode=add-duo&sku=duo_pro")
    heading(page).to_have_text("Add GitLab Duo Pro for 5 seats to globex")
    expect(page.get_by_label("Add-on seats to add")).to_have_value("5")
    expect(page.locator("#quote-after")).to_have_text("Afterwards: GitLab Duo Pro for 5 of 5 seats.")
    page.get_by_label("Add-on seats to add").fill("6")  # more than the subscription's seats
    expect(page.locator("#quantity-error")).to_contain_text("at most 5 seats")
    expect(buy_button(page)).to_have_text("Pay")
    page.get_by_label("Add-on seats to add").fill("5")
    expect(buy_button(page)).to_have_text("Pay $203.01")
    enter_card(page, "4242424242424242")  # no saved card yet: the billing form and the card
    buy_button(page).click()

    expect_expansion_done(page, "Add GitLab Duo Pro for 5 seats to globex", "$203.01")
    assert [pi.amount for pi in payment_intents(checkout_site.app, localstripe)] == [20301]


def test_buy_compute_minutes_and_see_storage_on_a_phone(phone: None, page: Page, checkout_site: Site,
                                                        localstripe: LocalStripe) -> None:
    checkout_site.sign_in(page, next_path=f"/checkout?namespace_id={ACME}&mode=buy-packs")
    heading(page).to_have_text("Buy 1,000 compute minutes for acme")
    page.get_by_label("Packs").fill("3")
    heading(page).to_have_text("Buy 3,000 compute minutes for acme")
    expect(page.locator("#quote-term")).to_have_text("One-time purchase; never expires")
    expect(buy_button(page)).to_have_text("Pay $30.00")

    page.get_by_label(re.compile("10 GiB storage")).check()  # acme has no subscription: a year from today
    heading(page).to_have_text("Add 30 GiB of storage to acme")
    expect(page.locator("#quote-term")).to_have_text("November 21, 2026 to November 21, 2027")
    expect(buy_button(page)).to_have_text("Pay $180.00")
    page.get_by_label(re.compile("1,000 compute minutes")).check()
    expect(buy_button(page)).to_have_text("Pay $30.00")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    enter_card(page, "4242424242424242")
    buy_button(page).click()

    expect_expansion_done(page, "Buy 3,000 compute minutes for acme", "$30.00")
    expect(page.locator("#order-term")).to_have_text("One-time purchase; never expires")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_a_saved_card_declined_then_a_different_card(page: Page, checkout_site: Site,
                                                     localstripe: LocalStripe) -> None:
    save_card(checkout_site, localstripe, "4000000000000341")  # saves fine; every charge is declined
    checkout_site.sign_in(page, next_path=f"/checkout?namespace_id={GLOBEX}&mode=add-seats")
    expect(buy_button(page)).to_have_text("Pay $61.97")
    buy_button(page).click()
    expect(page.locator("#pay-with-error")).to_contain_text("declined")
    expect(buy_button(page)).to_be_enabled()
    assert funnel_steps(checkout_site.app)[-1] == "purchase_failed"

    page.get_by_label("Use a different card").check()
    expect(page.locator("#pay-with-error")).to_be_hidden()
    enter_card(page, "4242424242424242")
    buy_button(page).click()
    expect_expansion_done(page, "Add 1 seat to globex's Premium", "$61.97")
    assert orders_completed(checkout_site) == 1


def test_more_seats_for_an_add_on_held_with_3d_secure(page: Page, checkout_site: Site) -> None:
    # globex already holds Duo Pro for 2 seats: the page adds seats to it.
    with Session(checkout_site.app.extensions["checkout"].ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == GLOBEX))
        assert sub is not None
        s.add(SubscriptionAddOn(subscription_id=sub.id, sku="duo_pro", seats=2))
        s.commit()
    checkout_site.sign_in(page, next_path=f"/checkout?namespace_id={GLOBEX}&mode=add-duo")
    heading(page).to_have_text("Add 1 seat to globex's GitLab Duo Pro")
    expect(page.locator(".lead")).to_have_text("globex is on Premium with 5 seats, GitLab Duo Pro for 2 today.")
    page.get_by_label("Add-on seats to add").fill("2")
    expect(page.locator("#quote-after")).to_have_text("Afterwards: GitLab Duo Pro for 4 of 5 seats.")
    pay_with_3d_secure(page)
    expect_expansion_done(page, "Add 2 seats to globex's GitLab Duo Pro", "$81.21")
    assert "three_ds_required" in funnel_steps(checkout_site.app)
    assert orders_completed(checkout_site) == 1
