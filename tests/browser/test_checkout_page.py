"""A prospect buys on the checkout page in a real browser: the quote, codes,
cards (declined, 3-D Secure), and a purchase that never happens twice."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.checkout.adapters.models import DiscountCampaign, DiscountCode, Order
from tests.browser.helpers import (
    Site,
    buy_button,
    count,
    enter_card,
    funnel_steps,
    pay_with_3d_secure,
    payment_intents,
)
from tests.support import LocalStripe

ACME = 100


def open_checkout(page: Page, site: Site, namespace_id: int = ACME) -> None:
    site.sign_in(page, next_path=f"/checkout?namespace_id={namespace_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Buy a subscription")


def expect_order_page(page: Page, heading: str, total: str) -> None:
    page.wait_for_url("**/checkout/orders/*")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("#order-total")).to_have_text(total)


def test_buy_premium_from_the_namespace_picker(page: Page, checkout_site: Site) -> None:
    checkout_site.sign_in(page)
    page.get_by_role("link", name="Buy for acme").click()
    seats = page.get_by_label("Seats")
    expect(seats).to_have_value("2")  # the offer's default: every billable member
    expect(page.locator("#seats-hint")).to_have_text("At least 2: acme has 2 billable members, "
                                                     "and each one needs a seat.")
    expect(page.locator("#smb-prompt")).to_be_hidden()
    expect(page.locator("#quote-total")).to_have_text("Total today: $696.00")

    seats.fill("1")
    expect(page.locator("#seats-error")).to_have_text(
        "This namespace has 2 billable members, so at least 2 seats are needed.")
    seats.fill("5")
    expect(page.locator("#quote-total")).to_have_text("Total today: $1,740.00")
    expect(page.locator("#seats-error")).to_be_hidden()
    enter_card(page, "4242424242424242")
    buy_button(page).click()

    expect_order_page(page, "Thank you! acme is on Premium.", "$1,740.00")
    expect(page.locator("#order-term")).to_have_text("November 21, 2026 to November 21, 2027")
    expect(page.locator("#next-renewal")).to_contain_text("November 21, 2027 (5 seats, renews automatically)")
    steps = funnel_steps(checkout_site.app)
    assert {"plans_viewed", "plan_chosen", "billing_account_saved", "card_setup_started", "card_captured",
            "purchase_completed"} <= set(steps)
    assert steps[-1] == "purchase_completed"


def test_a_declined_card_then_another_card_keeps_the_form(page: Page, checkout_site: Site) -> None:
    open_checkout(page, checkout_site)
    page.get_by_label("Seats").fill("3")
    page.get_by_label("Company").fill("Acme Widgets")
    expect(page.locator("#quote-total")).to_have_text("Total today: $1,044.00")
    enter_card(page, "4000000000000002")
    email = page.get_by_label("Billing email")
    email.fill("not-an-email")
    buy_button(page).click()
    expect(page.locator("#email-error")).to_have_text("Not a valid email address.")  # the API's words
    expect(email).to_have_attribute("aria-invalid", "true")
    email.fill("billing@acme.test")
    buy_button(page).click()

    expect(page.locator("#card-error")).to_contain_text("declined")
    expect(buy_button(page)).to_be_enabled()
    expect(page.get_by_label("Seats")).to_have_value("3")
    expect(page.get_by_label("Company")).to_have_value("Acme Widgets")
    assert "card_declined" in funnel_steps(checkout_site.app)

    enter_card(page, "4242424242424242")
    expect(page.locator("#card-error")).to_be_hidden()
    buy_button(page).click()
    expect_order_page(page, "Thank you! acme is on Premium.", "$1,044.00")
    assert count(checkout_site.app, Order) == 1


def test_a_card_that_needs_3d_secure(page: Page, checkout_site: Site) -> None:
    open_checkout(page, checkout_site)
    pay_with_3d_secure(page)
    expect_order_page(page, "Thank you! acme is on Premium.", "$696.00")
    assert "three_ds_required" in funnel_steps(checkout_site.app)


def test_a_discount_code_rejected_then_accepted(page: Page, checkout_site: Site,
                                                localstripe: LocalStripe) -> None:
    open_checkout(page, checkout_site)
    page.get_by_label("Ultimate").check()
    expect(page.locator("#quote-total")).to_have_text("Total today: $2,376.00")
    page.get_by_label("Discount code").fill("smb2026")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#discount_code-error")).to_have_text("This code applies to Premium only.")
    expect(page.locator("#quote-total")).to_have_text("Total today: $2,376.00")

    page.get_by_label("Premium").check()  # the code is tried again with the plan it is for
    expect(page.locator("#discount_code-error")).to_have_text("Code SMB2026 applied.")
    expect(page.locator("#quote-lines .discount")).to_have_text("Discount (SMB2026)-$240.00")
    expect(page.locator("#quote-total")).to_have_text("Total today: $456.00")
    enter_card(page, "4242424242424242")
    buy_button(page).click()

    expect_order_page(page, "Thank you! acme is on Premium.", "$456.00")
    assert [pi.amount for pi in payment_intents(checkout_site.app, localstripe)] == [45600]
    assert {"code_rejected", "code_applied", "code_redeemed"} <= set(funnel_steps(checkout_site.app))


def test_a_code_that_ends_before_buy_says_why_and_shows_the_full_price(page: Page,
                                                                       checkout_site: Site) -> None:
    open_checkout(page, checkout_site)
    page.get_by_label("Discount code").fill("SMB2026")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#quote-total")).to_have_text("Total today: $456.00")
    with Session(checkout_site.app.extensions["checkout"].ctx.engine) as s:  # the offer ends meanwhile
        campaign = select(DiscountCode.campaign_id).where(DiscountCode.code == "SMB2026").scalar_subquery()
        s.execute(update(DiscountCampaign).where(DiscountCampaign.id == campaign).values(status="ended"))
        s.commit()
    enter_card(page, "4242424242424242")
    buy_button(page).click()

    # An ended offer reads like any invalid code (the checker is no oracle), in words that fit both.
    said = "This code isn't valid: it may be mistyped, or the offer may have ended."
    expect(page.locator("#form-error")).to_have_text(said)
    # The server's own words next to the code (code_result.message), and the price Buy now charges.
    expect(page.locator("#discount_code-error")).to_have_text(said)
    expect(page.locator("#quote-total")).to_have_text("Total today: $696.00")
    buy_button(page).click()
    expect_order_page(page, "Thank you! acme is on Premium.", "$696.00")


def test_double_click_on_buy_buys_once(page: Page, checkout_site: Site, localstripe: LocalStripe) -> None:
    open_checkout(page, checkout_site)
    enter_card(page, "4242424242424242")
    buy_button(page).dblclick()
    expect_order_page(page, "Thank you! acme is on Premium.", "$696.00")
    assert count(checkout_site.app, Order) == 1
    assert len(payment_intents(checkout_site.app, localstripe)) == 1


def test_a_lost_answer_is_retried_with_the_same_key(page: Page, checkout_site: Site,
                                                    localstripe: LocalStripe) -> None:
    keys: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the purchase happens; its answer never reaches the page
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/purchases", lose_the_first_answer)
    open_checkout(page, checkout_site)
    enter_card(page, "4242424242424242")
    buy_button(page).click()
    expect(page.locator("#form-error")).to_contain_text("Press Pay again")
    buy_button(page).click()

    expect_order_page(page, "Thank you! acme is on Premium.", "$696.00")
    assert len(keys) == 2 and keys[0] == keys[1]
    assert count(checkout_site.app, Order) == 1
    assert len(payment_intents(checkout_site.app, localstripe)) == 1


@pytest.mark.flags({"smb-discount-prompt": 1})
def test_the_smb_prompt_fills_the_code_on_a_phone(phone: None, page: Page, checkout_site: Site) -> None:
    open_checkout(page, checkout_site)
    prompt = page.locator("#smb-prompt")
    expect(prompt).to_be_visible()
    expect(prompt.get_by_role("heading")).to_have_text("Small business? Premium for less.")
    prompt.get_by_role("button", name="Use code SMB2026").click()
    expect(page.get_by_label("Discount code")).to_have_value("SMB2026")
    expect(page.locator("#discount_code-error")).to_have_text("Code SMB2026 applied.")
    expect(page.locator("#quote-total")).to_have_text("Total today: $456.00")
    expect(prompt).to_be_hidden()  # the prompt is about using a code: done
    # Nothing is wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
