"""The Billing pages through Flask's test client: what each person sees, dates in
words, receipts, navigation, and refusals as pages."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from identity.sessions import SESSION_COOKIE
from services.checkout.adapters.models import BillingAccount, Order
from services.common.clock import FixedClock
from tests.support import start_session

ALICE, BOB, CAROL, OUTSIDER = 1, 2, 3, 77
ACME, GLOBEX = 100, 200
HTML = "text/html; charset=utf-8"


def signed_in(client: FlaskClient, user_id: int = ALICE) -> FlaskClient:
    return start_session(client, user_id)


def page(response: Any, status: int, *texts: str) -> str:
    assert response.status_code == status, response.data[:500]
    assert response.content_type == HTML and response.headers["Content-Security-Policy"]
    body = response.get_data(as_text=True)
    for text in texts:
        assert text in body, text
    return body


def test_the_owner_sees_plan_seats_renewal_in_words_and_can_manage(client: FlaskClient) -> None:
    body = page(signed_in(client).get(f"/billing/{GLOBEX}"), 200,
                "Billing for globex", "Premium plan", "January 25, 2026 to January 25, 2027",
                "Renews automatically on <strong>January 25, 2027</strong>", "$1,740.00",
                "Turn off automatic renewal", 'id="cards"', 'id="orders"', "It costs too much",
                "You can renew by hand from December 26, 2026")
    assert 'aria-current="page"' in body and ">Trials</a>" in body  # one navigation for all pages
    assert 'id="seats-bought">5<' in body and 'id="seats-in-use">4<' in body
    assert 'id="seats-max">4<' in body and 'id="seat-plot"' in body  # seats over the term, drawn
    assert "to 4 now (at most 4), against 5 seats bought." in body


def test_a_developer_reads_the_plan_and_seats_but_no_cards_or_orders(client: FlaskClient) -> None:
    body = page(signed_in(client, CAROL).get(f"/billing/{GLOBEX}"), 200, "Premium plan",
                "Only Owners and billing managers of globex see its cards and orders.")
    assert 'id="cards"' not in body and "Turn off automatic renewal" not in body


def test_outsiders_and_bad_ids_get_pages_not_json(client: FlaskClient) -> None:
    page(signed_in(client, OUTSIDER).get(f"/billing/{GLOBEX}"), 404, "Namespace not found")
    page(signed_in(client).get("/billing/abc"), 404)
    client.delete_cookie(SESSION_COOKIE)
    page(client.get(f"/billing/{GLOBEX}"), 401, "Sign in")


def test_the_list_links_each_namespace(client: FlaskClient) -> None:
    page(signed_in(client).get("/billing"), 200, "Billing for acme", "Billing for globex", "/billing/200")


def test_the_receipt_page_matches_the_receipt_mail(client: FlaskClient, app: Flask, clock: FixedClock) -> None:
    line = {"sku": "premium", "kind": "plan", "description": "Premium plan, 5 seats, 12 months",
            "quantity": 5, "unit_amount": 34800, "amount": 174000, "discount": 60000, "net": 114000}
    with Session(app.extensions["checkout"].ctx.engine) as s:
        account = s.scalar(select(BillingAccount))
        assert account is not None
        order = Order(billing_account_id=account.id, namespace_id=ACME, user_id=ALICE, plan="premium", seats=5,
                      currency="usd", subtotal=174000, discount_total=60000, total=114000, lines=[line],
                      catalog_version="1", discount_code="SMB2026", term_start=date(2026, 11, 21),
                      term_end=date(2027, 11, 21), status="completed", amount_charged=114000,
                      created_at=clock.now(), completed_at=clock.now())
        s.add(order)
        s.commit()
        order_id = order.id
    page(signed_in(client).get(f"/billing/{ACME}/orders/{order_id}"), 200,
         f"Receipt for order {order_id}", "Acme Corp", "Premium for acme, 5 seats", "Subtotal", "$1,740.00",
         "Discount (SMB2026)", "-$600.00", "Total charged", "$1,140.00",
         "November 21, 2026 to November 21, 2027", "Print")
    page(signed_in(client, CAROL).get(f"/billing/{ACME}/orders/{order_id}"), 404)
    page(signed_in(client).get(f"/billing/{GLOBEX}/orders/{order_id}"), 404, "Order not found")
    history = page(signed_in(client).get(f"/billing/{ACME}"), 200, "Premium plan, 5 seats, 12 months",
                   "Discount SMB2026: -$600.00")
    assert f"/billing/{ACME}/orders/{order_id}" in history


def test_the_confirmation_page_links_the_billing_page(client: FlaskClient, app: Flask, clock: FixedClock) -> None:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        account = s.scalar(select(BillingAccount))
        assert account is not None
        order = Order(billing_account_id=account.id, namespace_id=ACME, user_id=ALICE, plan="premium", seats=2,
                      currency="usd", subtotal=69600, discount_total=0, total=69600, lines=[],
                      catalog_version="1", term_start=date(2026, 11, 21), term_end=date(2027, 11, 21),
                      status="completed", amount_charged=69600, created_at=clock.now(), completed_at=clock.now())
        s.add(order)
        s.commit()
        order_id = order.id
    page(signed_in(client).get(f"/checkout/orders/{order_id}"), 200, f'href="/billing/{ACME}"',
         "Manage billing for acme")


def test_an_invitation_link_that_is_not_valid_is_a_page(client: FlaskClient) -> None:
    page(signed_in(client).get("/billing/invitation?token=not-a-real-token-at-all"), 404, "Invitation not valid")
    page(signed_in(client).get("/billing/invitation"), 404, "Invitation not valid")
