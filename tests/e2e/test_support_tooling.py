"""Support tooling against localstripe: find a customer, read the history, refund
an order in part and then in full through Stripe (audited, mailed)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import BillingAuditEntry, OutboxMessage
from tests.e2e.helpers import Buyer
from tests.support import LocalStripe, auth

ADMIN = auth(9, roles=("admin",))
ACME = 100


def test_support_finds_the_order_and_refunds_it_in_part_then_in_full(stripe_app: Flask,
                                                                       localstripe: LocalStripe) -> None:
    alice = Buyer(stripe_app.test_client(), localstripe.url)
    alice.save_account()
    alice.add_card("4242424242424242")
    bought = alice.buy("portal-refund", seats=5)
    assert bought.status_code == 201, bought.json
    order = bought.json["order"]
    client = stripe_app.test_client()

    for query, paths in ((f"namespace={ACME}", ["acme"]), ("namespace=acme", ["acme"]),
                         ("email=BILLING@acme.test", ["acme", "globex"]),  # the contact pays for both
                         (f"order_id={order['id']}", ["acme"])):
        found = client.get(f"/admin/customers?{query}", headers=ADMIN)
        assert found.status_code == 200, found.json
        assert [c["namespace_path"] for c in found.json] == paths, query
        assert found.json[0]["orders"][0]["id"] == order["id"]
    assert client.get("/admin/customers?email=nobody@nowhere.test", headers=ADMIN).json == []
    assert client.get("/admin/customers?namespace=acme", headers=auth(1)).json["code"] == "admin_required"

    path = f"/admin/orders/{order['id']}/refunds"
    refused = client.post(path, json={"amount": 174001, "reason": "too much"}, headers=ADMIN)
    assert refused.status_code == 422 and refused.json["code"] == "refund_too_large"
    assert refused.json["refundable"] == 174000
    assert client.post(path, json={"amount": 100}, headers=ADMIN).json["code"] == "validation_failed"
    part = client.post(path, json={"amount": 34800, "reason": "One seat bought by mistake"}, headers=ADMIN)
    assert part.status_code == 201, part.json
    assert (part.json["refunded_amount"], part.json["refunded"]) == (34800, False)
    rest = client.post(path, json={"reason": "Customer left"}, headers=ADMIN)
    assert (rest.json["refunded_amount"], rest.json["refunded"]) == (174000, True)
    again = client.post(path, json={"reason": "Twice"}, headers=ADMIN)
    assert again.status_code == 409 and again.json["code"] == "nothing_to_refund"

    intent = localstripe.sdk.v1.payment_intents.retrieve(order["payment_intent_id"])
    refunds = localstripe.sdk.v1.refunds.list(params={"limit": 10}).data
    assert sorted(r.amount for r in refunds if r.payment_intent == intent.id) == [34800, 139200]

    history = client.get(f"/namespaces/{ACME}/orders", headers=auth(1)).json["orders"][0]
    assert [(r["amount"], r["reason"]) for r in history["refunds"]] == [
        (34800, "One seat bought by mistake"), (139200, "Customer left")]
    events = client.get(f"/admin/namespaces/{ACME}/history", headers=ADMIN).json["events"]
    assert [e["what"] for e in events if e["what"].startswith(("order_", "card"))] == [
        "order_completed", "order_refunded", "order_refunded"]
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        mails = [m.payload["amount"] for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "order.refunded"))]
        trail = [(a.action, a.actor_id) for a in s.scalars(select(BillingAuditEntry))]
    assert sorted(mails) == [34800, 139200]
    assert trail == [("order_refunded", 9), ("order_refunded", 9)]
