"""Bad input gets a 4xx problem with a stable code, never a 500 (each case below
was a 500 once), and leaves nothing written. Body parsing comes before
authentication, so the first ones need no token."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from services.common.clock import FixedClock
from services.common.input_guard import MAX_JSON_DEPTH
from services.common.problems import PROBLEM_JSON
from services.notifications.app import create_app as create_notifications_app
from tests.conftest import NOW, make_settings
from tests.support import LiveServer, auth

ADMIN = auth(9, roles=("admin",))
JSON = {"Content-Type": "application/json"}
ACCOUNT = {"company": "Acme Corp", "email": "billing@acme.test", "country": "US",
           "address_line1": "1 Main St", "city": "Springfield", "postal_code": "12345"}
CAMPAIGN = {"name": "Spring", "kind": "shared", "code": "spring-26", "discount_type": "percent",
            "value": 25, "applies_to": ["premium"]}


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the problem+json `code` with `status` (works for Flask and requests)."""
    content_type = response.headers["Content-Type"]
    body = response.json if isinstance(response.json, dict) else response.json()
    assert (response.status_code, body.get("code")) == (status, code), body
    assert content_type.startswith(PROBLEM_JSON)
    return body


@pytest.fixture
def notifications(fresh_db: Callable[[str], str], clock: FixedClock) -> Iterator[FlaskClient]:
    flask_app = create_notifications_app(make_settings("notifications", fresh_db("notifications")), clock)
    yield flask_app.test_client()
    flask_app.extensions["service_context"].close()


def campaign_names(client: FlaskClient) -> list[str]:
    return [c["name"] for c in client.get("/admin/campaigns", headers=ADMIN).json]


# --- 1. JSON nested 1,000 deep: a RecursionError ------------------------------------------
def test_json_nested_a_thousand_deep_is_refused_before_sign_in(client: FlaskClient) -> None:
    body = "[" * 1000 + "]" * 1000  # 2 KB
    problem(client.post("/quotes", data=body, headers=JSON), 400, "json_too_deep")


def test_json_just_past_the_depth_limit_is_refused_and_at_it_reaches_validation(client: FlaskClient) -> None:
    def nested(levels: int) -> str:
        return '{"namespace_id": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    problem(client.post("/quotes", data=nested(MAX_JSON_DEPTH + 1), headers={**JSON, **auth(1)}),
            400, "json_too_deep")
    problem(client.post("/quotes", data=nested(MAX_JSON_DEPTH), headers={**JSON, **auth(1)}),
            422, "validation_failed")


# --- 2. an integer of 5,000 digits: Python's digit limit ----------------------------------
def test_an_integer_of_five_thousand_digits_is_refused_before_sign_in(client: FlaskClient) -> None:
    body = '{"namespace_id": 100, "plan": "premium", "seats": ' + "9" * 5000 + "}"
    problem(client.post("/quotes", data=body, headers=JSON), 422, "number_too_large")


def test_integers_beyond_a_field_s_range_still_get_the_field_s_error(client: FlaskClient) -> None:
    body = {"namespace_id": 100, "plan": "premium", "seats": 10**25}
    refused = problem(client.post("/quotes", json=body, headers=auth(1)), 422, "validation_failed")
    assert "seats" in refused["errors"]["json"]


# --- 3. a lone surrogate in a text field: the database write failed ------------------------
@pytest.mark.parametrize("field", ["company", "city", "address_line2"])
def test_a_lone_surrogate_in_the_billing_account_is_refused_and_nothing_saved(
        client: FlaskClient, field: str) -> None:
    body = json.dumps({**ACCOUNT, field: "Acme \ud800"})  # json.dumps writes it as the escape \ud800
    assert "\\ud800" in body
    problem(client.put("/billing-account", data=body, headers={**JSON, **auth(5)}), 422, "invalid_text")
    problem(client.get("/billing-account", headers=auth(5)), 409, "billing_account_missing")


def test_a_lone_surrogate_in_a_campaign_name_or_a_key_is_refused(client: FlaskClient) -> None:
    before = campaign_names(client)
    for body in ({**CAMPAIGN, "name": "Spring \udfff"}, {**CAMPAIGN, "code": "\ud800x"},
                 {**CAMPAIGN, "\ud800": 1}):
        problem(client.post("/admin/campaigns", data=json.dumps(body), headers={**JSON, **ADMIN}),
                422, "invalid_text")
    assert campaign_names(client) == before


def test_characters_beyond_the_basic_plane_are_fine(client: FlaskClient) -> None:
    body = json.dumps({**ACCOUNT, "company": "Acme \U0001f680"})  # written as a surrogate pair
    saved = client.put("/billing-account", data=body, headers={**JSON, **auth(5)})
    assert saved.status_code == 200 and saved.json["company"] == "Acme \U0001f680"


# --- 4. an impossible date in the notifications preview --------------------------------------
def test_an_impossible_date_in_a_preview_is_a_field_error(notifications: FlaskClient) -> None:
    response = notifications.get("/notifications/preview?template=renewal_reminder&renewal_date=2027-02-30",
                                 headers=ADMIN)
    refused = problem(response, 422, "validation_failed")
    assert list(refused["errors"]["query"]) == ["renewal_date"]
    fine = notifications.get("/notifications/preview?template=renewal_reminder&renewal_date=2028-02-29",
                             headers=ADMIN)
    assert fine.status_code == 200 and "February 29, 2028" in fine.json["text"]


def test_an_event_with_an_impossible_date_is_refused_for_the_publisher_to_fix(
        notifications: FlaskClient) -> None:
    event = {"id": "evt-date", "topic": "subscription.expired", "source": "checkout",
             "occurred_at": NOW.isoformat(),
             "payload": {"subscription_id": 9, "email": "billing@acme.test", "namespace_path": "acme",
                         "plan": "premium", "term_end": "2027-02-30"}}
    refused = problem(notifications.post("/internal/events", json=event,
                                         headers=auth(0, roles=("service",))), 422, "invalid_event")
    assert "term_end" in refused["detail"]


# --- 5. a chunked body skipped the content-type and NUL checks --------------------------------
def chunked(body: bytes) -> Iterator[bytes]:
    """requests sends a generator as `Transfer-Encoding: chunked`, with no Content-Length."""
    yield body[:10]
    yield body[10:]


def test_a_chunked_body_gets_the_same_checks(checkout_server: LiveServer, app: Flask) -> None:
    url = f"{checkout_server.url}/admin/campaigns"
    before = campaign_names(app.test_client())
    as_text = requests.post(url, data=chunked(json.dumps(CAMPAIGN).encode()),
                            headers={**ADMIN, "Content-Type": "text/plain"}, timeout=10)
    assert as_text.request.headers["Transfer-Encoding"] == "chunked"
    problem(as_text, 415, "unsupported_media_type")
    nul = requests.post(url, data=chunked(json.dumps({**CAMPAIGN, "code": "SPRING\u0000"}).encode()),
                        headers={**ADMIN, **JSON}, timeout=10)
    problem(nul, 422, "invalid_text")
    deep = requests.post(url, data=chunked(b"[" * 1000 + b"]" * 1000), headers=JSON, timeout=10)
    problem(deep, 400, "json_too_deep")
    assert campaign_names(app.test_client()) == before
    created = requests.post(url, data=chunked(json.dumps(CAMPAIGN).encode()), headers={**ADMIN, **JSON},
                            timeout=10)
    assert created.status_code == 201 and campaign_names(app.test_client()) == [*before, "Spring"]


# --- and the rest of the guard ---------------------------------------------------------------
def test_nul_in_a_query_string_is_refused(notifications: FlaskClient) -> None:
    problem(notifications.get("/notifications?recipient=a%00b", headers=ADMIN), 422, "invalid_text")


def test_a_body_that_is_not_utf8_json_is_malformed(client: FlaskClient) -> None:
    problem(client.post("/quotes", data=b'{"plan": "\xff"}', headers={**JSON, **auth(1)}), 400, "malformed_json")


def test_a_method_not_allowed_says_which_are(client: FlaskClient) -> None:
    refused = client.delete("/billing-account", headers=auth(1))
    problem(refused, 405, "method_not_allowed")
    assert set(refused.headers["Allow"].split(", ")) >= {"GET", "PUT"}
