"""Checkout's HTTP API on SQLite and PostgreSQL (Stripe not needed here)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import BillingAccount, FunnelEventRow, Order
from services.checkout.adapters.ratelimit import AttemptLimiter
from tests.support import auth

ALICE, FRANK, BOB, OUTSIDER = 1, 5, 2, 77
ACME, ACME_SUB, GLOBEX = 100, 101, 200
PROBLEM = "application/problem+json"


def quote(client: FlaskClient, user: int = ALICE, **body: Any) -> Any:
    payload = {"namespace_id": ACME, "plan": "premium", "seats": 5, **body}
    return client.post("/quotes", json=payload, headers=auth(user))


def rows(app: Flask, model: Any) -> int:
    with Session(app.extensions["checkout"].ctx.engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def steps(app: Flask) -> list[str]:
    with Session(app.extensions["checkout"].ctx.engine) as session:
        return list(session.scalars(select(FunnelEventRow.step).order_by(FunnelEventRow.id)))


def test_health_ready_and_openapi(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok", "service": "checkout"}
    ready = client.get("/readyz")
    # Stripe is deliberately unreachable in this fixture: reported, but the pod stays in service.
    assert ready.status_code == 200 and ready.json["status"] == "degraded"
    assert ready.json["checks"] == {"database": "ok", "stripe": "unavailable: PaymentProviderUnavailable"}
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/plans", "/quotes", "/purchases", "/billing-account/cards",
            "/namespaces/{namespace_id}/entitlements", "/stripe/webhooks"} <= set(spec["paths"])
    assert "bearerAuth" in spec["components"]["securitySchemes"]


def test_plans_are_public_and_priced_in_cents(client: FlaskClient, app: Flask) -> None:
    body = client.get("/plans").json
    plans = {p["id"]: p for p in body["plans"]}
    assert plans["premium"]["unit_amount"] == 34800 and plans["premium"]["monthly_unit_amount"] == 2900
    assert plans["ultimate"]["monthly_unit_amount"] == 9900
    assert {a["id"] for a in body["addons"]} == {"duo_pro", "duo_enterprise"}
    client.get("/plans", headers=auth(ALICE))
    assert steps(app) == ["plans_viewed", "plans_viewed"]


def test_quote_shows_lines_totals_and_minimum(client: FlaskClient, app: Flask) -> None:
    response = quote(client, seats=3, addons=[{"sku": "duo_pro", "seats": 2}])
    assert response.status_code == 200, response.json
    body = response.json
    assert body["minimum_seats"] == 2 and body["billable_members"] == 2
    assert [(line["sku"], line["amount"]) for line in body["lines"]] == [("premium", 104400), ("duo_pro", 45600)]
    assert body["total"] == 150000 and body["term_start"] == "2026-11-21" and body["term_end"] == "2027-11-21"
    assert steps(app) == ["plan_chosen"]


def test_quote_below_billable_members_names_the_minimum(client: FlaskClient) -> None:
    response = quote(client, namespace_id=GLOBEX, seats=1)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert response.json["code"] == "seats_below_minimum"
    assert response.json["minimum_seats"] == 4


@pytest.mark.parametrize("seats", [0, -1, 2_000_000, 2.5, "5", None, True])
def test_bad_seat_values_are_validation_problems(client: FlaskClient, seats: Any) -> None:
    response = quote(client, seats=seats)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert response.json["code"] == "validation_failed"
    assert "seats" in response.json["errors"]["json"]


def test_huge_but_valid_seat_count_hits_the_self_service_limit(client: FlaskClient) -> None:
    response = quote(client, seats=50_000)
    assert response.json["code"] == "seats_above_maximum"


def test_unknown_plan_and_fields(client: FlaskClient) -> None:
    assert quote(client, plan="platinum").json["code"] == "unknown_plan"
    response = quote(client, colour="blue")
    assert response.status_code == 422 and "colour" in response.json["errors"]["json"]


def test_subgroup_can_not_be_quoted(client: FlaskClient) -> None:
    assert quote(client, namespace_id=ACME_SUB).json["code"] == "not_top_level"


@pytest.mark.parametrize("headers,code", [
    ({}, "unauthenticated"),
    ({"Authorization": "Bearer nonsense"}, "invalid_token"),
])
def test_missing_or_bad_token(client: FlaskClient, headers: dict[str, str], code: str) -> None:
    response = client.post("/quotes", json={"namespace_id": ACME, "plan": "premium", "seats": 5},
                           headers=headers)
    assert response.status_code == 401 and response.json["code"] == code
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_foreign_and_unknown_namespaces_look_the_same(client: FlaskClient) -> None:
    foreign = quote(client, user=OUTSIDER)
    unknown = quote(client, namespace_id=999999)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json["code"] == unknown.json["code"] == "namespace_not_found"


def test_malformed_json_and_wrong_content_type(client: FlaskClient) -> None:
    bad = client.post("/quotes", data="{not json", headers={**auth(ALICE), "Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json["code"] == "malformed_json" and bad.mimetype == PROBLEM
    form = client.post("/quotes", data="plan=premium", headers={
        **auth(ALICE), "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and form.json["code"] == "unsupported_media_type"


def test_unknown_route_and_method_are_problems(client: FlaskClient) -> None:
    assert client.get("/nope").json["code"] == "not_found"
    assert client.delete("/plans").json["code"] == "method_not_allowed"


def test_oversized_body_is_refused(client: FlaskClient) -> None:
    response = client.post("/quotes", data="x" * 100_000,
                           headers={**auth(ALICE), "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json["code"] == "payload_too_large"


def test_errors_carry_the_request_id(client: FlaskClient) -> None:
    response = client.post("/quotes", json={}, headers={**auth(ALICE), "X-Request-Id": "req-123"})
    assert response.headers["X-Request-Id"] == "req-123"
    assert response.json["instance"] == "req-123"


def test_unexpected_errors_hide_the_stack_trace(app: Flask, client: FlaskClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from services.checkout.usecases import quotes

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(quotes, "create_quote", boom)
    response = quote(client)
    assert response.status_code == 500 and response.json["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


ACCOUNT = {"company": "Acme Corp", "email": "billing@acme.test", "country": "us",
           "address_line1": "1 Main St", "city": "Springfield", "postal_code": "12345"}


def test_billing_account_create_and_replace(client: FlaskClient, app: Flask) -> None:
    assert client.get("/billing-account", headers=auth(FRANK)).json["code"] == "billing_account_missing"
    created = client.put("/billing-account", json=ACCOUNT, headers=auth(FRANK))
    assert created.status_code == 200, created.json
    assert created.json["country"] == "US" and created.json["cards"] == []
    again = client.put("/billing-account", json={**ACCOUNT, "company": "Acme Two"}, headers=auth(FRANK))
    assert again.json["company"] == "Acme Two" and again.json["id"] == created.json["id"]
    assert "billing_account_saved" in steps(app)


@pytest.mark.parametrize("change", [{"country": "USA"}, {"email": "nope"}, {"company": ""},
                                    {"postal_code": "x" * 21}])
def test_billing_account_validation_writes_nothing(client: FlaskClient, app: Flask,
                                                   change: dict[str, str]) -> None:
    before = rows(app, BillingAccount)
    response = client.put("/billing-account", json={**ACCOUNT, **change}, headers=auth(FRANK))
    assert response.status_code == 422
    assert rows(app, BillingAccount) == before


def test_card_setup_needs_an_account_first(client: FlaskClient) -> None:
    response = client.post("/billing-account/card-setup", headers=auth(FRANK))
    assert response.status_code == 409 and response.json["code"] == "billing_account_missing"


def test_card_setup_with_stripe_down_is_a_clear_503(client: FlaskClient) -> None:
    client.put("/billing-account", json=ACCOUNT, headers=auth(FRANK))
    response = client.post("/billing-account/card-setup", headers=auth(FRANK))
    assert response.status_code == 503
    assert response.json["code"] == "payment_provider_unavailable"
    assert response.headers["Retry-After"] == "30"


def test_card_attempts_are_limited_per_client_address(client: FlaskClient, app: Flask) -> None:
    """A card tester with many accounts behind one address is stopped too."""
    app.extensions["checkout"].card_attempts = AttemptLimiter(
        "memory://", "3/minute", "100/minute", name="card-attempts", what="card attempts")
    for user in (FRANK, BOB, ALICE):
        client.put("/billing-account", json=ACCOUNT, headers=auth(user))
        assert client.post("/billing-account/card-setup", headers=auth(user)).status_code != 429
    limited = client.post("/billing-account/cards", json={"setup_intent_id": "seti_abc"},
                          headers=auth(OUTSIDER))
    assert limited.status_code == 429 and limited.json["code"] == "rate_limited"
    assert "card attempts" in limited.json["detail"]


def test_purchase_requires_idempotency_key(client: FlaskClient, app: Flask) -> None:
    response = client.post("/purchases", json={"namespace_id": ACME, "plan": "premium", "seats": 5},
                           headers=auth(ALICE))
    assert response.status_code == 400 and response.json["code"] == "idempotency_key_missing"
    too_long = client.post("/purchases", json={"namespace_id": ACME, "plan": "premium", "seats": 5},
                           headers={**auth(ALICE), "Idempotency-Key": "k" * 256})
    assert too_long.json["code"] == "idempotency_key_invalid"
    assert rows(app, Order) == 0


def test_only_owners_buy(client: FlaskClient, app: Flask) -> None:
    response = client.post("/purchases", json={"namespace_id": ACME, "plan": "premium", "seats": 5},
                           headers={**auth(FRANK), "Idempotency-Key": "k1"})
    assert response.status_code == 403 and response.json["code"] == "not_owner"
    assert rows(app, Order) == 0
    assert steps(app) == ["purchase_failed"]


def test_purchase_without_a_card_is_refused_and_key_is_reusable(client: FlaskClient, app: Flask) -> None:
    body = {"namespace_id": ACME, "plan": "premium", "seats": 5}
    headers = {**auth(ALICE), "Idempotency-Key": "k-nocard"}
    first = client.post("/purchases", json=body, headers=headers)
    assert first.status_code == 409 and first.json["code"] == "payment_method_missing"
    # Nothing happened, so the same key may be retried (and fails the same way, not as a replay).
    assert client.post("/purchases", json=body, headers=headers).json["code"] == "payment_method_missing"
    assert rows(app, Order) == 0


def test_members_read_the_subscription(client: FlaskClient) -> None:
    response = client.get(f"/namespaces/{GLOBEX}/subscription", headers=auth(BOB))
    assert response.status_code == 200
    assert response.json["plan"] == "premium" and response.json["seats"] == 5
    assert response.json["auto_renew"] is True


def test_entitlements_and_membership(client: FlaskClient) -> None:
    ent = client.get(f"/namespaces/{GLOBEX}/entitlements", headers=auth(BOB)).json
    assert ent["plan"] == "premium" and ent["seats"] == 5 and ent["billable_members"] == 4
    assert "epics" in ent["features"] and "security_dashboards" not in ent["features"]
    free = client.get(f"/namespaces/{ACME}/entitlements", headers=auth(FRANK)).json
    assert free["plan"] == "free" and free["paid_plan"] is None
    assert client.get(f"/namespaces/{GLOBEX}/entitlements", headers=auth(FRANK)).status_code == 404
    assert client.get(f"/namespaces/{ACME}/subscription", headers=auth(ALICE)).json["code"] == "no_subscription"


def test_my_namespaces_lists_roles(client: FlaskClient) -> None:
    mine = client.get("/namespaces", headers=auth(ALICE)).json
    assert [(n["path"], n["role"]) for n in mine] == [("acme", "owner"), ("acme/backend", "owner"),
                                                      ("globex", "owner")]


@pytest.mark.parametrize("path", ["/orders/9223372036854775808", "/orders/0", "/orders/-1",
                                  "/namespaces/99999999999999999999/entitlements"])
def test_out_of_range_ids_in_paths_are_404(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers=auth(ALICE))
    assert response.status_code == 404 and response.mimetype == PROBLEM


@pytest.mark.parametrize("field", ["namespace_id", "payment_method_id"])
def test_out_of_range_ids_in_bodies_are_validation_errors(client: FlaskClient, field: str) -> None:
    body = {"namespace_id": ACME, "plan": "premium", "seats": 5, field: 2**63}
    response = client.post("/purchases", json=body, headers={**auth(ALICE), "Idempotency-Key": "k"})
    assert response.status_code == 422 and field in response.json["errors"]["json"]


@pytest.mark.parametrize("change", [{"company": "Acme\u0000Corp"}, {"country": "US\n"},
                                    {"city": "Spring\nfield"}])
def test_control_characters_are_refused(client: FlaskClient, app: Flask, change: dict[str, str]) -> None:
    response = client.put("/billing-account", json={**ACCOUNT, **change}, headers=auth(FRANK))
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert rows(app, BillingAccount) == 1  # only the seeded one


def test_huge_orders_go_to_sales(client: FlaskClient) -> None:
    response = quote(client, plan="ultimate", seats=900)
    assert response.status_code == 422 and response.json["code"] == "order_too_large"


def test_orders_of_other_namespaces_are_not_found(client: FlaskClient, app: Flask) -> None:
    from datetime import date

    with Session(app.extensions["checkout"].ctx.engine) as s:
        s.add(Order(billing_account_id=1, namespace_id=GLOBEX, user_id=ALICE, plan="premium", seats=5,
                    currency="usd", subtotal=1, discount_total=0, total=1, lines=[], catalog_version="x",
                    term_start=date(2026, 1, 1), term_end=date(2027, 1, 1), status="failed",
                    created_at=app.extensions["checkout"].ctx.clock.now()))
        s.commit()
    outsider = client.get("/orders/1", headers=auth(FRANK))
    missing = client.get("/orders/2", headers=auth(FRANK))
    assert outsider.status_code == missing.status_code == 404
    assert outsider.json["code"] == missing.json["code"] == "order_not_found"
    assert "namespace" not in outsider.json["detail"]
    assert client.get("/orders/1", headers=auth(BOB)).json["status"] == "failed"
    not_owner = client.post("/orders/1/confirm", headers=auth(BOB))
    assert not_owner.status_code == 403 and not_owner.json["code"] == "not_owner"
