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


def buy_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Buy", exact=True)


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
