"""The growth dashboard: growth team only, the list and report pages, JSON, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from experiments.dashboard import create_app
from identity.sessions import SESSION_COOKIE
from services.common.config import ROOT, Settings
from tests.experiments.helpers import KEY, EventWriter, write_smb_experiment
from tests.support import TEST_SECRET, PayloadServer, auth, sqlite_url, start_session, token

GROWTH = auth(5, roles=("growth",))
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def make_app(database_url: str, payload: Path | None = None) -> Flask:
    settings = Settings(service="experiments", database_url=database_url, auth_secret=TEST_SECRET,
                        environment="test")
    if payload:
        settings = settings.with_overrides(growthbook_payload_file=str(payload))
    return create_app(settings)


@pytest.fixture
def app(store_url: str) -> Iterator[Flask]:
    flask_app = make_app(store_url)
    yield flask_app
    flask_app.extensions["experiments_store"].dispose()


@pytest.fixture
def client(app: Flask, writer: EventWriter) -> FlaskClient:
    write_smb_experiment(writer)
    return app.test_client()


def test_health_needs_no_token(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "service": "experiments"}


@pytest.mark.parametrize("path", ["/", f"/experiments/{KEY}", f"/experiments/{KEY}.json",
                                  f"/experiments/{KEY}.csv"])
def test_everything_else_needs_a_token(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers=JSON)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json is not None and response.json["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_browser_gets_a_sign_in_page(client: FlaskClient) -> None:
    response = client.get(f"/experiments/{KEY}", headers=HTML)
    page = response.get_data(as_text=True)
    assert response.status_code == 401 and response.mimetype == "text/html"
    assert "Sign in required" in page and f'href="/sign-in?next=/experiments/{KEY}">Sign in</a>' in page
    assert "Traceback" not in page


def test_a_token_without_the_growth_role_is_refused(client: FlaskClient) -> None:
    response = client.get("/", headers={**auth(5), **JSON})
    assert response.status_code == 403 and response.json is not None
    assert response.json["code"] == "growth_role_required"
    page = client.get("/", headers={**auth(5), **HTML})
    assert page.status_code == 403 and "Growth team only" in page.get_data(as_text=True)


def test_a_bad_token_is_refused(client: FlaskClient) -> None:
    response = client.get(f"/experiments/{KEY}.json", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json is not None
    assert response.json["code"] == "invalid_token"


@pytest.mark.parametrize("roles", [("growth",), ("admin",)])
def test_the_list_shows_status_and_exposures(client: FlaskClient, roles: tuple[str, ...]) -> None:
    response = client.get("/", headers=auth(5, roles=roles))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<a href="/experiments/{KEY}">SMB discount prompt on the checkout page</a>' in page
    assert page.count('<span class="badge running">running</span>') == 4
    assert "No prompt: <strong>10</strong>" in page and "Prompt: <strong>10</strong>" in page
    assert "Refresh data" in page
    # Health: the split, progress against the planned sample, days running.
    assert page.count('<span class="verdict unclear">OK</span>') == 4
    assert "of 24,123 per variation" in page and '<th scope="col">Days running</th>' in page


def test_the_report_leads_with_the_decision_and_downloads(client: FlaskClient) -> None:
    page = client.get(f"/experiments/{KEY}", headers=GROWTH).get_data(as_text=True)
    assert '<span class="verdict-badge keep-collecting">keep collecting</span>' in page
    assert "Sample progress against the plan" in page and "still inside their 14-day window" in page
    for panel in ("Primary metric: the verdict rests on this alone", "Revenue", "Guardrails: must not get worse"):
        assert f">{panel}</h2>" in page
    assert "measured per namespace, but this experiment randomises users" in page  # the unit of analysis
    assert "Time to convert: Revenue per exposed unit" in page and "<polyline" in page
    assert "Purchased</dt><dd>a `purchase_completed` event at or after the first exposure" in page
    assert f'href="/experiments/{KEY}.csv" download' in page
    csv_response = client.get(f"/experiments/{KEY}.csv", headers=GROWTH)
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    assert csv_response.headers["Content-Disposition"] == f'attachment; filename="{KEY}.csv"'
    assert csv_response.get_data(as_text=True).startswith("section,metric,label,role,variation")
    data = client.get(f"/experiments/{KEY}.json", headers=GROWTH).json
    assert data is not None and data["decision"]["verdicts"][0]["verdict"] == "keep collecting"
    assert data["decision"]["plan"]["primary"] == "revenue"
    assert client.get("/experiments/nope.csv", headers=GROWTH).json["code"] == "experiment_not_found"


def test_the_session_works_like_the_header(client: FlaskClient) -> None:
    start_session(client, 5, token(5, roles=("growth",)))
    assert client.get("/").status_code == 200


def test_the_report_page_is_the_html_report(client: FlaskClient) -> None:
    response = client.get(f"/experiments/{KEY}", headers=GROWTH)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "<h1>SMB discount prompt on the checkout page</h1>" in page
    assert "4 · 40.0%" in page and "6 · 60.0%" in page
    assert '<a href="/">&larr; All experiments</a>' in page and "Refresh data" in page
    assert "Content-Security-Policy" in response.headers and response.headers["Cache-Control"] == "no-store"
    # no-referrer would make browsers send `Origin: null` with the sign-out form
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_json_report(client: FlaskClient) -> None:
    response = client.get(f"/experiments/{KEY}.json", headers=GROWTH)
    assert response.status_code == 200 and response.json is not None
    assert [v["units"] for v in response.json["variations"]] == [10, 10]
    assert response.json["comparisons"][0]["uplift"] == pytest.approx(0.5)


def test_an_unknown_experiment_is_a_404_naming_the_known_ones(client: FlaskClient) -> None:
    response = client.get("/experiments/nope.json", headers=GROWTH)
    assert response.status_code == 404 and response.json is not None
    assert response.json["code"] == "experiment_not_found"
    assert "smb-discount-prompt" in response.json["detail"]
    page = client.get("/experiments/nope", headers={**GROWTH, **HTML})
    assert page.status_code == 404 and "Experiment not found" in page.get_data(as_text=True)


def test_unknown_paths_and_methods_are_problems_too(client: FlaskClient) -> None:
    assert client.get("/nowhere", headers={**GROWTH, **JSON}).json["code"] == "not_found"  # type: ignore[index]
    response = client.post("/", headers={**GROWTH, **JSON})
    assert response.status_code == 405 and response.json is not None
    assert response.json["code"] == "method_not_allowed"


def test_there_is_no_token_form_any_more(client: FlaskClient) -> None:
    assert client.post("/session", data={"token": token(5, roles=("growth",))}).status_code != 303
    # Signing in itself is the services' (tests/integration/test_oidc.py); no provider here.
    assert client.get("/sign-in", headers=JSON).json["code"] == "sign_in_unavailable"  # type: ignore[index]


def test_signing_out_ends_the_session(client: FlaskClient) -> None:
    start_session(client, 5, token(5, roles=("growth",)))
    signed_out = client.post("/sign-out", headers={"Origin": "http://localhost"})
    assert signed_out.status_code == 303 and signed_out.headers["Location"] == "/"
    assert f"{SESSION_COOKIE}=;" in signed_out.headers["Set-Cookie"]
    assert client.get("/", headers=JSON).status_code == 401


def test_another_site_can_not_sign_the_analyst_out(client: FlaskClient) -> None:
    start_session(client, 5, token(5, roles=("growth",)))
    forced = client.post("/sign-out", headers={"Origin": "https://evil.test", **JSON})
    assert forced.status_code == 403 and f"{SESSION_COOKIE}=;" not in forced.headers.get("Set-Cookie", "")
    assert client.get("/", headers=JSON).status_code != 401


def test_status_comes_from_the_payload(store_url: str, tmp_path: Path) -> None:
    payload = json.loads((ROOT / "experiments" / "payload.json").read_text())
    payload["features"]["checkout-default-seats"]["rules"][0]["coverage"] = 0
    del payload["features"]["duo-pro-upsell"]
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload))
    app = make_app(store_url, path)
    page = app.test_client().get("/", headers=GROWTH).get_data(as_text=True)
    app.extensions["experiments_store"].dispose()
    assert page.count('<span class="badge running">') == 2
    assert page.count('<span class="badge killed">') == 1 and page.count('<span class="badge stopped">') == 1


def test_an_unreadable_store_or_payload_is_a_503_without_details(tmp_path: Path) -> None:
    app = make_app(sqlite_url(tmp_path / "not-migrated.db"))
    response = app.test_client().get(f"/experiments/{KEY}.json", headers=GROWTH)
    app.extensions["experiments_store"].dispose()
    assert response.status_code == 503 and response.json is not None
    assert response.json["code"] == "store_unavailable" and "events" not in response.get_data(as_text=True)

    app = make_app(sqlite_url(tmp_path / "not-migrated.db"), tmp_path / "missing.json")
    response = app.test_client().get("/", headers={**GROWTH, **HTML})
    app.extensions["experiments_store"].dispose()
    assert response.status_code == 503 and "Experiment definitions unavailable" in response.get_data(as_text=True)


def test_with_a_growthbook_api_the_status_is_what_the_services_are_served(store_url: str) -> None:
    """The file says running; the API (what the services use) has the rule removed: stopped."""
    payload = json.loads((ROOT / "experiments" / "payload.json").read_text())
    payload["features"]["smb-discount-prompt"]["rules"] = []
    server = PayloadServer(payload)
    settings = Settings(service="experiments", database_url=store_url, auth_secret=TEST_SECRET,
                        environment="test", growthbook_api_host=server.url, growthbook_client_key="sdk-test")
    app = create_app(settings)
    try:
        client = app.test_client()

        def status() -> dict[str, str]:
            return {key: client.get(f"/experiments/{key}.json", headers=GROWTH).json["status"]
                    for key in ("smb-discount-prompt", "default-seats")}
        deadline = time.monotonic() + 10  # the background fetch swaps the payload in
        while status()["smb-discount-prompt"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status() == {"smb-discount-prompt": "stopped", "default-seats": "running"}
    finally:
        server.stop()
        app.extensions["experiments_store"].dispose()
