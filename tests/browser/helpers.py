"""What the browser tests do on the pages and look at afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from playwright.sync_api import Locator, Page
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import BillingAccount, FunnelEventRow
from tests.e2e.helpers import Buyer
from tests.support import LocalStripe


@dataclass
class Site:
    """A service on a live socket."""

    app: Flask
    url: str

    def sign_in(self, page: Page, user_id: int = 1, next_path: str = "/checkout") -> None:
        """Sign in as a person does: our /sign-in, the provider's login page, back to `next`."""
        page.goto(f"{self.url}/sign-in?{urlencode({'next': next_path})}")
        log_in_at_provider(page, user_id)


def log_in_at_provider(page: Page, user_id: int) -> None:
    """On the identity provider's login page, pick the user and come back."""
    page.get_by_role("button", name=str(user_id), exact=True).click()
    page.wait_for_url(lambda url: "/oauth2/" not in url and "/sign-in" not in url)


def enter_card(page: Page, number: str) -> None:
    """Type a test card into the card element (localstripe's stand-in for Stripe's)."""
    card = page.locator("#card-element")
    for field, value in [("number", number), ("exp_month", "12"), ("exp_year", "34"), ("cvc", "123"),
                         ("postal_code", "94105")]:
        card.get_by_placeholder(field, exact=True).fill(value)


def pay_with_3d_secure(page: Page) -> None:
    """Pay with a new card that asks for 3-D Secure, and pass localstripe's stand-in for
    the bank's dialog twice: once to save the card, once to pay."""
    enter_card(page, "4000002500003155")
    buy_button(page).click()
    for _ in range(2):
        page.get_by_role("button", name="Complete authentication").click()


def buy_button(page: Page) -> Locator:
    """The Buy button: it reads "Pay <the quote's total>"."""
    return page.locator("#buy")


def save_card(site: Site, localstripe: LocalStripe, number: str = "4242424242424242", user_id: int = 1) -> None:
    """A returning buyer: a billing account with a saved card, made through the API."""
    buyer = Buyer(site.app.test_client(), localstripe.url, user_id)
    buyer.save_account()
    _, recorded = buyer.add_card(number)
    assert recorded.status_code == 201, recorded.json


def funnel_steps(app: Flask) -> list[str]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return list(s.scalars(select(FunnelEventRow.step).order_by(FunnelEventRow.id)))


def count(app: Flask, model: Any, *where: Any) -> int:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def payment_intents(app: Flask, localstripe: LocalStripe, user_id: int = 1) -> list[Any]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == user_id))
    return localstripe.payment_intents(customer) if customer else []
