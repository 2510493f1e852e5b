"""Existing customers grow, on localstripe: seats, Duo add-ons, compute minutes and
storage, each with amount truth (the PaymentIntent equals the quote, the order
and the receipt mail), 3-D Secure, declines and idempotent replays."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from devtools.devcard import confirm_card_payment
from services.checkout.adapters.models import FunnelEventRow, Order, OutboxMessage, Subscription
from services.common.clock import FixedClock
from services.common.formatting import money
from services.notifications.domain import messages
from services.notifications.domain.rendering import render
from tests.e2e.helpers import Buyer
from tests.support import LocalStripe, auth

pytestmark = pytest.mark.e2e

ACME, ACME_SUB = 100, 101
# Bought on the fixed clock's day (2026-11-21); grown later in the term.
LATER = datetime(2027, 9, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def buyer(stripe_app: Flask, localstripe: LocalStripe) -> Buyer:
    b = Buyer(stripe_app.test_client(), localstripe.url)
    b.save_account()
    return b


def grow(buyer: Buyer, key: str, **body: Any) -> Any:
    return buyer.post("/expansions", {"namespace_id": ACME, **body}, headers={"Idempotency-Key": key})


def quote(buyer: Buyer, **body: Any) -> Any:
    response = buyer.post("/expansions/quote", {"namespace_id": ACME, **body})
    assert response.status_code == 200, response.json
    return response.json


def subscribed(buyer: Buyer, clock: FixedClock, card: str = "4242424242424242", seats: int = 5) -> None:
    """Acme on Premium from the fixed clock's day, then the clock moves into the term."""
    buyer.add_card(card)
    bought = buyer.buy("first", seats=seats)
    if bought.status_code == 202:
        confirm_card_payment(buyer.stripe_url, bought.json["client_secret"])
        bought = buyer.post(f"/orders/{bought.json['order']['id']}/confirm")
    assert bought.status_code == 201, bought.json
    clock.set(LATER)


def receipt_of(app: Flask, order_id: int) -> dict[str, Any]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        for payload in s.scalars(select(OutboxMessage.payload).where(OutboxMessage.topic == "order.completed")):
            if payload["order_id"] == order_id:
                return dict(payload)
    raise AssertionError(f"no receipt for order {order_id}")


def assert_amount_truth(app: Flask, localstripe: LocalStripe, quoted: dict[str, Any],
                        result: dict[str, Any]) -> str:
    """PaymentIntent == quote == order == receipt mail; returns the mail's text."""
    order = result["order"]
    intent = localstripe.sdk.v1.payment_intents.retrieve(order["payment_intent_id"])
    assert intent.amount == quoted["total"] == order["total"] == order["amount_charged"]
    assert intent.status == "succeeded"
    payload = receipt_of(app, order["id"])
    assert payload["total"] == quoted["total"] and payload["lines"] == order["lines"]
    planned = messages.receipt(payload, LATER)
    mail = render(planned.template, planned.context)
    assert money(quoted["total"], "usd") in mail.text and quoted["heading"] in mail.text
    for line in quoted["lines"]:
        assert line["description"] in mail.text and money(line["amount"], "usd") in mail.text
    return mail.text


def test_add_seats_then_duo_pro_then_more_duo_seats(stripe_app: Flask, buyer: Buyer, clock: FixedClock,
                                                    localstripe: LocalStripe) -> None:
    subscribed(buyer, clock)
    seats = quote(buyer, kind="seats", quantity=3)
    assert seats["heading"] == "Add 3 seats to acme's Premium"
    added = grow(buyer, "seats-1", kind="seats", quantity=3)
    assert added.status_code == 201, added.json
    assert added.json["order"]["kind"] == "expansion" and added.json["subscription"]["seats"] == 8
    text = assert_amount_truth(stripe_app, localstripe, seats, added.json)
    assert "renews with your subscription" in text
    assert f"now costs {money(8 * 34800, 'usd')}" in text  # the receipt states the renewal's new price
    # Entitlements rise at once, and so does the renewal's price.
    assert buyer.get(f"/namespaces/{ACME}/entitlements").json["seats"] == 8
    renewal = buyer.get(f"/namespaces/{ACME}/subscription/renewal").json["quote"]
    assert renewal["seats"] == 8 and renewal["total"] == 8 * 34800

    duo = quote(buyer, kind="addon", sku="duo_pro", quantity=5)
    assert duo["heading"] == "Add GitLab Duo Pro for 5 seats to acme"
    bought = grow(buyer, "duo-1", kind="addon", sku="duo_pro", quantity=5)
    assert bought.status_code == 201, bought.json
    assert_amount_truth(stripe_app, localstripe, duo, bought.json)
    more = quote(buyer, kind="addon", sku="duo_pro", quantity=3)
    assert more["after"]["addons"] == [{"sku": "duo_pro", "seats": 8}]
    assert grow(buyer, "duo-2", kind="addon", sku="duo_pro", quantity=4).json["code"] == \
        "addon_seats_exceed_plan"
    done = grow(buyer, "duo-3", kind="addon", sku="duo_pro", quantity=3)
    assert_amount_truth(stripe_app, localstripe, more, done.json)
    renewal = buyer.get(f"/namespaces/{ACME}/subscription/renewal").json["quote"]
    assert renewal["total"] == 8 * 34800 + 8 * 22800
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        completed = s.scalars(select(FunnelEventRow).where(FunnelEventRow.step == "purchase_completed")
                              .order_by(FunnelEventRow.id)).all()
    assert [(e.properties["kind"], e.properties["duo_pro"], e.properties.get("expansion")) for e in completed] == [
        ("purchase", False, None), ("expansion", False, "seats"), ("expansion", True, "addon"),
        ("expansion", True, "addon")]
    assert all(isinstance(e.experiments, dict) for e in completed)  # the person's variations ride along
    history = buyer.get(f"/namespaces/{ACME}/subscription").json["orders"]
    assert [o["kind"] for o in history] == ["purchase", "expansion", "expansion", "expansion"]
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        expanded = [p for p in s.scalars(select(OutboxMessage.payload).where(
            OutboxMessage.topic == "subscription.expanded"))]
    assert [e["added"] for e in expanded] == [
        [{"kind": "seats", "sku": "premium_seats", "quantity": 3}],
        [{"kind": "addon", "sku": "duo_pro", "quantity": 5}],
        [{"kind": "addon", "sku": "duo_pro", "quantity": 3}]]


def test_packs_for_a_free_group_and_storage_with_a_subscription(stripe_app: Flask, buyer: Buyer,
                                                                clock: FixedClock,
                                                                localstripe: LocalStripe) -> None:
    buyer.add_card("4242424242424242")
    minutes = quote(buyer, kind="compute_minutes", quantity=2)
    bought = grow(buyer, "minutes-1", kind="compute_minutes", quantity=2)
    assert bought.status_code == 201, bought.json
    assert bought.json["subscription"] is None
    assert "do not renew" in assert_amount_truth(stripe_app, localstripe, minutes, bought.json)
    alone = quote(buyer, kind="storage", quantity=1)
    assert (alone["total"], alone["term_end"]) == (6000, "2027-11-21")
    assert grow(buyer, "storage-1", kind="storage", quantity=1).status_code == 201
    ent = buyer.get(f"/namespaces/{ACME}/entitlements").json
    assert ent["compute_minutes"] == {"purchased": 2000, "balance": 2000}
    assert ent["storage"] == {"purchased_gib": 10, "expires_on": "2027-11-21"}

    sub_card = buyer.buy("first", seats=5)  # the namespace now subscribes; storage joins its term
    assert sub_card.status_code == 201
    clock.set(LATER)
    storage = quote(buyer, kind="storage", quantity=2)
    assert storage["term_end"] == "2027-11-21" and storage["days_left"] == 81
    grown = grow(buyer, "storage-2", kind="storage", quantity=2)
    assert_amount_truth(stripe_app, localstripe, storage, grown.json)
    renewal = buyer.get(f"/namespaces/{ACME}/subscription/renewal").json["quote"]
    assert renewal["total"] == 5 * 34800 + 2 * 6000  # storage renews; compute minutes never do
    ent = buyer.get(f"/namespaces/{ACME}/entitlements").json
    assert ent["storage"]["purchased_gib"] == 30 and ent["compute_minutes"]["balance"] == 2000


def test_three_d_secure_then_confirm(stripe_app: Flask, buyer: Buyer, clock: FixedClock,
                                     localstripe: LocalStripe) -> None:
    subscribed(buyer, clock, card="4000002500003155")
    quoted = quote(buyer, kind="seats", quantity=2)
    pending = grow(buyer, "3ds-1", kind="seats", quantity=2)
    assert pending.status_code == 202, pending.json
    assert pending.json["status"] == "requires_action" and pending.json["client_secret"]
    assert "paymentIntent" in confirm_card_payment(localstripe.url, pending.json["client_secret"])
    done = buyer.post(f"/orders/{pending.json['order']['id']}/confirm")
    assert done.status_code == 201, done.json
    assert done.json["subscription"]["seats"] == 7
    assert_amount_truth(stripe_app, localstripe, quoted, done.json)


def test_a_declined_card_adds_nothing_and_the_answer_is_replayed(stripe_app: Flask, buyer: Buyer,
                                                                 clock: FixedClock) -> None:
    subscribed(buyer, clock)
    buyer.add_card("4000000000000341")  # the new default: every charge fails
    failed = grow(buyer, "decline-1", kind="seats", quantity=2)
    assert failed.status_code == 402 and failed.json["code"] == "card_declined"
    assert grow(buyer, "decline-1", kind="seats", quantity=2).json == failed.json
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == ACME))
        assert sub is not None and sub.seats == 5
        statuses = s.scalars(select(Order.status).where(Order.kind == "expansion")).all()
        failed_step = s.scalars(select(FunnelEventRow.properties).where(
            FunnelEventRow.step == "purchase_failed")).one()
    assert statuses == ["failed"]
    assert (failed_step["kind"], failed_step["expansion"], failed_step["reason"]) == (
        "expansion", "seats", "card_declined")


def test_same_key_same_answer_one_charge(stripe_app: Flask, buyer: Buyer, clock: FixedClock,
                                         localstripe: LocalStripe) -> None:
    subscribed(buyer, clock)
    first = grow(buyer, "twice", kind="seats", quantity=1)
    again = grow(buyer, "twice", kind="seats", quantity=1)
    assert (first.status_code, first.json) == (again.status_code, again.json)
    other = grow(buyer, "twice", kind="seats", quantity=2)
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"
    assert buyer.get(f"/namespaces/{ACME}/entitlements").json["seats"] == 6


def test_campaigns_target_an_add_on_or_a_pack_and_first_term_only_ends_at_renewal(
        stripe_app: Flask, buyer: Buyer, clock: FixedClock, localstripe: LocalStripe) -> None:
    admin = {"Authorization": auth(9, roles=("admin",))["Authorization"]}
    for code, sku in (("DUO-20", "duo_pro"), ("MINUTES-20", "compute_minutes")):
        created = buyer.client.post("/admin/campaigns", headers=admin, json={
            "name": code, "kind": "shared", "code": code, "discount_type": "percent", "value": 20,
            "applies_to": [sku], "first_term_only": True})
        assert created.status_code == 201, created.json
    subscribed(buyer, clock)
    # A plan's code does not reach an add-on: it says so and the quote stays at list price.
    wrong = quote(buyer, kind="addon", sku="duo_pro", quantity=4, discount_code="MINUTES-20")
    assert wrong["code_result"]["reason"] == "plan_not_eligible" and wrong["discount_total"] == 0
    duo = quote(buyer, kind="addon", sku="duo_pro", quantity=4, discount_code="duo-20")
    assert duo["code_result"]["applied"] and duo["discount_code"] == "DUO-20"
    line = duo["lines"][0]
    assert line["discount"] == (line["amount"] * 20 + 50) // 100 and duo["total"] == line["net"]
    bought = grow(buyer, "duo-code", kind="addon", sku="duo_pro", quantity=4, discount_code="DUO-20")
    assert bought.status_code == 201, bought.json
    text = assert_amount_truth(stripe_app, localstripe, duo, bought.json)
    assert "DUO-20" in text
    # First term only: the co-terminous add-on renews at list price, as the reminder says.
    renewal = buyer.get(f"/namespaces/{ACME}/subscription/renewal").json["quote"]
    assert renewal["total"] == 5 * 34800 + 4 * 22800
    assert grow(buyer, "duo-again", kind="addon", sku="duo_pro", quantity=1,
                discount_code="DUO-20").json["code"] == "already_redeemed"
    minutes = quote(buyer, kind="compute_minutes", quantity=5, discount_code="MINUTES-20")
    assert minutes["total"] == 4000
    paid = grow(buyer, "minutes-code", kind="compute_minutes", quantity=5, discount_code="MINUTES-20")
    assert_amount_truth(stripe_app, localstripe, minutes, paid.json)


def test_an_expansion_receipt_states_the_renewal_with_its_scheduled_change(stripe_app: Flask, buyer: Buyer,
                                                                          clock: FixedClock) -> None:
    subscribed(buyer, clock, seats=5)
    scheduled = buyer.client.put(f"/namespaces/{ACME}/subscription/scheduled-change", json={"seats": 3},
                                 headers=buyer.headers)
    assert scheduled.status_code == 200, scheduled.json
    grown = grow(buyer, "storage-after-change", kind="storage", quantity=1)
    assert grown.status_code == 201, grown.json
    renewal = receipt_of(stripe_app, grown.json["order"]["id"])["renewal"]
    # What the reminders and the charge will say: 3 seats (the change) and the storage pack.
    assert (renewal["seats"], renewal["total"]) == (3, 3 * 34800 + 6000)
    assert renewal["scheduled_change"] == ["Renew with 3 seats."]
