"""Discount codes redeemed by real purchases against localstripe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devtools.devcard import confirm_card_payment
from services.checkout.adapters.models import (
    BillingAccount,
    DiscountCampaign,
    DiscountCode,
    DiscountRedemption,
    FunnelEventRow,
    Membership,
    Namespace,
    Order,
)
from services.checkout.adapters.ratelimit import AttemptLimiter
from tests.e2e.helpers import Buyer, provision_buyers
from tests.support import LiveServer, LocalStripe, auth

pytestmark = pytest.mark.e2e
ADMIN = auth(9, roles=("admin",))


def db(app: Flask) -> Session:
    return Session(app.extensions["checkout"].ctx.engine)


def count(app: Flask, model: Any, *where: Any) -> int:
    with db(app) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def campaign(app: Flask, name: str) -> DiscountCampaign:
    with db(app) as s:
        return s.scalars(select(DiscountCampaign).where(DiscountCampaign.name == name)).one()


@pytest.fixture
def alice(stripe_app: Flask, localstripe: LocalStripe) -> Buyer:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    return buyer


def test_smb_purchase_redeems_once_and_reports_revenue(stripe_app: Flask, alice: Buyer,
                                                       localstripe: LocalStripe) -> None:
    alice.add_card("4242424242424242")
    bought = alice.buy("smb-1", seats=10, discount_code="smb2026")
    assert bought.status_code == 201, bought.json
    order = bought.json["order"]
    assert (order["subtotal"], order["discount_total"], order["total"]) == (348000, 120000, 228000)
    assert order["discount_code"] == "SMB2026"
    with db(stripe_app) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == 1))
    assert [pi.amount for pi in localstripe.payment_intents(customer)] == [228000]
    smb = campaign(stripe_app, "SMB 2026")
    assert smb.redeemed_count == 1
    stats = alice.client.get(f"/admin/campaigns/{smb.id}", headers=ADMIN).json
    assert stats["redemptions"] == 1 and stats["remaining_uses"] == 499
    assert stats["revenue"] == {"list_price": 348000, "discount_given": 120000, "collected": 228000}
    redemptions = alice.client.get(f"/admin/campaigns/{smb.id}/redemptions", headers=ADMIN).json
    assert [(r["order_id"], r["code"], r["discount_amount"]) for r in redemptions] == [
        (order["id"], "SMB2026", 120000)]
    with db(stripe_app) as s:
        steps = list(s.scalars(select(FunnelEventRow.step).order_by(FunnelEventRow.id)))
    assert steps[-3:] == ["code_applied", "code_redeemed", "purchase_completed"]


def test_a_declined_purchase_takes_nothing_from_the_offer(stripe_app: Flask, alice: Buyer) -> None:
    alice.add_card("4000000000000341")
    declined = alice.buy("smb-declined", discount_code="SMB2026")
    assert declined.status_code == 402
    assert campaign(stripe_app, "SMB 2026").redeemed_count == 0
    assert count(stripe_app, DiscountRedemption) == 0
    alice.add_card("4242424242424242")
    assert alice.buy("smb-ok", discount_code="SMB2026").status_code == 201
    assert campaign(stripe_app, "SMB 2026").redeemed_count == 1


def test_a_rejected_code_at_purchase_leaves_nothing_behind(stripe_app: Flask, alice: Buyer) -> None:
    alice.add_card("4242424242424242")
    response = alice.buy("smb-ultimate", plan="ultimate", discount_code="SMB2026")
    assert response.status_code == 422 and response.json["code"] == "plan_not_eligible"
    assert count(stripe_app, Order) == 0
    # Nothing happened, so the key is free for the corrected request.
    assert alice.buy("smb-ultimate", plan="premium", discount_code="SMB2026").status_code == 201


def test_single_use_codes_work_once(stripe_app: Flask, localstripe: LocalStripe) -> None:
    first, second = provision_buyers(stripe_app, localstripe.url, 2)
    with db(stripe_app) as s:
        code = s.scalar(select(DiscountCode.code).where(DiscountCode.max_redemptions == 1).limit(1))
    body = {"plan": "ultimate", "seats": 1, "discount_code": code}
    ok = Buyer(stripe_app.test_client(), localstripe.url, first).buy("b1", namespace_id=first, **body)
    assert ok.status_code == 201 and ok.json["order"]["discount_total"] == 118800 // 5
    used = Buyer(stripe_app.test_client(), localstripe.url, second).buy("b2", namespace_id=second, **body)
    assert used.status_code == 422 and used.json["code"] == "code_exhausted"
    assert count(stripe_app, Order) == 1


def test_once_per_billing_account_across_namespaces(stripe_app: Flask, alice: Buyer) -> None:
    alice.add_card("4242424242424242")
    with db(stripe_app) as s:
        s.add(Namespace(id=300, path="acme-labs", name="Acme Labs", kind="group", plan="free",
                        created_at=stripe_app.extensions["checkout"].ctx.clock.now()))
        s.flush()
        s.add(Membership(namespace_id=300, user_id=1, role="owner", billable=True))
        s.commit()
    alice.client.post("/admin/campaigns", headers=ADMIN, json={
        "name": "Per account", "kind": "shared", "code": "ONCE-EACH", "discount_type": "percent",
        "value": 10, "applies_to": ["premium"], "once_per_billing_account": True})
    assert alice.buy("pa-1", discount_code="ONCE-EACH").status_code == 201
    again = alice.buy("pa-2", namespace_id=300, discount_code="ONCE-EACH")
    assert again.status_code == 422 and again.json["code"] == "already_redeemed"


def test_offer_running_out_during_3ds_refunds_the_buyer(stripe_app: Flask, alice: Buyer,
                                                         localstripe: LocalStripe) -> None:
    alice.add_card("4000002500003155")
    pending = alice.buy("smb-3ds", discount_code="SMB2026")
    assert pending.status_code == 202
    assert campaign(stripe_app, "SMB 2026").redeemed_count == 0  # not taken while authenticating
    with db(stripe_app) as s:  # meanwhile the last use goes to someone else
        s.query(DiscountCampaign).filter_by(name="SMB 2026").update({"redeemed_count": 500})
        s.commit()
    confirm_card_payment(localstripe.url, pending.json["client_secret"])
    result = alice.post(f"/orders/{pending.json['order']['id']}/confirm")
    assert result.status_code == 409, result.json
    assert result.json["code"] == "code_exhausted" and result.json["refunded"] is True
    assert "refunded" in result.json["detail"]
    intent_id = pending.json["order"]["payment_intent_id"]
    refunds = [r for r in localstripe.sdk.v1.refunds.list(params={"limit": 100}).data
               if r.payment_intent == intent_id]
    assert [r.amount for r in refunds] == [pending.json["order"]["total"]]
    assert count(stripe_app, Order, Order.status == "failed") == 1


def test_3ds_purchase_with_a_code_redeems_when_it_completes(stripe_app: Flask, alice: Buyer,
                                                            localstripe: LocalStripe) -> None:
    alice.add_card("4000002500003155")
    pending = alice.buy("smb-3ds-ok", discount_code="SMB2026")
    confirm_card_payment(localstripe.url, pending.json["client_secret"])
    done = alice.post(f"/orders/{pending.json['order']['id']}/confirm")
    assert done.status_code == 201
    assert campaign(stripe_app, "SMB 2026").redeemed_count == 1


def test_two_hundred_buyers_race_for_fifty_uses(postgres_only: None, stripe_app: Flask,
                                               live_checkout: LiveServer, localstripe: LocalStripe) -> None:
    stripe_app.extensions["checkout"].code_attempts = AttemptLimiter("memory://", "1000/minute", "10/minute")
    admin = requests.post(f"{live_checkout.url}/admin/campaigns", headers=ADMIN, timeout=10, json={
        "name": "Flash sale", "kind": "shared", "code": "FLASH-50", "discount_type": "percent",
        "value": 10, "applies_to": ["premium"], "max_redemptions": 50})
    assert admin.status_code == 201
    buyers = provision_buyers(stripe_app, localstripe.url, 200)

    def buy(user_id: int) -> tuple[int, dict[str, Any]]:
        r = requests.post(f"{live_checkout.url}/purchases", timeout=120,
                          headers={**auth(user_id), "Idempotency-Key": f"flash-{user_id}"},
                          json={"namespace_id": user_id, "plan": "premium", "seats": 1,
                                "discount_code": "FLASH-50"})
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(buy, buyers))
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 50, {s: statuses.count(s) for s in set(statuses)}
    assert statuses.count(422) == 150
    assert {b["code"] for s, b in results if s == 422} == {"code_exhausted"}
    assert all(b["order"]["discount_total"] == 3480 for s, b in results if s == 201)
    flash = campaign(stripe_app, "Flash sale")
    assert flash.redeemed_count == 50
    assert count(stripe_app, DiscountRedemption, DiscountRedemption.campaign_id == flash.id) == 50
    assert count(stripe_app, Order, Order.status == "completed", Order.discount_code == "FLASH-50") == 50
    assert count(stripe_app, Order, Order.status != "completed") == 0  # the losers left nothing
    with db(stripe_app) as s:
        customers = set(s.scalars(select(BillingAccount.stripe_customer_id)
                                  .where(BillingAccount.user_id.in_(buyers))))
    assert len(localstripe.payment_intents(*customers)) == 50
