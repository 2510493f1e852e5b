"""A prospect buys a plan: real HTTP to a real localstripe through the stripe SDK."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devtools.devcard import confirm_card_payment
from services.checkout.adapters.models import (
    BillingAccount,
    FunnelEventRow,
    IdempotencyRecord,
    Namespace,
    Order,
    OutboxMessage,
    PaymentMethod,
    Subscription,
)
from services.checkout.adapters.payments import StripeGateway
from tests.e2e.helpers import Buyer
from tests.support import LocalStripe

pytestmark = pytest.mark.e2e

ACME = 100


@pytest.fixture
def buyer(stripe_app: Flask, localstripe: LocalStripe) -> Buyer:
    b = Buyer(stripe_app.test_client(), localstripe.url)
    b.save_account()
    return b


def session_of(app: Flask) -> Session:
    return Session(app.extensions["checkout"].ctx.engine)


def count(app: Flask, model: Any, *where: Any) -> int:
    with session_of(app) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def steps(app: Flask) -> list[str]:
    with session_of(app) as s:
        return list(s.scalars(select(FunnelEventRow.step).order_by(FunnelEventRow.id)))


def intents_for(localstripe: LocalStripe, app: Flask) -> list[Any]:
    with session_of(app) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == 1))
    return localstripe.payment_intents(customer) if customer else []


def test_buy_premium_with_a_good_card(stripe_app: Flask, buyer: Buyer, localstripe: LocalStripe) -> None:
    browser, recorded = buyer.add_card("4242424242424242")
    assert browser["setupIntent"]["status"] == "succeeded"
    assert recorded.status_code == 201
    assert (recorded.json["brand"], recorded.json["last4"], recorded.json["is_default"]) == ("visa", "4242", True)

    response = buyer.buy("buy-1", seats=5)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "completed"
    assert body["order"]["total"] == 5 * 34800 and body["order"]["status"] == "completed"
    sub = body["subscription"]
    assert (sub["plan"], sub["seats"], sub["auto_renew"]) == ("premium", 5, True)
    assert (sub["term_start"], sub["term_end"], sub["next_renewal_date"]) == ("2026-11-21", "2027-11-21", "2027-11-21")

    # Stripe charged exactly the quoted amount, once.
    intents = intents_for(localstripe, stripe_app)
    assert [(pi.amount, pi.status) for pi in intents] == [(174000, "succeeded")]
    assert body["order"]["payment_intent_id"] == intents[0].id

    # Provisioned, readable by members, announced in the outbox, measured in the funnel.
    ent = buyer.get(f"/namespaces/{ACME}/entitlements").json
    assert ent["plan"] == "premium" and ent["seats"] == 5
    with session_of(stripe_app) as s:
        assert s.get(Namespace, ACME).plan == "premium"
        # Not yet relayed: the purchase's (the fixture relayed the seed's directory events).
        topics = list(s.scalars(select(OutboxMessage.topic).where(OutboxMessage.published_at.is_(None))))
        assert sorted(topics) == ["order.completed", "subscription.created"]
        receipt = s.scalar(select(OutboxMessage.payload).where(OutboxMessage.topic == "order.completed"))
        assert receipt["total"] == 174000 and receipt["card"]["last4"] == "4242"
        # The ledger the experiment analysis reads: a first order, and the buyer's variations then.
        bought = s.scalars(select(FunnelEventRow).where(FunnelEventRow.step == "purchase_completed")).one()
        assert receipt["kind"] == bought.properties["kind"] == "purchase"
        assert receipt["variations"] == bought.experiments
    assert steps(stripe_app)[-1] == "purchase_completed"
    assert {"billing_account_saved", "card_setup_started", "card_captured"} <= set(steps(stripe_app))

    again = buyer.buy("buy-2", seats=5)
    assert again.status_code == 409 and again.json["code"] == "already_subscribed"


@pytest.mark.parametrize("number", ["4000000000000002", "4000000000009995"])
def test_declined_card_is_not_saved(stripe_app: Flask, buyer: Buyer, number: str) -> None:
    browser, recorded = buyer.add_card(number)
    assert browser["error"]["code"] == "card_declined"
    assert recorded.status_code == 402
    assert recorded.json["code"] == "card_declined"
    assert "declined" in recorded.json["detail"]
    assert count(stripe_app, PaymentMethod) == 0
    assert "card_declined" in steps(stripe_app)
    no_card = buyer.buy("k-declined")
    assert no_card.json["code"] == "payment_method_missing"


def test_card_that_fails_every_charge_then_another_card(stripe_app: Flask, buyer: Buyer) -> None:
    _, recorded = buyer.add_card("4000000000000341")
    assert recorded.status_code == 201
    failed = buyer.buy("attempt-1")
    assert failed.status_code == 402 and failed.mimetype == "application/problem+json"
    assert failed.json["code"] == "card_declined" and failed.json["decline_code"] == "card_declined"
    assert count(stripe_app, Subscription, Subscription.namespace_id == ACME) == 0
    assert count(stripe_app, Order, Order.status == "failed") == 1
    # The failure is the key's answer: replayed, not retried.
    replay = buyer.buy("attempt-1")
    assert (replay.status_code, replay.json) == (402, failed.json)
    assert count(stripe_app, Order) == 1

    buyer.add_card("4242424242424242")
    ok = buyer.buy("attempt-2")
    assert ok.status_code == 201
    assert steps(stripe_app).count("purchase_failed") == 1


def test_three_d_secure_card_is_authenticated_then_confirmed(stripe_app: Flask, buyer: Buyer,
                                                             localstripe: LocalStripe) -> None:
    needs_auth = buyer.add_card("4000002500003155", complete_3ds=False)
    assert "error" in needs_auth[0]
    browser, recorded = buyer.add_card("4000002500003155")
    assert browser["setupIntent"]["status"] == "succeeded" and recorded.status_code == 201

    pending = buyer.buy("3ds-1")
    assert pending.status_code == 202, pending.json
    assert pending.json["status"] == "requires_action" and pending.json["client_secret"]
    order_id = pending.json["order"]["id"]
    early = buyer.post(f"/orders/{order_id}/confirm")
    assert early.status_code == 409 and early.json["code"] == "authentication_pending"

    assert "paymentIntent" in confirm_card_payment(localstripe.url, pending.json["client_secret"])
    done = buyer.post(f"/orders/{order_id}/confirm")
    assert done.status_code == 201, done.json
    assert done.json["status"] == "completed" and done.json["subscription"]["plan"] == "premium"
    # Confirming twice is harmless.
    assert buyer.post(f"/orders/{order_id}/confirm").json == done.json
    assert "three_ds_required" in steps(stripe_app)
    assert steps(stripe_app).count("purchase_completed") == 1


def test_failed_three_d_secure_fails_the_order(stripe_app: Flask, buyer: Buyer,
                                               localstripe: LocalStripe) -> None:
    buyer.add_card("4000002500003155")
    pending = buyer.buy("3ds-fail")
    confirm_card_payment(localstripe.url, pending.json["client_secret"], complete_3ds=False)
    result = buyer.post(f"/orders/{pending.json['order']['id']}/confirm")
    assert result.status_code == 402
    assert count(stripe_app, Subscription, Subscription.namespace_id == ACME) == 0
    # The namespace is free to try again with a new key.
    assert buyer.buy("3ds-fail-2").status_code == 202


def test_idempotent_replay_and_key_reuse(stripe_app: Flask, buyer: Buyer, localstripe: LocalStripe) -> None:
    buyer.add_card("4242424242424242")
    first = buyer.buy("same-key", seats=3)
    second = buyer.buy("same-key", seats=3)
    assert first.status_code == second.status_code == 201
    assert first.json == second.json
    assert count(stripe_app, Order) == 1
    assert len(intents_for(localstripe, stripe_app)) == 1
    reused = buyer.buy("same-key", seats=4)
    assert reused.status_code == 422 and reused.json["code"] == "idempotency_key_reused"


def test_stripe_down_writes_nothing_and_the_same_request_completes_later(
        stripe_app: Flask, buyer: Buyer, localstripe: LocalStripe) -> None:
    buyer.add_card("4242424242424242")
    checkout = stripe_app.extensions["checkout"]
    real = checkout.payments
    checkout.payments = StripeGateway("sk_test_x", "http://127.0.0.1:9", "whsec_x", timeout=1)
    try:
        down = buyer.buy("retry-me")
    finally:
        checkout.payments = real
    assert down.status_code == 503 and down.json["code"] == "payment_provider_unavailable"
    assert "Traceback" not in down.get_data(as_text=True)
    assert count(stripe_app, Order) == 0
    assert count(stripe_app, IdempotencyRecord) == 0
    later = buyer.buy("retry-me")
    assert later.status_code == 201
    assert count(stripe_app, Order) == 1


def test_unknown_card_and_foreign_setup_intent(stripe_app: Flask, buyer: Buyer, localstripe: LocalStripe) -> None:
    missing = buyer.post("/billing-account/cards", {"setup_intent_id": "seti_doesnotexist"})
    assert missing.status_code == 404 and missing.json["code"] == "setup_intent_not_found"
    malformed = buyer.post("/billing-account/cards", {"setup_intent_id": "pm_123"})
    assert malformed.status_code == 422
    # Another user's SetupIntent is not ours to record.
    other = Buyer(stripe_app.test_client(), localstripe.url, user_id=5)
    other.save_account()
    setup = other.post("/billing-account/card-setup").json
    assert buyer.post("/billing-account/cards",
                      {"setup_intent_id": setup["setup_intent_id"]}).json["code"] == "setup_intent_not_found"


def test_a_purchase_for_another_card_id_is_refused(stripe_app: Flask, buyer: Buyer) -> None:
    buyer.add_card("4242424242424242")
    response = buyer.buy("k-card", payment_method_id=999)
    assert response.status_code == 404 and response.json["code"] == "payment_method_not_found"


def test_live_server_serves_the_stripe_js_stand_in(localstripe: LocalStripe) -> None:
    response = requests.get(f"{localstripe.url}/js.stripe.com/v3/", timeout=5)
    assert response.status_code == 200 and "confirmCardSetup" in response.text


def test_card_testing_from_one_account_is_stopped(stripe_app: Flask, buyer: Buyer) -> None:
    """Many SetupIntents from one account is how stolen cards are tested: the
    limit answers 429 before Stripe is asked again."""
    answers = [buyer.post("/billing-account/card-setup") for _ in range(15)]
    codes = [a.status_code for a in answers]
    assert codes[:10] == [201] * 10 and set(codes[10:]) == {429}, codes
    limited = answers[-1]
    assert limited.json["code"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert count(stripe_app, FunnelEventRow, FunnelEventRow.step == "card_setup_started") == 10
    # Recording a card counts too: the account has no attempts left.
    assert buyer.post("/billing-account/cards", {"setup_intent_id": "seti_x1"}).status_code == 429


def test_orders_tell_their_story(stripe_app: Flask, buyer: Buyer, localstripe: LocalStripe) -> None:
    """A declined attempt keeps its PaymentIntent and reason; the paid order says what it
    charged and which subscription it paid for; the subscription lists its orders."""
    buyer.add_card("4000000000000341")
    declined = buyer.buy("story-1")
    assert declined.status_code == 402
    failed = buyer.get(f"/orders/{declined.json['order_id']}").json
    assert failed["payment_intent_id"] and failed["payment_intent_id"].startswith("pi_")
    assert failed["payment_intent_id"] in {pi.id for pi in intents_for(localstripe, stripe_app)}
    assert (failed["status"], failed["failure_code"], failed["amount_charged"]) == ("failed", "card_declined", 0)
    assert failed["failure_message"] and (failed["refunded"], failed["refunded_amount"]) == (False, 0)

    buyer.add_card("4242424242424242")
    paid = buyer.buy("story-2").json["order"]
    assert (paid["amount_charged"], paid["refunded_amount"], paid["failure_code"]) == (174000, 0, None)
    subscription = buyer.get(f"/namespaces/{ACME}/subscription").json
    assert paid["subscription_id"] == subscription["id"]
    assert [(o["id"], o["kind"], o["amount_charged"]) for o in subscription["orders"]] == \
        [(paid["id"], "purchase", 174000)]
    # An upgrade pays for the same subscription and joins its history.
    upgrade = buyer.buy("story-3", plan="ultimate").json["order"]
    assert upgrade["subscription_id"] == subscription["id"]
    kinds = [o["kind"] for o in buyer.get(f"/namespaces/{ACME}/subscription").json["orders"]]
    assert kinds == ["purchase", "upgrade"]
