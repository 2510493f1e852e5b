"""The customer portal's API without Stripe: subscriptions across namespaces, who
may read and act, order history and receipts, automatic renewal with reasons."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import (
    BillingAccount,
    BillingAuditEntry,
    FunnelEventRow,
    Order,
    OutboxMessage,
    PaymentMethod,
)
from services.checkout.usecases import renewals
from services.common.clock import FixedClock
from tests.support import auth

ALICE, BOB, CAROL, FRANK, SAM, OUTSIDER = 1, 2, 3, 5, 9, 77
ACME, GLOBEX = 100, 200
PROBLEM = "application/problem+json"


def db(app: Flask) -> Session:
    return Session(app.extensions["checkout"].ctx.engine)


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert response.mimetype == PROBLEM and response.json["code"] == code, response.json


def test_owners_see_every_subscription_with_the_reminders_renewal_quote(client: FlaskClient) -> None:
    [globex] = client.get("/subscriptions", headers=auth(ALICE)).json
    assert (globex["namespace_path"], globex["plan"], globex["plan_name"]) == ("globex", "premium", "Premium")
    assert globex["seats_detail"] == {"bought": 5, "in_use": 4, "max_used": 4, "owed": 0}
    assert globex["seat_usage"][-1]["seats_in_use"] == 4  # the plot's last point: now
    assert (globex["term_start"], globex["term_end"]) == ("2026-01-25", "2027-01-25")
    assert globex["auto_renew"] is True and globex["ends_on"] is None
    # The renewal preview the reminders come from states the same date and amount.
    preview = client.get(f"/namespaces/{GLOBEX}/subscription/renewal", headers=auth(ALICE)).json
    assert globex["renewal"]["renewal_date"] == preview["quote"]["renewal_date"] == "2027-01-25"
    assert globex["renewal"]["total"] == preview["quote"]["total"] == 174000
    assert globex["renewal"]["auto"] is True
    assert globex["can_renew_now"] is False and globex["manual_renewal_from"] == "2026-12-26"
    # Bob maintains globex but is no Owner: nothing to manage.
    assert client.get("/subscriptions", headers=auth(BOB)).json == []


@pytest.mark.parametrize("user", [BOB, CAROL])
def test_developers_and_maintainers_read_plan_and_seats_but_no_card(
        client: FlaskClient, app: Flask, clock: FixedClock, user: int) -> None:
    with db(app) as s:
        account = s.scalar(select(BillingAccount))
        assert account is not None
        s.add(PaymentMethod(billing_account_id=account.id, stripe_payment_method_id="pm_x", brand="visa",
                            last4="4242", exp_month=12, exp_year=2034, is_default=True, created_at=clock.now()))
        s.commit()
    seen = client.get(f"/namespaces/{GLOBEX}/billing", headers=auth(user)).json
    assert seen["can_manage"] is False and seen["subscription"]["seats_detail"]["bought"] == 5
    assert seen["card"] == {"expired": False, "expiring": False}  # whether it will do, not which card
    owner = client.get(f"/namespaces/{GLOBEX}/billing", headers=auth(ALICE)).json
    assert owner["can_manage"] is True and owner["card"]["last4"] == "4242"
    for path in ("billing/cards", "orders"):
        refused(client.get(f"/namespaces/{GLOBEX}/{path}", headers=auth(user)), 403,
                "billing_manager_required")
    refused(client.put(f"/namespaces/{GLOBEX}/subscription/auto-renew",
                       json={"enabled": False, "reason": "too_expensive"}, headers=auth(user)),
            403, "billing_manager_required")
    refused(client.post(f"/namespaces/{GLOBEX}/billing/card-setup", headers=auth(user)),
            403, "billing_manager_required")


def test_other_namespaces_are_hidden_and_ids_can_not_cross(client: FlaskClient, app: Flask,
                                                           clock: FixedClock) -> None:
    refused(client.get(f"/namespaces/{GLOBEX}/billing", headers=auth(OUTSIDER)), 404, "namespace_not_found")
    refused(client.get(f"/namespaces/{GLOBEX}/orders", headers=auth(FRANK)), 404, "namespace_not_found")
    order_id = _order(app, clock, ACME)
    # acme's order is not globex's, though Alice owns both.
    refused(client.get(f"/namespaces/{GLOBEX}/orders/{order_id}/receipt", headers=auth(ALICE)),
            404, "order_not_found")
    assert client.get(f"/namespaces/{ACME}/orders/{order_id}/receipt", headers=auth(ALICE)).status_code == 200
    # A card of another account is no card of this one.
    with db(app) as s:
        other = BillingAccount(user_id=OUTSIDER, company="X", email="x@x.test", country="US",
                               address_line1="1", city="c", postal_code="1", created_at=clock.now(),
                               updated_at=clock.now())
        s.add(other)
        s.flush()
        card = PaymentMethod(billing_account_id=other.id, stripe_payment_method_id="pm_other", brand="visa",
                             last4="1111", exp_month=1, exp_year=2030, is_default=True, created_at=clock.now())
        s.add(card)
        s.commit()
        card_id = card.id
    refused(client.put(f"/namespaces/{GLOBEX}/billing/cards/{card_id}/default", headers=auth(ALICE)),
            404, "card_not_found")
    refused(client.delete(f"/namespaces/{GLOBEX}/billing/cards/{card_id}", headers=auth(ALICE)),
            404, "card_not_found")


def _order(app: Flask, clock: FixedClock, namespace_id: int, **fields: Any) -> int:
    line = {"sku": "premium", "kind": "plan", "description": "Premium plan, 5 seats, 12 months",
            "quantity": 5, "unit_amount": 34800, "amount": 174000, "discount": 60000, "net": 114000}
    with db(app) as s:
        account = s.scalar(select(BillingAccount).where(BillingAccount.user_id == ALICE))
        assert account is not None
        order = Order(billing_account_id=account.id, namespace_id=namespace_id, user_id=ALICE, plan="premium",
                      seats=5, currency="usd", subtotal=174000, discount_total=60000, total=114000,
                      lines=[line], catalog_version="1", discount_code="SMB2026", term_start=date(2026, 11, 21),
                      term_end=date(2027, 11, 21), status="completed", amount_charged=114000,
                      created_at=clock.now(), completed_at=clock.now(), **fields)
        s.add(order)
        s.commit()
        return order.id


def test_order_history_and_receipt_say_what_the_receipt_mail_says(client: FlaskClient, app: Flask,
                                                                   clock: FixedClock) -> None:
    completed = _order(app, clock, ACME)
    clock.advance(timedelta(minutes=1))
    failed = _order(app, clock, ACME, failure_code="card_declined",
                    failure_message="Your card was declined.")
    with db(app) as s:
        row = s.get(Order, failed)
        assert row is not None
        row.status, row.amount_charged, row.completed_at = "failed", 0, None
        s.commit()
    history = client.get(f"/namespaces/{ACME}/orders", headers=auth(ALICE)).json
    assert [o["id"] for o in history["orders"]] == [failed, completed]  # newest first
    newest, oldest = history["orders"]
    assert (newest["status"], newest["failure_code"]) == ("failed", "card_declined")
    assert (oldest["kind"], oldest["total"], oldest["discount_total"], oldest["discount_code"]) == (
        "purchase", 114000, 60000, "SMB2026")
    assert oldest["description"] == "Premium plan, 5 seats, 12 months" and oldest["refunded_amount"] == 0
    receipt = client.get(f"/namespaces/{ACME}/orders/{completed}/receipt", headers=auth(ALICE)).json
    assert (receipt["order_id"], receipt["namespace_path"], receipt["company"]) == (completed, "acme", "Acme Corp")
    assert (receipt["subtotal"], receipt["discount_total"], receipt["total"]) == (174000, 60000, 114000)


def test_auto_renew_off_needs_a_reason_is_counted_mailed_and_can_come_back(
        client: FlaskClient, app: Flask) -> None:
    path = f"/namespaces/{GLOBEX}/subscription/auto-renew"
    refused(client.put(path, json={"enabled": False}, headers=auth(ALICE)), 422, "reason_required")
    refused(client.put(path, json={"enabled": False, "reason": "bored"}, headers=auth(ALICE)),
            422, "unknown_reason")
    off = client.put(path, json={"enabled": False, "reason": "too_expensive", "comment": "budget cut"},
                     headers=auth(ALICE))
    assert off.status_code == 200, off.json
    assert off.json["auto_renew"] is False and off.json["auto_renew_off_reason"] == "too_expensive"
    assert off.json["ends_on"] == "2027-01-25" and off.json["grace_ends"] == "2027-02-08"
    assert "returns to the Free plan" in off.json["at_term_end"]
    on = client.put(path, json={"enabled": True}, headers=auth(ALICE))
    assert on.json["auto_renew"] is True and on.json["auto_renew_off_reason"] is None
    with db(app) as s:
        published = [m.payload for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "subscription.auto_renew_changed").order_by(OutboxMessage.id))]
        audit = [(a.action, a.reason, a.actor_id) for a in s.scalars(select(BillingAuditEntry)
                                                                      .order_by(BillingAuditEntry.id))]
        funnel = list(s.scalars(select(FunnelEventRow.step).where(FunnelEventRow.step.like("auto_renew%"))))
    assert sorted((p["auto_renew"], p["reason"] or "", p["email"]) for p in published) == [
        (False, "too_expensive", "billing@acme.test"), (True, "", "billing@acme.test")]
    assert all(p["billing_url"].endswith("/billing/200") for p in published)
    assert audit == [("auto_renew_off", "too_expensive", ALICE), ("auto_renew_on", None, ALICE)]
    assert funnel == ["auto_renew_off", "auto_renew_on"]
    counts = client.get("/admin/auto-renew-reasons", headers=auth(SAM, roles=("admin",))).json
    assert {c["reason"]: c["count"] for c in counts}["too_expensive"] == 1
    refused(client.get("/admin/auto-renew-reasons", headers=auth(ALICE)), 403, "admin_required")
    assert [r["reason"] for r in client.get("/auto-renew-reasons").json][0] == "too_expensive"


def test_auto_renew_comes_back_only_until_the_term_ends(client: FlaskClient, clock: FixedClock) -> None:
    path = f"/namespaces/{GLOBEX}/subscription/auto-renew"
    client.put(path, json={"enabled": False, "reason": "not_using"}, headers=auth(ALICE))
    clock.set(clock.now().replace(year=2027, month=1, day=25))
    refused(client.put(path, json={"enabled": True}, headers=auth(ALICE)), 409, "term_ended")


def test_the_save_offer_is_off_by_default(client: FlaskClient) -> None:
    answer = client.get(f"/namespaces/{GLOBEX}/subscription/save-offer", headers=auth(ALICE))
    assert answer.status_code == 200 and answer.json == {"offer": None}


def test_removing_the_card_auto_renew_needs_is_refused_with_what_to_do(client: FlaskClient, app: Flask,
                                                                        clock: FixedClock) -> None:
    with db(app) as s:
        account = s.scalar(select(BillingAccount))
        assert account is not None
        card = PaymentMethod(billing_account_id=account.id, stripe_payment_method_id="pm_only", brand="visa",
                             last4="4242", exp_month=12, exp_year=2034, is_default=True, created_at=clock.now())
        s.add(card)
        s.commit()
        card_id = card.id
    answer = client.delete(f"/namespaces/{GLOBEX}/billing/cards/{card_id}", headers=auth(ALICE))
    refused(answer, 409, "card_needed_for_renewal")
    assert answer.json["renewing"] == ["globex"]
    assert answer.json["instead"] == ["add_card_and_make_default", "turn_auto_renew_off"]
    with db(app) as s:
        kept = s.get(PaymentMethod, card_id)
        assert kept is not None and kept.removed_at is None and kept.is_default


def test_namespaces_without_a_purchase_have_no_cards_to_manage(client: FlaskClient) -> None:
    overview = client.get(f"/namespaces/{ACME}/billing", headers=auth(ALICE)).json
    assert overview["subscription"] is None and overview["plan"] == "free"
    refused(client.get(f"/namespaces/{ACME}/billing/cards", headers=auth(ALICE)), 404, "nothing_bought")


def test_a_seat_reduction_scheduled_for_renewal_is_in_the_quote_the_reminders_and_can_be_canceled(
        client: FlaskClient, app: Flask) -> None:
    path = f"/namespaces/{GLOBEX}/subscription/scheduled-change"
    refused(client.put(path, json={"seats": 3}, headers=auth(ALICE)), 422, "seats_below_billable")
    refused(client.put(path, json={"plan": "ultimate"}, headers=auth(ALICE)), 422, "plan_not_lower")
    refused(client.put(path, json={"seats": 4}, headers=auth(CAROL)), 403, "billing_manager_required")
    scheduled = client.put(path, json={"seats": 4}, headers=auth(ALICE))
    assert scheduled.status_code == 200, scheduled.json
    assert scheduled.json["scheduled_change"] == {"seats": 4, "plan": None, "drop_addons": [],
                                                  "effective": "2027-01-25"}
    assert (scheduled.json["renewal"]["seats"], scheduled.json["renewal"]["total"]) == (4, 4 * 34800)
    preview = client.get(f"/namespaces/{GLOBEX}/subscription/renewal", headers=auth(ALICE)).json
    assert preview["quote"]["total"] == 4 * 34800
    assert preview["quote"]["scheduled_change"] == ["Renew with 4 seats."]
    # The reminder due now (65 days before) states the same quote.
    checkout = app.extensions["checkout"]
    renewals.announce_renewals(checkout, checkout.ctx.uow, checkout.renewal_rules)
    with db(app) as s:
        [upcoming] = [m.payload for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "subscription.renewal_upcoming"))]
    assert upcoming["quote"]["total"] == 4 * 34800
    assert upcoming["quote"]["scheduled_change"] == ["Renew with 4 seats."]

    canceled = client.delete(path, headers=auth(ALICE))
    assert canceled.json["scheduled_change"] is None and canceled.json["renewal"]["total"] == 5 * 34800
    refused(client.delete(path, headers=auth(ALICE)), 404, "no_scheduled_change")
    with db(app) as s:
        actions = list(s.scalars(select(BillingAuditEntry.action).order_by(BillingAuditEntry.id)))
    assert actions == ["change_scheduled", "scheduled_change_canceled"]
