"""The pages through Flask's test client: what is served where, what a page
view costs (transactions, directory calls) and records, and bad input."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Gone

from identity.auth import issue_token
from identity.errors import AuthError
from identity.sessions import SESSION_COOKIE, caller_token, csrf_token, session_principal
from services.checkout.adapters.models import BillingAccount, FunnelEventRow, Order, PaymentMethod
from services.checkout.app import create_app
from services.common.clock import FixedClock, SystemClock
from services.common.web import current_principal
from services.trials.adapters.directory import NamespaceDirectory
from services.trials.adapters.models import FunnelEventRow as TrialsFunnelEventRow
from services.trials.domain.rules import Namespace
from tests.conftest import _seeded, make_settings
from tests.support import TEST_SECRET, auth, start_session, token

ALICE, BOB = 1, 2
ACME, ACME_BACKEND, GLOBEX = 100, 101, 200
HTML = "text/html; charset=utf-8"


def signed_in(client: FlaskClient, user_id: int = ALICE) -> FlaskClient:
    return start_session(client, user_id)


def funnel_steps(app: Flask, model: Any = FunnelEventRow) -> list[tuple[str, int | None]]:
    engine = (app.extensions.get("checkout") or app.extensions["trials"]).ctx.engine
    with Session(engine) as s:
        return [(step, ns) for step, ns in s.execute(select(model.step, model.namespace_id).order_by(model.id))]


def assert_page(response: Any, status: int, *texts: str) -> None:
    """An HTML page (not problem+json) with the pages' security headers."""
    assert response.status_code == status
    assert response.content_type == HTML
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = " ".join(html.unescape(response.get_data(as_text=True)).split())
    for text in texts:
        assert text in body


# --- signing in -------------------------------------------------------------------------------
@pytest.fixture
def production_app(checkout_db_url: str, clock: FixedClock) -> Iterator[Flask]:
    settings = make_settings("checkout", checkout_db_url).with_overrides(environment="production")
    flask_app = _seeded(create_app(settings, clock), clock)
    yield flask_app
    flask_app.extensions["checkout"].ctx.close()


def test_a_token_in_a_link_signs_nobody_in(client: FlaskClient) -> None:
    """The development sign-in link (a token in a URL: history, logs, and a link
    that signs a browser in to someone else's session) is gone: /sign-in only
    starts the provider's sign-in, here with no provider configured."""
    response = client.get(f"/sign-in?token={token(ALICE)}&next=/checkout",
                          headers={"Accept": "application/json"})
    assert (response.status_code, response.json["code"]) == (503, "sign_in_unavailable")
    assert_page(client.get("/checkout"), 401, "Please sign in to continue.")


def test_production_refuses_development_tokens_in_a_session_too(production_app: Flask) -> None:
    """Production accepts only the provider's tokens: an HS256 one in a (validly
    signed) session cookie reads as a session that ended."""
    response = signed_in(production_app.test_client()).get("/checkout")
    assert_page(response, 401, "Your session has ended; sign in again.")
    cookie = production_app.test_client().get("/checkout")
    assert "make run" not in cookie.get_data(as_text=True)  # no development hints


# --- sessions ---------------------------------------------------------------------------------
def test_the_csrf_token_is_taken_from_the_header_only(app: Flask) -> None:
    """A form field is never read: a form body is refused (415) before authentication."""
    client = signed_in(app.test_client())
    valid = csrf_token(TEST_SECRET, f"test-session-{ALICE}")
    cookie = {"Cookie": f"{SESSION_COOKIE}={client.get_cookie(SESSION_COOKIE).value}"}  # type: ignore[union-attr]
    verify = app.extensions["token_verifier"].verify
    with app.test_request_context("/quotes", method="POST", data={"csrf_token": valid}, headers=cookie):
        with pytest.raises(AuthError) as refused:
            session_principal(verify, TEST_SECRET, token(ALICE))
        assert refused.value.code == "csrf_failed"
    with app.test_request_context("/quotes", method="POST", headers={"X-CSRF-Token": valid, **cookie}):
        assert session_principal(verify, TEST_SECRET, token(ALICE)).user_id == ALICE
    form = client.post("/quotes", data={"csrf_token": valid})
    assert form.status_code == 415


def test_caller_token_is_the_token_current_principal_accepted(app: Flask) -> None:
    bearer, held = token(ALICE), token(BOB)
    client = start_session(app.test_client(), BOB, held)
    cookie = f"{SESSION_COOKIE}={client.get_cookie(SESSION_COOKIE).value}"  # type: ignore[union-attr]
    with app.test_request_context("/namespaces", headers={"Authorization": f"Bearer  {bearer} ",
                                                          "Cookie": cookie}):
        assert current_principal().user_id == ALICE
        assert caller_token() == g.caller_token == bearer
    with app.test_request_context("/namespaces", headers={"Cookie": cookie}):
        assert current_principal().user_id == BOB
        assert caller_token() == held


# --- the checkout page ----------------------------------------------------------------------
def _transactions(app: Flask, client: FlaskClient, url: str) -> tuple[Any, int, int]:
    engine = app.extensions["checkout"].ctx.engine
    begun: list[int] = []
    statements: list[str] = []

    def begin(conn: Any) -> None:
        begun.append(1)

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        statements.append(sql)

    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        response = client.get(url)
    finally:
        event.remove(engine, "begin", begin)
        event.remove(engine, "before_cursor_execute", statement)
    return response, len(begun), len([s for s in statements if not s.startswith(("BEGIN", "PRAGMA"))])


def test_the_checkout_page_is_one_transaction_and_records_plans_viewed_once(app: Flask,
                                                                            client: FlaskClient) -> None:
    signed_in(client).get("/checkout")  # warm: the person's variations are cached after a first request
    response, transactions, statements = _transactions(app, client, f"/checkout?namespace_id={ACME}")
    assert_page(response, 200, "Buy a subscription for acme", "acme is on Free today.",
                "Total today:", "$696.00")
    assert transactions == 1
    assert statements <= 8, statements  # was 4 transactions, 12 statements on SQLite (now 7)
    assert funnel_steps(app) == [("plans_viewed", ACME)]


@pytest.mark.parametrize("plan,checked,total", [("ultimate", "ultimate", "$2,376.00"),
                                                ("gold", "premium", "$696.00")])
def test_the_checkout_page_opens_on_the_plan_asked_for(client: FlaskClient, plan: str, checked: str,
                                                       total: str) -> None:
    """A trial's buy link asks for its plan; a plan that can not be bought is ignored."""
    response = signed_in(client).get(f"/checkout?namespace_id={ACME}&plan={plan}")
    assert_page(response, 200, total)
    assert f'value="{checked}" checked' in response.get_data(as_text=True)


def test_a_subgroup_page_view_records_nothing(app: Flask, client: FlaskClient) -> None:
    response = signed_in(client).get(f"/checkout?namespace_id={ACME_BACKEND}")
    assert_page(response, 422, "Not a top-level namespace",
                "Subscriptions are bought for top-level groups only; choose the parent group.")
    assert funnel_steps(app) == []


def test_only_owners_get_the_checkout_page(app: Flask, client: FlaskClient) -> None:
    response = signed_in(client, BOB).get(f"/checkout?namespace_id={GLOBEX}")
    assert_page(response, 403, "Owner role required", "Only Owners of globex can buy for it.")
    assert_page(client.get(f"/checkout?namespace_id={ACME}"), 404, "No namespace with id 100.")
    assert funnel_steps(app) == []


@pytest.mark.parametrize("raw,shown", [("abc", "abc"), ("", '""'), ("0", "0"), ("-5", "-5"),
                                       (str(2**63), str(2**63))])
def test_a_namespace_id_that_is_not_an_id_is_a_404_page(client: FlaskClient, raw: str, shown: str) -> None:
    response = signed_in(client).get("/checkout", query_string={"namespace_id": raw})
    assert_page(response, 404, "Namespace not found", f"No namespace with id {shown}.")


# --- growing a namespace: add seats, add Duo, buy packs ----------------------------------------
def test_the_add_seats_page_opens_with_a_quote_and_the_billing_form_without_a_saved_card(
        app: Flask, client: FlaskClient) -> None:
    signed_in(client).get("/checkout")  # warm: the person's variations are cached after a first request
    url = f"/checkout?namespace_id={GLOBEX}&mode=add-seats"
    response, transactions, _ = _transactions(app, client, url)
    assert_page(response, 200, "Add 1 seat to globex's Premium", "globex is on Premium with 5 seats today.",
                "Premium, 1 more seats, 65 of 365 days", "$61.97", "Pay $61.97", "Billing details")
    assert "Pay with" not in response.get_data(as_text=True)
    assert transactions == 2  # the page's facts, then its quote (with the funnel's steps)
    assert funnel_steps(app) == [("expansion_chosen", GLOBEX), ("expansion_quoted", GLOBEX)]


@pytest.mark.parametrize("exp_year,exp_month,offered", [(2026, 11, True), (2026, 10, False)])
def test_the_default_card_is_offered_until_it_expires(app: Flask, client: FlaskClient, exp_year: int,
                                                      exp_month: int, offered: bool) -> None:
    """A card is valid through its expiry month (the tests' clock: November 21, 2026)."""
    with Session(app.extensions["checkout"].ctx.engine) as s:
        account = s.scalars(select(BillingAccount)).one()
        s.add(PaymentMethod(billing_account_id=account.id, stripe_payment_method_id="pm_test", brand="visa",
                            last4="4242", exp_month=exp_month, exp_year=exp_year, is_default=True,
                            created_at=SystemClock().now()))
        s.commit()
    for url in (f"/checkout?namespace_id={ACME}", f"/checkout?namespace_id={GLOBEX}&mode=add-seats"):
        body = " ".join(html.unescape(signed_in(client).get(url).get_data(as_text=True)).split())
        saved = f"Your saved Visa card ending in 4242, expires {exp_month:02d}/{exp_year}"
        assert (saved in body) is offered
        assert ('<fieldset class="billing" hidden>' in body) is offered


@pytest.mark.parametrize("query,status,texts", [
    (f"namespace_id={ACME}&mode=add-seats", 404, ("has no active subscription to add to",)),
    (f"namespace_id={ACME}&mode=add-duo", 404, ("has no active subscription to add to",)),
    (f"namespace_id={ACME_BACKEND}&mode=buy-packs", 422, ("Not a top-level namespace",)),
    (f"namespace_id={GLOBEX}&mode=add-duo&sku=duo_enterprise", 422,
     ("GitLab Duo Enterprise needs Ultimate; globex has Premium.",)),
    (f"namespace_id={GLOBEX}&mode=add-duo&sku=gold", 422, ("Unknown add-on", "There is no add-on 'gold'.")),
    (f"namespace_id={GLOBEX}&mode=more-everything", 404, ("No such checkout", "mode=add-seats")),
])
def test_a_way_to_grow_that_does_not_apply_is_a_page_that_says_why(client: FlaskClient, query: str, status: int,
                                                                   texts: tuple[str, ...]) -> None:
    assert_page(signed_in(client).get(f"/checkout?{query}"), status, *texts)


def test_only_owners_get_a_page_to_grow(client: FlaskClient) -> None:
    response = signed_in(client, BOB).get(f"/checkout?namespace_id={GLOBEX}&mode=add-seats")
    assert_page(response, 403, "Only Owners of globex can buy for it.")


def test_the_picker_links_a_subscriber_to_growing(client: FlaskClient) -> None:
    body = html.unescape(signed_in(client).get("/checkout").get_data(as_text=True))
    assert f"/checkout?namespace_id={GLOBEX}&mode=add-seats" in body
    assert f"/checkout?namespace_id={GLOBEX}&mode=add-duo" in body
    assert f"/checkout?namespace_id={ACME}&mode=buy-packs" in body  # Free groups buy packs too
    assert f"/checkout?namespace_id={ACME}&mode=add-seats" not in body  # nothing to add seats to


# --- the order page -----------------------------------------------------------------------------
@pytest.mark.parametrize("order_id", ["abc", "0", "-1", str(2**63), "999"])
def test_an_order_page_for_a_bad_or_unknown_id_is_a_404_page(client: FlaskClient, order_id: str) -> None:
    assert_page(signed_in(client).get(f"/checkout/orders/{order_id}"), 404, "Order not found")


def _completed_order(app: Flask, plan: str, **fields: Any) -> int:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        account = s.scalars(select(BillingAccount)).first()
        assert account is not None
        order = Order(**{"billing_account_id": account.id, "namespace_id": GLOBEX, "user_id": ALICE, "plan": plan,
                         "seats": 5, "currency": "usd", "subtotal": 100000, "total": 100000,
                         "lines": [{"description": "Gold plan, 5 seats, 12 months", "amount": 100000}],
                         "catalog_version": "2020-01", "term_start": date(2026, 11, 21),
                         "term_end": date(2027, 11, 21), "status": "completed", "created_at": SystemClock().now(),
                         "completed_at": SystemClock().now(), **fields})
        s.add(order)
        s.commit()
        return order.id


def test_the_order_page_shows_a_plan_that_left_the_catalog_by_its_id(app: Flask, client: FlaskClient) -> None:
    order_id = _completed_order(app, "legacy_gold")
    response, transactions, _ = _transactions(app, signed_in(client), f"/checkout/orders/{order_id}")
    assert_page(response, 200, "Thank you! globex is on legacy_gold.", "$1,000.00",
                "November 21, 2026 to November 21, 2027", "Next renewal")
    assert transactions == 1
    assert_page(signed_in(client, 5).get(f"/checkout/orders/{order_id}"), 404, "Order not found")


def test_the_order_page_names_a_plan_in_the_catalog(app: Flask, client: FlaskClient) -> None:
    order_id = _completed_order(app, "premium")
    assert_page(signed_in(client).get(f"/checkout/orders/{order_id}"), 200,
                "Thank you! globex is on Premium.")


@pytest.mark.parametrize("line,mode", [
    ({"sku": "premium_seats", "kind": "seats"}, "mode=add-seats"),
    ({"sku": "duo_pro", "kind": "addon"}, "mode=add-duo&sku=duo_pro"),
    ({"sku": "storage", "kind": "pack"}, "mode=buy-packs"),
])
def test_an_expansion_not_completed_is_tried_again_in_its_mode(app: Flask, client: FlaskClient,
                                                               line: dict[str, str], mode: str) -> None:
    order_id = _completed_order(app, "premium", kind="expansion", status="failed", completed_at=None,
                                heading="Add 3 seats to globex's Premium",
                                lines=[{**line, "description": "3 more", "amount": 100000}])
    response = signed_in(client).get(f"/checkout/orders/{order_id}")
    assert_page(response, 200, "This order was not completed")
    assert f'href="/checkout?namespace_id={GLOBEX}&{mode}">Try again' in html.unescape(response.get_data(as_text=True))


def test_a_completed_expansion_says_what_was_bought(app: Flask, client: FlaskClient) -> None:
    order_id = _completed_order(app, "premium", kind="expansion", heading="Add 3 seats to globex's Premium",
                                lines=[{"sku": "premium_seats", "kind": "seats", "description": "3 more",
                                        "amount": 100000}])
    assert_page(signed_in(client).get(f"/checkout/orders/{order_id}"), 200,
                "Thank you! Your order for globex is complete.", "Add 3 seats to globex's Premium: done.",
                "Add seats", "Add GitLab Duo")


# --- sessions that ended, and errors --------------------------------------------------------------
def test_an_expired_or_foreign_cookie_asks_to_sign_in_again(client: FlaskClient) -> None:
    expired = issue_token(TEST_SECRET, ALICE, "user1@test", now=SystemClock().now() - timedelta(days=31),
                          ttl=timedelta(days=30))
    foreign = issue_token("another-secret-" * 3, ALICE, "user1@test", now=SystemClock().now())
    for held in (expired, "not-a-token", foreign):
        start_session(client, ALICE, held)
        response = client.get("/checkout")
        assert_page(response, 401, "Sign in needed", "Your session has ended; sign in again.")
        assert "bearer token" not in response.get_data(as_text=True)
    for cookie in ("not-a-session", token(ALICE)):  # not signed with our secret, or a bare token
        client.set_cookie(SESSION_COOKIE, cookie)
        assert_page(client.get("/checkout"), 401, "Your session has ended; sign in again.")
    client.delete_cookie(SESSION_COOKIE)
    assert_page(client.get("/checkout"), 401, "Please sign in to continue.")
    # The API keeps its own words.
    assert client.get("/namespaces", headers={"Authorization": f"Bearer {expired}"}).json["code"] == "token_expired"


def test_an_unexpected_error_in_a_page_is_an_html_page(app: Flask, client: FlaskClient,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from services.checkout.usecases import subscriptions

    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(subscriptions, "my_namespaces", broken)
    response = signed_in(client).get("/checkout")
    assert_page(response, 500, "Something went wrong on our side", response.headers["X-Request-Id"])
    assert "boom" not in response.get_data(as_text=True)

    def gone(*args: Any) -> None:
        raise Gone()

    monkeypatch.setattr(subscriptions, "my_namespaces", gone)
    assert_page(client.get("/checkout"), 410, "no longer available")


# --- the trials page --------------------------------------------------------------------------
class CountingDirectory:
    """The trials app's directory, counting the calls to checkout."""

    def __init__(self, inner: NamespaceDirectory) -> None:
        self.inner = inner
        self.calls: list[tuple[str, int | None]] = []

    def lookup(self, namespace_id: int, bearer_token: str) -> Namespace | None:
        self.calls.append(("lookup", namespace_id))
        return self.inner.lookup(namespace_id, bearer_token)


def test_the_trials_page_answers_from_the_read_model_without_asking_checkout(trials_app: Flask) -> None:
    client = trials_app.test_client()
    started = client.post(f"/namespaces/{GLOBEX}/trials", json={"kind": "ultimate"}, headers=auth(ALICE))
    assert started.status_code == 201
    directory = CountingDirectory(trials_app.extensions["trials"].directory)
    trials_app.extensions["trials"].directory = directory
    before = len(funnel_steps(trials_app, TrialsFunnelEventRow))

    response = signed_in(client).get("/trials")
    assert_page(response, 200, "Active: 60 days left, ends January 20, 2027.",
                "Trials are for top-level groups; start it on the parent group.")
    # Buying what a trial gives: the upgrade for Ultimate, the add-on's checkout for Duo.
    checkout_url = trials_app.extensions["trials"].ctx.settings.checkout_pages_url
    body = html.unescape(response.get_data(as_text=True))
    assert f'href="{checkout_url}/checkout?namespace_id={GLOBEX}&plan=ultimate"' in body
    assert f'href="{checkout_url}/checkout?namespace_id={GLOBEX}&mode=add-duo&sku=duo_pro"' in body
    owned = [ACME, ACME_BACKEND, GLOBEX]
    assert directory.calls == []  # the namespaces, roles and plans are trials' own (read model)
    checked = funnel_steps(trials_app, TrialsFunnelEventRow)[before:]
    assert checked == [("trial_eligibility_checked", ns) for ns in owned]


def test_the_trials_page_reads_the_trials_table_once_per_namespace(trials_app: Flask) -> None:
    engine = trials_app.extensions["trials"].ctx.engine
    reads: list[str] = []

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "FROM trials" in sql:
            reads.append(sql)

    client = signed_in(trials_app.test_client())
    client.get("/trials")  # warm the variations cache
    event.listen(engine, "before_cursor_execute", statement)
    try:
        assert client.get("/trials").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert len(reads) == 3

