"""Expansions over HTTP (no Stripe needed): quotes, the rules, and bad input that
writes nothing. The charge itself is tested on localstripe (tests/e2e/test_expansions.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.checkout.adapters.models import (
    BillingAccount,
    FunnelEventRow,
    IdempotencyRecord,
    NamespaceTrial,
    Order,
    OutboxMessage,
    PackPurchase,
    PaymentMethod,
    Subscription,
    SubscriptionAddOn,
)
from services.checkout.domain.pricing import prorate
from services.common.clock import FixedClock
from tests.support import auth

ALICE, BOB = 1, 2
ACME, ACME_SUB, GLOBEX = 100, 101, 200
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def saved_card(app: Flask, clock: FixedClock) -> None:
    """Alice's card on file (the rules are checked after it, as for a purchase)."""
    with Session(app.extensions["checkout"].ctx.engine) as s:
        account = s.scalar(select(BillingAccount).where(BillingAccount.user_id == ALICE))
        assert account is not None
        s.add(PaymentMethod(billing_account_id=account.id, stripe_payment_method_id="pm_test_alice",
                            brand="visa", last4="4242", exp_month=12, exp_year=2034, is_default=True,
                            created_at=clock.now()))
        s.commit()


def quote(client: FlaskClient, user: int = ALICE, **body: Any) -> Any:
    payload = {"namespace_id": GLOBEX, "kind": "seats", "quantity": 3, **body}
    return client.post("/expansions/quote", json=payload, headers=auth(user))


def expand(client: FlaskClient, key: str = "k-1", user: int = ALICE, **body: Any) -> Any:
    payload = {"namespace_id": GLOBEX, "kind": "seats", "quantity": 3, **body}
    return client.post("/expansions", json=payload, headers={**auth(user), "Idempotency-Key": key})


def written(app: Flask) -> dict[str, Any]:
    """Everything an expansion could write, to compare before and after."""
    with Session(app.extensions["checkout"].ctx.engine) as s:
        count = {m.__name__: s.scalar(select(func.count()).select_from(m))
                 for m in (Order, IdempotencyRecord, PackPurchase, OutboxMessage, SubscriptionAddOn)}
        subs = s.execute(select(Subscription.id, Subscription.seats, Subscription.storage_packs)).all()
        return {**count, "subscriptions": sorted(map(tuple, subs))}


def steps(app: Flask) -> list[str]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return list(s.scalars(select(FunnelEventRow.step).order_by(FunnelEventRow.id)))


def term(app: Flask) -> Subscription:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == GLOBEX))
        assert sub is not None
        return sub


def test_quote_seats_pro_rata_with_what_the_namespace_will_have(client: FlaskClient, app: Flask,
                                                               clock: FixedClock) -> None:
    sub = term(app)
    days_left = (sub.term_end - clock.now().date()).days
    term_days = (sub.term_end - sub.term_start).days
    response = quote(client)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["heading"] == "Add 3 seats to globex's Premium"
    assert (body["days_left"], body["term_days"], body["term_end"]) == (days_left, term_days,
                                                                      sub.term_end.isoformat())
    assert body["total"] == prorate(34800 * 3, days_left, term_days) == body["lines"][0]["amount"]
    assert body["after"] == {"plan": "premium", "seats": 8, "addons": [], "compute_minutes": 0,
                             "storage_gib": 0}
    assert body["subscription_id"] == sub.id and body["code_result"] is None
    assert steps(app)[-2:] == ["expansion_chosen", "expansion_quoted"]


def test_quote_duo_pro_packs_and_storage(client: FlaskClient) -> None:
    duo = quote(client, kind="addon", sku="duo_pro", quantity=5).json
    assert duo["heading"] == "Add GitLab Duo Pro for 5 seats to globex"
    assert duo["after"]["addons"] == [{"sku": "duo_pro", "seats": 5}]
    minutes = quote(client, namespace_id=ACME, kind="compute_minutes", quantity=2).json
    assert (minutes["heading"], minutes["total"], minutes["term_end"]) == (
        "Buy 2,000 compute minutes for acme", 2000, None)
    storage = quote(client, kind="storage", quantity=1).json
    assert storage["term_end"] == duo["term_end"] and storage["after"]["storage_gib"] == 10


@pytest.mark.parametrize("body,status,code", [
    ({"kind": "addon", "sku": "duo_pro", "quantity": 6}, 422, "addon_seats_exceed_plan"),
    ({"kind": "addon", "sku": "duo_enterprise", "quantity": 1}, 422, "addon_not_available"),
    ({"namespace_id": ACME}, 404, "no_subscription"),
    ({"namespace_id": ACME_SUB, "kind": "compute_minutes", "quantity": 1}, 422, "not_top_level"),
    ({"quantity": 0}, 422, "validation_failed"),
    ({"quantity": -2}, 422, "validation_failed"),
    ({"quantity": 10**9}, 422, "validation_failed"),
    ({"quantity": "3"}, 422, "validation_failed"),
    ({"quantity": 20_000}, 422, "seats_above_maximum"),
    ({"kind": "compute_minutes", "quantity": 101}, 422, "quantity_above_maximum"),
    ({"kind": "addon"}, 422, "validation_failed"),
    ({"kind": "seats", "sku": "duo_pro"}, 422, "validation_failed"),
    ({"kind": "gold"}, 422, "validation_failed"),
])
def test_bad_input_is_a_stable_problem_and_writes_nothing(client: FlaskClient, app: Flask, body: dict[str, Any],
                                                          status: int, code: str) -> None:
    before = written(app)
    for response in (quote(client, **body), expand(client, **body)):
        assert (response.status_code, response.mimetype) == (status, PROBLEM), response.json
        assert response.json["code"] == code
    assert written(app) == before
    if code == "addon_seats_exceed_plan":
        assert response.json["maximum_seats"] == 5


def test_only_owners_grow_a_namespace(client: FlaskClient, app: Flask) -> None:
    before = written(app)
    assert quote(client, user=BOB).json["code"] == "not_owner"
    assert expand(client, user=BOB).json["code"] == "not_owner"
    assert written(app) == before


def test_a_lapsed_or_expired_subscription_takes_no_seats(client: FlaskClient, app: Flask,
                                                         clock: FixedClock) -> None:
    sub = term(app)
    with Session(app.extensions["checkout"].ctx.engine) as s:  # auto-renew off, and the term ran out
        s.execute(update(Subscription).where(Subscription.id == sub.id).values(auto_renew=False))
        s.commit()
    clock.advance(timedelta(days=(sub.term_end - clock.now().date()).days + 1))
    before = written(app)
    assert quote(client).json["code"] == "term_ended"
    assert expand(client).json["code"] == "term_ended"
    with Session(app.extensions["checkout"].ctx.engine) as s:
        s.execute(update(Subscription).where(Subscription.id == sub.id).values(status="expired"))
        s.commit()
    assert quote(client).json["code"] == "no_subscription"
    assert expand(client, key="k-2").json["code"] == "no_subscription"
    before["subscriptions"] = written(app)["subscriptions"]
    assert written(app) == before


def test_a_pending_order_blocks_another(client: FlaskClient, app: Flask, clock: FixedClock) -> None:
    sub = term(app)
    with Session(app.extensions["checkout"].ctx.engine) as s:
        s.add(Order(billing_account_id=1, namespace_id=GLOBEX, user_id=ALICE, plan="premium", seats=8,
                    currency="usd", subtotal=1, total=1, lines=[], catalog_version="x",
                    term_start=clock.now().date(), term_end=sub.term_end, status="pending",
                    kind="expansion", created_at=clock.now()))
        s.commit()
    before = written(app)
    response = expand(client)
    assert (response.status_code, response.json["code"]) == (409, "purchase_in_progress")
    assert written(app) == before


def test_entitlements_show_pack_balances(client: FlaskClient) -> None:
    body = client.get(f"/namespaces/{GLOBEX}/entitlements", headers=auth(ALICE)).json
    assert body["compute_minutes"] == {"purchased": 0, "balance": 0}
    assert body["storage"] == {"purchased_gib": 0, "expires_on": None}


def test_the_openapi_documents_expansions(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    assert {"/expansions", "/expansions/quote"} <= set(spec["paths"])
    assert "kind" in spec["components"]["schemas"]["Order"]["properties"]


def test_the_duo_trials_seat_holder_keeps_the_seat_once_duo_is_bought(client: FlaskClient, app: Flask,
                                                                       clock: FixedClock) -> None:
    sub = term(app)
    with Session(app.extensions["checkout"].ctx.engine) as s:  # as trial.converted and the order leave it
        s.add(NamespaceTrial(namespace_id=GLOBEX, kind="duo_pro", status="converted", ends_at=clock.now(),
                             grants_addon="duo_pro", seats=5, seat_holder=ALICE, version=2,
                             last_event_at=clock.now()))
        s.add(SubscriptionAddOn(subscription_id=sub.id, sku="duo_pro", seats=5))
        s.commit()
    body = client.get(f"/namespaces/{GLOBEX}/entitlements", headers=auth(ALICE)).json
    assert body["addons"] == [{"sku": "duo_pro", "seats": 5, "trial": False, "seat_holders": [ALICE]}]
