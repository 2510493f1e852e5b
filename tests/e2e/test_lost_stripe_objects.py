"""When Stripe no longer has a customer or card we stored (a test-mode Stripe
reset, localstripe restarted empty, a customer deleted by hand): the owner
gets a way out, never a dead end. Card set-up makes a new customer, a
purchase asks for a new card, a renewal goes to dunning."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import (
    BillingAccount,
    IdempotencyRecord,
    Order,
    OutboxMessage,
    Renewal,
    Subscription,
)
from services.checkout.usecases import renewals
from services.common.clock import FixedClock
from tests.e2e.helpers import ACCOUNT, Buyer
from tests.support import LocalStripe

pytestmark = pytest.mark.e2e

GOOD_CARD = "4242424242424242"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    """This module's own localstripe: forgetting everything must not touch other tests' objects."""
    server = LocalStripe()
    yield server
    server.stop()


@pytest.fixture
def alice(stripe_app: Flask, localstripe: LocalStripe) -> Buyer:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    return buyer


def db(app: Flask) -> Session:
    return Session(app.extensions["checkout"].ctx.engine)


def customer_of(app: Flask, user_id: int = 1) -> str | None:
    with db(app) as s:
        return s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == user_id))


def sweep_on(app: Flask, clock: FixedClock, day: Any) -> dict[str, int]:
    clock.set(datetime(day.year, day.month, day.day, 0, 5, tzinfo=UTC))
    checkout = app.extensions["checkout"]
    return renewals.run_all(checkout, checkout.ctx.uow, checkout.renewal_rules)


def test_card_setup_makes_a_new_customer_when_stripe_lost_the_old_one(
        stripe_app: Flask, localstripe: LocalStripe, alice: Buyer, caplog: pytest.LogCaptureFixture) -> None:
    alice.add_card(GOOD_CARD)
    lost = customer_of(stripe_app)
    localstripe.forget()
    with caplog.at_level(logging.WARNING, logger="services.checkout.usecases.billing"):
        _, recorded = alice.add_card(GOOD_CARD)
    assert recorded.status_code == 201, recorded.json
    replacement = customer_of(stripe_app)
    assert replacement and replacement != lost
    assert localstripe.sdk.v1.customers.retrieve(replacement).email == ACCOUNT["email"]
    assert [r.getMessage() for r in caplog.records if lost and lost in r.getMessage()], \
        "the log says why the account got a new customer"
    cards = sorted(alice.get("/billing-account").json["cards"], key=lambda card: card["id"])
    assert [c["is_default"] for c in cards] == [False, True]  # the lost customer's card is not used again
    assert alice.buy("after-stripe-forgot").status_code == 201


def test_a_purchase_with_a_card_stripe_lost_asks_for_a_new_card(stripe_app: Flask, localstripe: LocalStripe,
                                                                  alice: Buyer) -> None:
    alice.add_card(GOOD_CARD)
    localstripe.forget()
    refused = alice.buy("card-gone")
    assert refused.status_code == 409, refused.json
    assert refused.json["code"] == "payment_method_missing"
    with db(stripe_app) as s:  # nothing half-written: no order, and the key is free again
        assert s.scalar(select(func.count()).select_from(Order)) == 0
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    _, recorded = alice.add_card(GOOD_CARD)
    assert recorded.status_code == 201
    done = alice.buy("card-gone")
    assert done.status_code == 201 and done.json["status"] == "completed"


def test_a_renewal_with_a_card_stripe_lost_goes_to_dunning(stripe_app: Flask, localstripe: LocalStripe,
                                                          alice: Buyer, clock: FixedClock) -> None:
    alice.add_card(GOOD_CARD)
    assert alice.buy("first-year").status_code == 201
    with db(stripe_app) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == 100))
        assert sub is not None
    localstripe.forget()
    sweep_on(stripe_app, clock, sub.term_end)  # no PaymentRejected: the sweep carries on
    with db(stripe_app) as s:
        renewal = s.scalar(select(Renewal).where(Renewal.subscription_id == sub.id))
        [failed] = [m.payload for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "subscription.renewal_failed")) if m.payload["namespace_id"] == 100]
    assert renewal is not None and renewal.status == "retrying"
    assert failed["reason"] == "payment_method_missing" and failed["final"] is False
    assert failed["update_card_url"].endswith("/billing/100")  # the Billing page
    # The way out: a new card (a new customer with it), and the next dunning day renews.
    _, recorded = alice.add_card(GOOD_CARD)
    assert recorded.status_code == 201
    sweep_on(stripe_app, clock, renewal.next_attempt_on)
    with db(stripe_app) as s:
        assert s.get(Renewal, renewal.id).status == "succeeded"
        assert s.get(Subscription, sub.id).term_end > sub.term_end
