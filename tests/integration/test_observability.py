"""JSON logs with a request id that crosses services, Prometheus metrics, and no secrets in logs."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from services.common.logs import JsonFormatter, redact
from services.trials.adapters.models import OutboxMessage
from tests.support import auth


@pytest.fixture
def json_logs(caplog: pytest.LogCaptureFixture) -> list[dict]:
    caplog.set_level(logging.INFO)
    formatter = JsonFormatter("test")
    records: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(json.loads(formatter.format(record)))

    handler = Collect()
    logging.getLogger().addHandler(handler)
    yield records
    logging.getLogger().removeHandler(handler)


def test_every_request_is_logged_as_json_with_its_request_id(client, json_logs) -> None:
    client.post("/quotes", json={"namespace_id": 100, "plan": "premium", "seats": 1},
                headers={**auth(1), "X-Request-Id": "req-abc"})
    [line] = [r for r in json_logs if r["logger"] == "access"]
    assert line["request_id"] == "req-abc" and line["status"] == 422 and line["path"] == "/quotes"
    assert line["duration_ms"] >= 0 and line["service"] == "test"


def test_request_id_follows_a_trial_start_into_checkout_and_the_event(trials_app: Flask, json_logs) -> None:
    trials_app.test_client().post("/namespaces/200/trials", json={"kind": "ultimate"},
                                  headers={**auth(1), "X-Request-Id": "trace-42"})
    checkout_lines = [r for r in json_logs if r["logger"] == "access" and r["path"] == "/namespaces/200"]
    assert checkout_lines and all(r["request_id"] == "trace-42" for r in checkout_lines)
    with Session(trials_app.extensions["trials"].ctx.engine) as s:
        [payload] = s.scalars(select(OutboxMessage.payload)).all()
    assert payload["request_id"] == "trace-42"


def test_metrics_count_requests_funnel_steps_and_outbox_lag(client) -> None:
    client.post("/quotes", json={"namespace_id": 100, "plan": "premium", "seats": 3}, headers=auth(1))
    body = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/quotes",service="checkout",status="200"}' in body
    assert 'funnel_steps_total{service="checkout",step="plan_chosen",traffic="real"}' in body
    assert 'outbox_lag_seconds{service="checkout"} 0.0' in body
    assert 'outbox_pending_events{service="checkout"} 0.0' in body


@pytest.mark.parametrize("text", [
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijklmnop",
    "card 4242 4242 4242 4242 declined", "key sk_test_51Habc123", "secret whsec_abcDEF123",
    "client secret seti_123abc_secret_XYZ789",
])
def test_secrets_are_redacted_if_they_ever_reach_a_log_call(text: str) -> None:
    assert "[redacted]" in redact(text)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (text,), None)
    assert "[redacted]" in JsonFormatter("t").format(record)


def test_client_address_comes_from_the_ingress_only_when_configured(
        checkout_db_url: str, clock, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask import request

    from services.checkout.app import create_app
    from tests.conftest import make_settings

    seen = []
    for hops in ("0", "1"):
        monkeypatch.setenv("PROXY_FIX_X_FOR", hops)
        app = create_app(make_settings("checkout", checkout_db_url), clock)
        app.before_request(lambda: seen.append(request.remote_addr))
        app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"},
                              environ_base={"REMOTE_ADDR": "10.1.2.3"})
        app.extensions["checkout"].ctx.close()
    assert seen == ["10.1.2.3", "203.0.113.9"]


@pytest.fixture
def timed_client(app: Flask):
    """Checkout with SERVER_TIMING=on, as load tests and the benchmark run it."""
    ctx = app.extensions["service_context"]
    ctx.settings = ctx.settings.with_overrides(server_timing=True)
    return app.test_client()


def test_server_timing_is_off_unless_switched_on(client) -> None:
    quoted = client.post("/quotes", json={"namespace_id": 100, "plan": "premium", "seats": 3},
                         headers=auth(1))
    assert quoted.status_code == 200 and "Server-Timing" not in quoted.headers
    assert "Server-Timing" not in client.get("/healthz").headers


def _timing(response) -> dict[str, float]:
    parts = [p.strip().split(";dur=") for p in response.headers["Server-Timing"].split(",")]
    return {name: float(value) for name, value in parts}


def test_every_response_says_where_its_time_went(timed_client) -> None:
    client = timed_client
    quoted = _timing(client.post("/quotes", json={"namespace_id": 100, "plan": "premium", "seats": 3},
                                 headers=auth(1)))
    assert set(quoted) == {"db", "stripe", "app", "total"}
    assert quoted["db"] > 0 and quoted["stripe"] == 0
    assert abs(quoted["db"] + quoted["stripe"] + quoted["app"] - quoted["total"]) < 0.2
    health = _timing(client.get("/healthz"))
    assert health["db"] == 0 and health["total"] >= 0


def test_stripe_time_is_counted_apart(timed_client) -> None:
    client = timed_client
    # Card setup calls Stripe (unreachable here: the time spent trying still counts).
    client.put("/billing-account", json={"company": "A", "email": "a@b.co", "country": "US",
                                         "address_line1": "1 St", "city": "X", "postal_code": "1"},
               headers=auth(5))
    response = client.post("/billing-account/card-setup", headers=auth(5))
    assert response.status_code == 503 and _timing(response)["stripe"] > 0


# psycopg warns when the connection the server terminated is collected without close().
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_connection_the_database_dropped_costs_one_503_then_the_pool_is_fresh(
        app: Flask, client, postgres_only: None) -> None:
    """The pool does not ping before each request (a round trip each): a pooled
    connection that died (a database restart, a failover) fails the one request
    that meets it with a problem a client can retry, and the pool is replaced."""
    engine = app.extensions["checkout"].ctx.engine
    assert client.get("/namespaces/100", headers=auth(1)).status_code == 200  # a pooled connection
    with engine.connect() as conn:
        pids = [conn.connection.dbapi_connection.info.backend_pid]  # type: ignore[union-attr]
    with Session(create_engine(engine.url.render_as_string(hide_password=False))) as admin:
        for pid in pids:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.get_bind().dispose()  # type: ignore[union-attr]
    lost = client.get("/namespaces/100", headers=auth(1))
    assert lost.status_code == 503, lost.json
    assert lost.json["code"] == "database_unavailable" and lost.headers["Retry-After"] == "1"
    assert "Traceback" not in lost.get_data(as_text=True)
    assert client.get("/namespaces/100", headers=auth(1)).status_code == 200
