"""Stripe webhooks over real HTTP from localstripe, and concurrent purchases."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devtools.devcard import confirm_card_payment, confirm_card_setup
from services.checkout.adapters.models import (
    BillingAccount,
    FunnelEventRow,
    Order,
    OutboxMessage,
    StripeEvent,
    Subscription,
)
from tests.e2e.helpers import Buyer
from tests.support import WEBHOOK_SECRET, LiveServer, LocalStripe, auth

pytestmark = pytest.mark.e2e


def signed(payload: dict[str, Any], secret: str = WEBHOOK_SECRET, at: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    t = at if at is not None else int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={sig}"


def event(event_id: str, kind: str, intent: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": intent}}


def count(app: Flask, model: Any, *where: Any) -> int:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def deliver(client: Any, body: bytes, signature: str) -> Any:
    return client.post("/stripe/webhooks", data=body,
                       headers={"Stripe-Signature": signature, "Content-Type": "application/json"})


def test_bad_signature_changes_nothing(stripe_app: Flask) -> None:
    client = stripe_app.test_client()
    body, _ = signed(event("evt_1", "payment_intent.succeeded", {"id": "pi_1"}))
    for signature in ["t=1,v1=deadbeef", "", signed({"other": 1})[1],
                      signed(event("evt_1", "x", {}), secret="whsec_wrong")[1]]:
        response = deliver(client, body, signature)
        assert response.status_code == 400 and response.json["code"] == "invalid_signature"
    stale_body, stale_sig = signed(event("evt_2", "payment_intent.succeeded", {"id": "pi_1"}),
                                   at=int(time.time()) - 301)
    assert deliver(client, stale_body, stale_sig).status_code == 400
    assert count(stripe_app, StripeEvent) == 0


def test_duplicates_and_out_of_order_events_leave_one_final_state(
        stripe_app: Flask, localstripe: LocalStripe) -> None:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4000002500003155")
    pending = buyer.buy("wh-1").json
    order_id, intent_id = pending["order"]["id"], pending["order"]["payment_intent_id"]
    # Say the payment succeeded (signed as Stripe would), twice, then a late failure.
    ok = event("evt_ok", "payment_intent.succeeded", {"id": intent_id, "metadata": {}})
    late_fail = event("evt_fail", "payment_intent.payment_failed",
                      {"id": intent_id, "last_payment_error": {"code": "card_declined"}})
    client = stripe_app.test_client()
    first = deliver(client, *signed(ok))
    assert first.status_code == 200 and "completed" in first.json["outcome"]
    assert deliver(client, *signed(ok)).json["outcome"] == "duplicate"
    assert deliver(client, *signed(late_fail)).status_code == 200
    assert count(stripe_app, StripeEvent) == 2
    assert count(stripe_app, Order, Order.id == order_id, Order.status == "completed") == 1
    assert count(stripe_app, Subscription, Subscription.namespace_id == 100) == 1


def test_localstripe_webhook_completes_a_three_d_secure_order(
        live_checkout: LiveServer, stripe_app: Flask, localstripe: LocalStripe) -> None:
    """The buyer closes the tab after authenticating: the webhook finishes the order."""
    buyer = Buyer(requests.Session(), localstripe.url)
    buyer.client.headers.update(buyer.headers)
    base = live_checkout.url

    def post(path: str, body: Any = None, **headers: str) -> requests.Response:
        return buyer.client.post(base + path, json=body, headers=headers, timeout=10)

    assert buyer.client.put(base + "/billing-account", json={
        "company": "Acme", "email": "b@acme.test", "country": "US", "address_line1": "1 St",
        "city": "X", "postal_code": "12345"}, timeout=10).status_code == 200
    setup = post("/billing-account/card-setup").json()
    confirm_card_setup(localstripe.url, setup["client_secret"], "4000002500003155")
    assert post("/billing-account/cards", {"setup_intent_id": setup["setup_intent_id"]}).status_code == 201
    pending = post("/purchases", {"namespace_id": 100, "plan": "ultimate", "seats": 2},
                   **{"Idempotency-Key": "wh-live"}).json()
    assert pending["status"] == "requires_action"
    confirm_card_payment(localstripe.url, pending["client_secret"])

    deadline = time.monotonic() + 15
    status = None
    while time.monotonic() < deadline:
        status = buyer.client.get(f"{base}/orders/{pending['order']['id']}", timeout=5).json()["status"]
        if status == "completed":
            break
        time.sleep(0.2)
    assert status == "completed"
    assert count(stripe_app, StripeEvent, StripeEvent.type == "payment_intent.succeeded") >= 1
    ent = buyer.client.get(f"{base}/namespaces/100/entitlements", timeout=5).json()
    assert ent["plan"] == "ultimate"


def test_twenty_identical_concurrent_purchases_make_one_order(
        postgres_only: None, live_checkout: LiveServer, stripe_app: Flask, localstripe: LocalStripe) -> None:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4242424242424242")
    body = {"namespace_id": 100, "plan": "premium", "seats": 4}
    headers = {**buyer.headers, "Idempotency-Key": "double-click"}

    def fire(_: int) -> tuple[int, Any]:
        r = requests.post(f"{live_checkout.url}/purchases", json=body, headers=headers, timeout=60)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(fire, range(20)))
    assert {status for status, _ in results} == {201}
    assert len({json.dumps(b, sort_keys=True) for _, b in results}) == 1
    assert count(stripe_app, Order) == 1
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id))
    assert len(localstripe.payment_intents(customer)) == 1


def test_two_owners_racing_with_different_keys_buy_once(
        postgres_only: None, live_checkout: LiveServer, stripe_app: Flask, localstripe: LocalStripe) -> None:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4242424242424242")
    body = {"namespace_id": 100, "plan": "premium", "seats": 4}

    def fire(i: int) -> tuple[int, Any]:
        r = requests.post(f"{live_checkout.url}/purchases", json=body,
                          headers={**buyer.headers, "Idempotency-Key": f"racer-{i}"}, timeout=60)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fire, range(8)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1
    assert {b["code"] for s, b in results if s != 201} <= {"purchase_in_progress", "already_subscribed"}
    assert count(stripe_app, Subscription, Subscription.namespace_id == 100) == 1
    assert count(stripe_app, Order, Order.status == "completed") == 1
    # The losers were refused before Stripe: the card was charged once.
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id))
    assert len(localstripe.payment_intents(customer)) == 1


def test_off_session_authentication_failure_event_does_not_fail_a_waiting_order(
        stripe_app: Flask, localstripe: LocalStripe) -> None:
    """Real Stripe reports an off-session 3-D Secure need as payment_failed with
    authentication_required while the buyer is still in the dialog."""
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4000002500003155")
    pending = buyer.buy("auth-needed").json
    intent = {"id": pending["order"]["payment_intent_id"],
              "last_payment_error": {"code": "authentication_required"}}
    response = deliver(stripe_app.test_client(), *signed(event("evt_auth", "payment_intent.payment_failed", intent)))
    assert response.json["outcome"].endswith("awaiting authentication")
    confirm_card_payment(localstripe.url, pending["client_secret"])
    assert buyer.post(f"/orders/{pending['order']['id']}/confirm").status_code == 201


def test_an_order_a_webhook_completes_keeps_its_buyers_traffic(stripe_app: Flask, localstripe: LocalStripe) -> None:
    """A load test's purchase finished by Stripe's webhook stays out of the analyses."""
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.headers = {**auth(1, roles=("synthetic",)), "X-Traffic-Source": "synthetic"}
    buyer.save_account()
    buyer.add_card("4000002500003155")
    pending = buyer.buy("wh-synthetic").json
    intent_id = pending["order"]["payment_intent_id"]
    done = deliver(stripe_app.test_client(), *signed(event("evt_synthetic", "payment_intent.succeeded",
                                                           {"id": intent_id, "metadata": {}})))
    assert "completed" in done.json["outcome"]
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        steps = s.execute(select(FunnelEventRow.step, FunnelEventRow.traffic)).all()
        announced = s.scalar(select(OutboxMessage.payload).where(OutboxMessage.topic == "order.completed"))
    assert ("purchase_completed", "synthetic") in steps and {t for _, t in steps} == {"synthetic"}
    assert announced is not None and announced["traffic"] == "synthetic"
