"""Headers every service's responses carry: `nosniff` on all of them, and
`no-store` on every answer to someone signed in (it is about them)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support import auth, start_session

ALICE = 1
SIGNED_IN = [
    ("GET", "/billing-account"), ("GET", "/namespaces"), ("GET", "/namespaces/100/subscription"),
    ("GET", "/orders/999"), ("GET", "/admin/campaigns"), ("GET", "/plans"), ("DELETE", "/namespaces"),
]


@pytest.mark.parametrize("method,path", SIGNED_IN)
def test_answers_to_a_signed_in_caller_are_never_stored(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, headers=auth(ALICE, roles=("admin",)))
    assert response.headers["Cache-Control"] == "no-store", response.status_code
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_with_the_session_cookie_are_never_stored(client: FlaskClient) -> None:
    page = start_session(client, ALICE).get("/checkout")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/namespaces").headers["Cache-Control"] == "no-store"  # the API, called by the page


@pytest.mark.parametrize("path", ["/plans", "/healthz", "/openapi.json", "/nope", "/billing-account"])
def test_every_response_says_nosniff_and_public_ones_may_be_cached(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_the_other_services_say_so_too(trials_app: Flask) -> None:
    response = trials_app.test_client().get("/namespaces/100/trials", headers=auth(ALICE))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
