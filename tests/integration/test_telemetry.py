"""Funnel telemetry: stored with the step, forwarded to PostHog after commit,
never for synthetic traffic, and never in the buyer's way."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from funnel.metrics import POSTHOG_SKIPPED
from funnel.telemetry import FunnelEvent, PostHogForwarder, Step, Traffic
from services.checkout.adapters.models import FunnelEventRow
from tests.support import auth


class Recording:
    def __init__(self) -> None:
        self.events: list[FunnelEvent] = []

    def forward(self, service: str, event: FunnelEvent) -> None:
        self.events.append(event)

    def shutdown(self) -> None:
        pass


@pytest.fixture
def recorded(app: Flask) -> Recording:
    recording = Recording()
    app.extensions["checkout"].ctx.forwarder = recording
    return recording


def stored(app: Flask) -> list[FunnelEventRow]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return list(s.scalars(select(FunnelEventRow).order_by(FunnelEventRow.id)))


QUOTE = {"namespace_id": 100, "plan": "premium", "seats": 3}


def test_step_is_stored_and_forwarded_after_commit(app: Flask, recorded: Recording) -> None:
    app.test_client().post("/quotes", json=QUOTE, headers=auth(1))
    [row] = stored(app)
    assert (row.step, row.user_id, row.namespace_id, row.traffic) == ("plan_chosen", 1, 100, "real")
    assert row.properties["seats"] == 3 and row.properties["total"] == 3 * 34800
    assert [e.event_id for e in recorded.events] == [row.event_id]


def test_a_failed_step_is_neither_stored_nor_forwarded(app: Flask, recorded: Recording) -> None:
    response = app.test_client().post("/quotes", json={**QUOTE, "seats": 1, "namespace_id": 200},
                                      headers=auth(1))
    assert response.status_code == 422
    assert stored(app) == [] and recorded.events == []


@pytest.mark.parametrize("header,roles,traffic,forwarded", [
    ("synthetic", ("synthetic",), "synthetic", False),
    ("demo", ("demo",), "demo", True),
    ("synthetic", (), "real", True),      # a real buyer can not hide from the analysis
    ("demo", ("synthetic",), "real", True),
    ("bogus", ("synthetic",), "real", True),
])
def test_traffic_source_is_marked_only_for_tokens_allowed_to(
        app: Flask, recorded: Recording, header: str, roles: tuple[str, ...], traffic: str,
        forwarded: bool) -> None:
    app.test_client().post("/quotes", json=QUOTE, headers={**auth(1, roles), "X-Traffic-Source": header})
    assert [r.traffic for r in stored(app)] == [traffic]
    assert bool(recorded.events) is forwarded


class _Capture(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        type(self).received.append({"path": self.path, "body": json.loads(raw)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": 1}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def posthog_host() -> Iterator[str]:
    _Capture.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_posthog_forwarder_sends_batches_with_feature_properties(posthog_host: str) -> None:
    forwarder = PostHogForwarder("phc_test", posthog_host)
    event = FunnelEvent(Step.PURCHASE_COMPLETED, 7, 100, datetime(2026, 11, 21, tzinfo=UTC),
                        {"plan": "premium"}, {"smb-prompt": "1"}, Traffic.REAL)
    forwarder.forward("checkout", event)
    forwarder.shutdown()  # flushes the queue
    batch = [e for r in _Capture.received for e in r["body"]["batch"]]
    assert [(e["event"], e["distinct_id"], e["uuid"]) for e in batch] == [
        ("purchase_completed", "7", event.event_id)]
    props = batch[0]["properties"]
    assert props["plan"] == "premium" and props["$feature/smb-prompt"] == "1"
    assert props["service"] == "checkout" and props["namespace_id"] == 100


def test_dead_posthog_host_changes_nothing_for_the_buyer(app: Flask) -> None:
    forwarder = PostHogForwarder("phc_test", "http://127.0.0.1:9")
    app.extensions["checkout"].ctx.forwarder = forwarder
    client = app.test_client()
    for _ in range(5):
        assert client.post("/quotes", json=QUOTE, headers=auth(1)).status_code == 200
    assert len(stored(app)) == 5
    forwarder.shutdown()


def test_a_failing_posthog_pauses_forwarding_and_counts_what_it_skipped() -> None:
    forwarder = PostHogForwarder("phc_test", "http://127.0.0.1:9")
    event = FunnelEvent(Step.PLAN_CHOSEN, 7, 100, datetime(2026, 11, 21, tzinfo=UTC))
    forwarder.forward("pause-test", event)
    forwarder._client.flush()  # the batch fails: nothing listens on port 9
    skipped = POSTHOG_SKIPPED.labels("pause-test")
    before = skipped._value.get()
    forwarder.forward("pause-test", event)
    forwarder.forward("pause-test", event)
    assert skipped._value.get() - before == 2
    forwarder.shutdown()


def test_a_telemetry_only_transaction_does_not_wait_for_the_disk_on_postgres(postgres_only: None,
                                                                             app: Flask) -> None:
    ctx = app.extensions["checkout"].ctx
    show = text("SHOW synchronous_commit")
    with ctx.uow() as uow:
        uow.telemetry_only()
        assert uow.session.scalar(show) == "off"
        uow.commit()
    with ctx.uow() as uow:  # SET LOCAL: the next transaction, a purchase say, waits again
        assert uow.session.scalar(show) == "on"
