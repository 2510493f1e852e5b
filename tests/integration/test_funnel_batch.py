"""View-only funnel rows written in batches after the request (FUNNEL_BATCH_MS):
they arrive once flushed, a graceful stop loses none, a refused batch is
retried, and a full buffer slows the request down instead of dropping rows."""

from __future__ import annotations

import runpy
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Table, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from funnel.batch import FunnelBatcher
from funnel.metrics import FUNNEL_BATCH_FAILURES, FUNNEL_ROWS_DROPPED
from funnel.telemetry import FunnelEvent, Step, Traffic, row_of
from persistence.db import make_engine
from services.checkout.adapters.models import FunnelEventRow
from services.checkout.app import create_app
from services.common.clock import FixedClock
from services.common.config import ROOT, Settings
from tests.conftest import NOW, _seeded, make_settings
from tests.integration.test_telemetry import QUOTE, Recording, stored
from tests.support import auth

HOUR_MS = 3_600_000  # an interval the background thread never reaches during a test


def batched_app(db_url: str, clock: FixedClock, **overrides: Any) -> Flask:
    settings = make_settings("checkout", db_url).with_overrides(funnel_batch_ms=HOUR_MS, **overrides)
    return _seeded(create_app(settings, clock), clock)


@pytest.fixture
def batched(checkout_db_url: str, clock: FixedClock) -> Iterator[Flask]:
    app = batched_app(checkout_db_url, clock)
    yield app
    app.extensions["checkout"].ctx.close()


def test_a_quote_row_arrives_with_the_batch_and_is_forwarded_at_once(batched: Flask) -> None:
    ctx = batched.extensions["checkout"].ctx
    recorded = ctx.forwarder = Recording()
    assert batched.test_client().post("/quotes", json=QUOTE, headers=auth(1)).status_code == 200
    assert stored(batched) == [] and ctx.funnel_batch.waiting == 1
    assert [e.step for e in recorded.events] == [Step.PLAN_CHOSEN]  # PostHog does not wait for the batch
    assert ctx.funnel_batch.flush()
    [row] = stored(batched)
    assert (row.step, row.user_id, row.namespace_id, row.event_id) == (
        "plan_chosen", 1, 100, recorded.events[0].event_id)
    assert row.properties["total"] == 3 * 34800 and row.occurred_at == NOW


def test_a_refused_quote_buffers_nothing(batched: Flask) -> None:
    response = batched.test_client().post("/quotes", json={**QUOTE, "seats": 1, "namespace_id": 200},
                                          headers=auth(1))
    assert response.status_code == 422
    assert batched.extensions["checkout"].ctx.funnel_batch.waiting == 0


def test_only_view_only_steps_of_a_telemetry_only_transaction_wait(batched: Flask) -> None:
    ctx = batched.extensions["checkout"].ctx
    with ctx.uow() as uow:  # a step that changes state keeps its row in its transaction
        uow.track(Step.PLANS_VIEWED, user_id=1, namespace_id=None)
        uow.commit()
    with ctx.uow() as uow:
        uow.telemetry_only()
        uow.track(Step.EXPERIMENT_VIEWED, user_id=1, namespace_id=100, experiment="e")  # with its exposure
        uow.track(Step.PURCHASE_COMPLETED, user_id=1, namespace_id=100)  # never batched
        uow.track(Step.PLANS_VIEWED, user_id=1, namespace_id=100)
        uow.commit()
    assert [r.step for r in stored(batched)] == ["plans_viewed", "experiment_viewed", "purchase_completed"]
    assert ctx.funnel_batch.waiting == 1
    with ctx.uow() as uow:  # rolled back: nothing buffered
        uow.telemetry_only()
        uow.track(Step.PLANS_VIEWED, user_id=1, namespace_id=100)
    assert ctx.funnel_batch.waiting == 1


def test_a_view_only_transaction_that_writes_nothing_skips_the_relaxed_commit_on_postgres(
        postgres_only: None, batched: Flask) -> None:
    ctx = batched.extensions["checkout"].ctx
    show = text("SHOW synchronous_commit")
    with ctx.uow() as uow:
        uow.telemetry_only()
        uow.track(Step.PLANS_VIEWED, user_id=1, namespace_id=100)  # buffered: no write, no setting sent
        assert uow.session.scalar(show) == "on"
        uow.track(Step.EXPERIMENT_VIEWED, user_id=1, namespace_id=100)  # written here: not waiting for disk
        assert uow.session.scalar(show) == "off"
        uow.commit()


def test_a_graceful_stop_writes_every_waiting_row(checkout_db_url: str, clock: FixedClock) -> None:
    app = batched_app(checkout_db_url, clock)
    client = app.test_client()
    for seats in range(3, 8):
        assert client.post("/quotes", json={**QUOTE, "seats": seats}, headers=auth(1)).status_code == 200
    ctx = app.extensions["checkout"].ctx
    ctx.close()
    chosen = sorted(r.properties["seats"] for r in stored(app))
    ctx.engine.dispose()  # reading opened a connection again
    assert chosen == [3, 4, 5, 6, 7]


def test_gunicorns_worker_exit_writes_every_waiting_row(checkout_db_url: str, clock: FixedClock) -> None:
    app = batched_app(checkout_db_url, clock)
    assert app.test_client().post("/quotes", json=QUOTE, headers=auth(1)).status_code == 200
    hooks = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    hooks["worker_exit"](None, None)  # what a worker runs on SIGTERM or max_requests recycling
    assert [r.step for r in stored(app)] == ["plan_chosen"]
    app.extensions["checkout"].ctx.close()


# --- the batcher on its own -------------------------------------------------------------
@pytest.fixture
def engine(checkout_db_url: str) -> Iterator[Engine]:
    engine = make_engine(checkout_db_url)
    yield engine
    engine.dispose()


def table() -> Table:
    return FunnelEventRow.__table__  # type: ignore[return-value]


def row(**properties: Any) -> dict[str, Any]:
    return row_of("checkout", FunnelEvent(step=Step.PLANS_VIEWED, user_id=1, namespace_id=100, occurred_at=NOW,
                                          properties=properties, experiments={"e": 1}, traffic=Traffic.DEMO))


def count(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(FunnelEventRow)) or 0


def test_a_batch_is_one_insert_of_every_waiting_row(engine: Engine) -> None:
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=3600, max_rows=100)
    for n in range(10):
        batcher.add(row(n=n))
    assert count(engine) == 0
    assert batcher.flush() and batcher.waiting == 0
    with Session(engine) as s:
        rows = list(s.scalars(select(FunnelEventRow).order_by(FunnelEventRow.id)))
    assert [r.properties["n"] for r in rows] == list(range(10))
    assert (rows[0].experiments, rows[0].traffic, rows[0].occurred_at) == ({"e": 1}, "demo", NOW)
    batcher.close()


def test_batches_of_any_size_are_one_statement_so_a_worker_keeps_one_compiled_form(engine: Engine) -> None:
    """Each size of a many-VALUES INSERT was its own statement, each kept in SQLAlchemy's
    cache: a worker's memory grew with every batch size it met (make bench, trials)."""
    statements: set[str] = set()

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "INSERT" in statement.upper():
            statements.add(statement)

    event.listen(engine, "before_cursor_execute", seen)
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=3600, max_rows=100)
    for size in (1, 2, 7, 30, 11, 1):
        for n in range(size):
            batcher.add(row(n=n))
        assert batcher.flush()
    # One form for many rows, and on PostgreSQL another for a lone row (with RETURNING).
    assert count(engine) == 52 and len(statements) <= 2, statements
    batcher.close()


def test_the_thread_writes_on_its_interval(engine: Engine) -> None:
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=0.01, max_rows=100)
    batcher.add(row())
    deadline = time.monotonic() + 10
    while batcher.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count(engine) == 1
    batcher.close()


def test_a_refused_batch_keeps_its_rows_and_is_retried(engine: Engine) -> None:
    failures = FUNNEL_BATCH_FAILURES.labels("checkout")
    before = failures._value.get()
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=0.01, max_rows=100)
    with engine.begin() as conn:  # the database refuses: the table is not there
        conn.execute(text("ALTER TABLE funnel_events RENAME TO funnel_events_away"))
    try:
        batcher.add(row(n=1))
        batcher.add(row(n=2))
        deadline = time.monotonic() + 10
        while failures._value.get() - before < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert failures._value.get() - before >= 2 and batcher.waiting == 2  # retried, nothing lost
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE funnel_events_away RENAME TO funnel_events"))
    deadline = time.monotonic() + 10
    while batcher.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count(engine) == 2
    batcher.close()


def test_a_retried_batch_that_had_reached_the_database_stores_nothing_twice(engine: Engine) -> None:
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=3600, max_rows=100)
    same = row()
    batcher.add(same)
    assert batcher.flush()
    batcher.add(same)  # as if the commit's answer had been lost and the batch written again
    batcher.add(row())
    assert batcher.flush() and count(engine) == 2
    batcher.close()


def test_a_full_buffer_is_written_by_the_request_that_finds_it_full(engine: Engine) -> None:
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=3600, max_rows=3, wake_at=4)
    for n in range(3):
        batcher.add(row(n=n))
    assert count(engine) == 0 and batcher.waiting == 3
    batcher.add(row(n=3))  # back-pressure: this caller writes the three, then waits with its own
    assert count(engine) == 3 and batcher.waiting == 1
    batcher.close()
    assert count(engine) == 4


def test_a_full_buffer_the_database_refuses_drops_the_new_row_and_counts_it(engine: Engine) -> None:
    dropped = FUNNEL_ROWS_DROPPED.labels("checkout")
    before = dropped._value.get()
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=3600, max_rows=2, wake_at=3)
    batcher.add(row(n=0))
    batcher.add(row(n=1))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE funnel_events RENAME TO funnel_events_away"))
    try:
        batcher.add(row(n=2))
        assert dropped._value.get() - before == 1 and batcher.waiting == 2
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE funnel_events_away RENAME TO funnel_events"))
    batcher.close()
    assert count(engine) == 2


def test_rows_added_after_a_stop_are_written_at_once(engine: Engine) -> None:
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=3600, max_rows=100)
    batcher.close()
    batcher.add(row(event=str(uuid.uuid4())))
    assert count(engine) == 1 and batcher.waiting == 0


def test_production_batches_every_200_ms_unless_told_otherwise() -> None:
    assert Settings.from_env("checkout", {}).funnel_batch_ms == 0
    production = {"APP_ENV": "production", "AUTH_SECRET": "x" * 32, "OIDC_ISSUER": "https://id.example",
                  "OIDC_CLIENT_SECRET": "s" * 32}
    assert Settings.from_env("checkout", production).funnel_batch_ms == 200
    assert Settings.from_env("checkout", {**production, "FUNNEL_BATCH_MS": "0"}).funnel_batch_ms == 0
    assert Settings.from_env("checkout", {"FUNNEL_BATCH_MAX_ROWS": "50"}).funnel_batch_max_rows == 50


def test_a_stop_the_database_refuses_counts_what_it_gives_up(engine: Engine) -> None:
    dropped = FUNNEL_ROWS_DROPPED.labels("checkout")
    before = dropped._value.get()
    batcher = FunnelBatcher(engine, table(), "checkout", interval_seconds=3600, max_rows=100)
    batcher.add(row())
    batcher.add(row())
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE funnel_events RENAME TO funnel_events_away"))
    try:
        batcher.close()  # tries a few times, then says what it lost
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE funnel_events_away RENAME TO funnel_events"))
    assert dropped._value.get() - before == 2 and batcher.waiting == 0
