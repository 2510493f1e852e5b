"""When things go wrong around the charge: timeouts that may hide a charge,
late payments for orders that were given up, abandoned 3-D Secure checks.
Whatever happens, a namespace is paid for once and no money is kept for
nothing."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devtools.devcard import confirm_card_payment, confirm_card_setup
from services.checkout.adapters.models import BillingAccount, Order, Subscription
from services.checkout.adapters.payments import ChargeResult, PaymentProviderUnavailable
from tests.e2e.helpers import Buyer
from tests.support import LiveServer, LocalStripe

pytestmark = pytest.mark.e2e


class TimesOutAfterCharging:
    """Stripe charges, then the answer is lost on the way back (a read timeout)."""

    def __init__(self, real: Any, times: int = 1) -> None:
        self.real, self.left = real, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def charge(self, **kwargs: Any) -> ChargeResult:
        result = self.real.charge(**kwargs)
        if self.left:
            self.left -= 1
            raise PaymentProviderUnavailable("read timeout", maybe_applied=True)
        return result


class ReplaysLikeStripe:
    """Stripe's documented Idempotency-Key replay (localstripe has none): the
    same key returns the first result instead of charging again."""

    def __init__(self, real: Any) -> None:
        self.real, self.seen = real, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def charge(self, **kwargs: Any) -> ChargeResult:
        key = kwargs["idempotency_key"]
        if key not in self.seen:
            self.seen[key] = self.real.charge(**kwargs)
        return self.seen[key]


class CancelLost:
    """Cancelling a superseded intent times out: the buyer can still pay it."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def cancel(self, intent_id: str) -> None:
        raise PaymentProviderUnavailable("timeout")


def db(app: Flask) -> Session:
    return Session(app.extensions["checkout"].ctx.engine)


def orders(app: Flask) -> list[tuple[int, str, bool]]:
    with db(app) as s:
        return [(o.id, o.status, o.refunded) for o in s.scalars(select(Order).order_by(Order.id))]


def intents(app: Flask, localstripe: LocalStripe, user_id: int = 1) -> list[Any]:
    with db(app) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == user_id))
    return localstripe.payment_intents(customer)


def refunded_intents(localstripe: LocalStripe) -> set[str]:
    return {r.payment_intent for r in localstripe.sdk.v1.refunds.list(params={"limit": 1000}).data}


@pytest.fixture
def alice(stripe_app: Flask, localstripe: LocalStripe) -> Buyer:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    return buyer


def test_timeout_after_charge_then_retry_finishes_with_one_charge(stripe_app: Flask, alice: Buyer,
                                                                  localstripe: LocalStripe) -> None:
    alice.add_card("4242424242424242")
    checkout = stripe_app.extensions["checkout"]
    replaying = ReplaysLikeStripe(checkout.payments)
    checkout.payments = TimesOutAfterCharging(replaying)
    unknown = alice.buy("lost-answer")
    assert unknown.status_code == 503 and unknown.json["code"] == "payment_status_unknown"
    assert "same Idempotency-Key" in unknown.json["detail"]
    assert [status for _, status, _ in orders(stripe_app)] == ["pending"]  # kept, not forgotten
    retried = alice.buy("lost-answer")
    assert retried.status_code == 201, retried.json
    assert [pi.status for pi in intents(stripe_app, localstripe)] == ["succeeded"]
    assert alice.buy("lost-answer").json == retried.json
    # A new key is a new purchase, and the namespace is bought already.
    assert alice.buy("new-key").json["code"] == "already_subscribed"


def test_timeout_after_charge_is_finished_by_the_webhook(stripe_app: Flask, live_checkout: LiveServer,
                                                         localstripe: LocalStripe) -> None:
    session = requests.Session()
    buyer = Buyer(session, localstripe.url)
    session.headers.update(buyer.headers)
    base = live_checkout.url
    assert session.put(f"{base}/billing-account", timeout=10, json={
        "company": "Acme", "email": "b@acme.test", "country": "US", "address_line1": "1 St",
        "city": "X", "postal_code": "12345"}).status_code == 200
    setup = session.post(f"{base}/billing-account/card-setup", timeout=10).json()
    confirm_card_setup(localstripe.url, setup["client_secret"], "4242424242424242")
    session.post(f"{base}/billing-account/cards", json={"setup_intent_id": setup["setup_intent_id"]},
                 timeout=10)
    checkout = stripe_app.extensions["checkout"]
    checkout.payments = TimesOutAfterCharging(checkout.payments)
    body = {"namespace_id": 100, "plan": "premium", "seats": 3}
    first = session.post(f"{base}/purchases", json=body, headers={"Idempotency-Key": "wh-lost"}, timeout=10)
    assert first.status_code == 503
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and orders(stripe_app)[0][1] != "completed":
        time.sleep(0.2)
    assert orders(stripe_app)[0][1] == "completed"  # the payment_intent.succeeded webhook did it
    # The buyer's retry learns the result; nothing is charged again (localstripe
    # does not replay idempotency keys, so a second charge would show here).
    again = session.post(f"{base}/purchases", json=body, headers={"Idempotency-Key": "wh-lost"}, timeout=10)
    assert again.status_code == 201 and again.json()["status"] == "completed"
    assert len(intents(stripe_app, localstripe)) == 1


def test_connection_refused_means_nothing_happened(stripe_app: Flask, alice: Buyer) -> None:
    alice.add_card("4242424242424242")
    checkout = stripe_app.extensions["checkout"]
    real = checkout.payments

    class Refused:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def charge(self, **kwargs: Any) -> ChargeResult:
            raise PaymentProviderUnavailable("connection refused", maybe_applied=False)

    checkout.payments = Refused()
    down = alice.buy("refused")
    assert down.status_code == 503 and down.json["code"] == "payment_provider_unavailable"
    assert orders(stripe_app) == []


def test_abandoned_3ds_does_not_block_the_namespace(stripe_app: Flask, alice: Buyer,
                                                    localstripe: LocalStripe) -> None:
    alice.add_card("4000002500003155")
    pending = alice.buy("3ds-left-open")
    assert pending.status_code == 202
    alice.add_card("4242424242424242")
    bought = alice.buy("second-try")
    assert bought.status_code == 201, bought.json
    first_id = pending.json["order"]["id"]
    assert orders(stripe_app)[0] == (first_id, "canceled", False)
    old_intent = localstripe.sdk.v1.payment_intents.retrieve(pending.json["order"]["payment_intent_id"])
    assert old_intent.status == "canceled"
    replaced = alice.post(f"/orders/{first_id}/confirm")
    assert replaced.status_code == 409 and replaced.json["code"] == "order_superseded"


def test_late_payment_for_a_superseded_order_is_refunded(stripe_app: Flask, alice: Buyer,
                                                         localstripe: LocalStripe) -> None:
    alice.add_card("4000002500003155")
    pending = alice.buy("slow-3ds")
    checkout = stripe_app.extensions["checkout"]
    real = checkout.payments
    checkout.payments = CancelLost(real)
    alice.add_card("4242424242424242")
    assert alice.buy("fast-card").status_code == 201
    checkout.payments = real
    # The buyer finishes the old 3-D Secure check after all: money for a namespace already paid.
    confirm_card_payment(localstripe.url, pending.json["client_secret"])
    late = alice.post(f"/orders/{pending.json['order']['id']}/confirm")
    assert late.status_code == 409 and late.json["code"] == "already_subscribed"
    assert late.json["refunded"] is True and "refunded in full" in late.json["detail"]
    assert pending.json["order"]["payment_intent_id"] in refunded_intents(localstripe)
    with db(stripe_app) as s:
        assert s.scalar(select(func.count()).select_from(Subscription)
                        .where(Subscription.namespace_id == 100, Subscription.status == "active")) == 1
    # The order tells the story: charged, given back in full, and why.
    story = alice.get(f"/orders/{pending.json['order']['id']}").json
    total = story["total"]
    assert (story["status"], story["amount_charged"], story["refunded"], story["refunded_amount"]) == \
        ("failed", total, True, total)
    assert story["failure_code"] == "already_subscribed" and "refunded in full" in story["failure_message"]
    assert story["subscription_id"] is None


def test_stale_pending_order_gives_way_but_a_fresh_one_does_not(stripe_app: Flask, alice: Buyer) -> None:
    alice.add_card("4242424242424242")
    clock = stripe_app.extensions["checkout"].ctx.clock
    with db(stripe_app) as s:  # a purchase that crashed before charging
        s.add(Order(billing_account_id=1, namespace_id=100, user_id=1, plan="premium", seats=2,
                    currency="usd", subtotal=1, discount_total=0, total=1, lines=[],
                    catalog_version="x", term_start=clock.now().date(), term_end=clock.now().date(),
                    status="pending", created_at=clock.now()))
        s.commit()
    busy = alice.buy("while-busy")
    assert busy.status_code == 409 and busy.json["code"] == "purchase_in_progress"
    clock.advance(timedelta(minutes=16))
    assert alice.buy("later").status_code == 201
    assert [status for _, status, _ in orders(stripe_app)] == ["abandoned", "completed"]


def test_stripe_refusing_card_setup_is_a_clear_502(stripe_app: Flask, alice: Buyer) -> None:
    from services.checkout.adapters.payments import PaymentRejected

    checkout = stripe_app.extensions["checkout"]
    real = checkout.payments

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def create_setup_intent(self, *args: Any) -> Any:
            raise PaymentRejected("nope")

    checkout.payments = Refusing()
    response = alice.post("/billing-account/card-setup")
    assert response.status_code == 502 and response.json["code"] == "payment_provider_rejected"


def test_a_replaced_upgrade_paid_late_is_refunded(stripe_app: Flask, localstripe: LocalStripe) -> None:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)  # Alice owns globex (Premium, 5 seats)
    buyer.add_card("4000002500003155")
    slow = buyer.buy("upgrade-3ds", namespace_id=200, plan="ultimate", seats=5)
    assert slow.status_code == 202
    checkout = stripe_app.extensions["checkout"]
    real = checkout.payments
    checkout.payments = CancelLost(real)
    buyer.add_card("4242424242424242")
    fast = buyer.buy("upgrade-card", namespace_id=200, plan="ultimate", seats=9)
    assert fast.status_code == 201
    checkout.payments = real
    confirm_card_payment(localstripe.url, slow.json["client_secret"])
    late = buyer.post(f"/orders/{slow.json['order']['id']}/confirm")
    assert late.status_code == 409 and late.json["refunded"] is True
    assert slow.json["order"]["payment_intent_id"] in refunded_intents(localstripe)
    with db(stripe_app) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == 200))
        assert (sub.plan, sub.seats) == ("ultimate", 9)  # the replaced order did not cut the seats back
