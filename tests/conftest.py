"""Fixtures: every database test runs on SQLite and, with TEST_DATABASE_URL, on
PostgreSQL; end-to-end tests add a real localstripe and a live HTTP server."""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from contracts import events
from identity.auth import service_token
from messaging import jobs
from messaging.relay import relay_once
from messaging.routing import subscribers
from persistence.db import make_engine
from services.checkout.app import create_app
from services.checkout.config import CheckoutSettings
from services.checkout.runtime import Checkout
from services.checkout.seed import seed
from services.checkout.snapshot import publish as publish_snapshots
from services.common import outbox
from services.common.clock import FixedClock
from services.common.config import Settings
from services.common.migrate import SERVICES, upgrade
from tests.support import (
    PG_SKIP_REASON,
    TEST_SECRET,
    WEBHOOK_SECRET,
    LiveServer,
    LocalStripe,
    pg_base_url,
    postgres_database,
    sqlite_url,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def event_contracts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The producers' half of the event contracts: every payload any test's code
    publishes meets its topic's contract (contracts/events.py)."""
    if request.node.get_closest_marker("any_event_payload"):
        yield
        return
    broken: list[str] = []
    publish = outbox.publish

    def checked(session: Session, model: type[outbox.OutboxMixin], topic: str, payload: dict[str, Any],
                occurred_at: datetime) -> str:
        broken.extend(f"{topic}: {problem}" for problem in events.violations(topic, payload))
        return publish(session, model, topic, payload, occurred_at)

    monkeypatch.setattr(outbox, "publish", checked)
    yield
    assert not broken, "payloads that break their topic's contract:\n" + "\n".join(broken)


# --- databases -----------------------------------------------------------------
def _metadata(service: str) -> MetaData:
    return importlib.import_module(f"services.{service}.adapters.models").Base.metadata


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each service's schema migrated once; each test copies the file."""
    folder = tmp_path_factory.mktemp("db")
    templates = {}
    for service in SERVICES:
        templates[service] = folder / f"{service}-template.db"
        upgrade(service, sqlite_url(templates[service]))
    return templates


@pytest.fixture(scope="session")
def postgres_urls() -> Iterator[dict[str, str]]:
    if not pg_base_url():
        pytest.skip(PG_SKIP_REASON)
    with ExitStack() as stack:
        urls = {service: stack.enter_context(postgres_database(service)) for service in SERVICES}
        for service, url in urls.items():
            upgrade(service, url)
        yield urls


def _truncate_all(url: str, metadata: MetaData) -> None:
    """Empty every table. A late write of the previous test (a Stripe webhook that
    localstripe delivered after it ended) can deadlock with TRUNCATE; PostgreSQL
    then cancels one side, and emptying again after it has passed is safe."""
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    try:
        for attempt in range(5):
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                return
            except OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """A clean, migrated database for a service, on this test's backend."""

    def make(service: str) -> str:
        if backend == "sqlite":
            path = tmp_path / f"{service}.db"
            shutil.copy(request.getfixturevalue("sqlite_templates")[service], path)
            return sqlite_url(path)
        url = request.getfixturevalue("postgres_urls")[service]
        _truncate_all(url, _metadata(service))
        return str(url)

    return make


@pytest.fixture
def checkout_db_url(fresh_db: Callable[[str], str]) -> str:
    return fresh_db("checkout")


@pytest.fixture
def trials_db_url(fresh_db: Callable[[str], str]) -> str:
    return fresh_db("trials")


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("concurrency guarantees are tested on PostgreSQL (SQLite runs one writer)")


# --- clock, settings, apps -------------------------------------------------------
@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


# Tests of other behaviour run with every flag off (no experiment changes what
# they assert); tests/experiments and tests/integration/test_flags.py use the real payload.
FLAGS_OFF = str(Path(__file__).parent / "data" / "flags-off.json")


def make_settings(service: str, database_url: str, stripe_base: str | None = None,
                  payload_file: str = FLAGS_OFF) -> Settings:
    # Every simulated person comes from 127.0.0.1, as under `make run`, which raises
    # the per-client card limit the same way; the per-account limit stays as shipped.
    shared = Settings(service=service, database_url=database_url, auth_secret=TEST_SECRET, environment="test",
                      growthbook_payload_file=payload_file)
    if service != "checkout":
        return shared
    return CheckoutSettings.of(shared).with_overrides(
        stripe_api_base=stripe_base or "http://127.0.0.1:9", stripe_timeout_seconds=5,
        stripe_webhook_secret=WEBHOOK_SECRET, card_attempts_per_client="600/minute")


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    server = LocalStripe()
    yield server
    server.stop()


def _seeded(app: Flask, clock: FixedClock) -> Flask:
    """The demo data, its events relayed as `make run`'s worker does at once, to
    nobody here (`join_trials` brings trials in later): the outbox starts empty."""
    checkout: Checkout = app.extensions["checkout"]
    seed(checkout.ctx)
    relay_once(checkout.ctx, [], token="")
    return app


@pytest.fixture
def app(checkout_db_url: str, clock: FixedClock) -> Iterator[Flask]:
    """Checkout with a Stripe that is not there (for tests that never reach it)."""
    flask_app = _seeded(create_app(make_settings("checkout", checkout_db_url), clock), clock)
    yield flask_app
    flask_app.extensions["checkout"].ctx.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def stripe_app(checkout_db_url: str, clock: FixedClock, localstripe: LocalStripe) -> Iterator[Flask]:
    """Checkout wired to the real localstripe."""
    settings = make_settings("checkout", checkout_db_url, localstripe.url)
    flask_app = _seeded(create_app(settings, clock), clock)
    yield flask_app
    flask_app.extensions["checkout"].ctx.close()


@pytest.fixture
def live_checkout(stripe_app: Flask, localstripe: LocalStripe) -> Iterator[LiveServer]:
    """Checkout on a real socket, receiving localstripe's webhooks."""
    server = LiveServer(stripe_app)
    localstripe.register_webhook("checkout", f"{server.url}/stripe/webhooks", WEBHOOK_SECRET)
    yield server
    server.stop()


@pytest.fixture
def checkout_server(app: Flask) -> Iterator[LiveServer]:
    """Checkout on a real socket (no Stripe), as the other services reach it."""
    server = LiveServer(app)
    yield server
    server.stop()


def trials_settings(db_url: str, checkout_url: str) -> Settings:
    settings = make_settings("trials", db_url)
    return settings.with_overrides(service_urls={**settings.service_urls, "checkout": checkout_url},
                                   checkout_pages_url=checkout_url)


def relay_to_trials(checkout: Flask, trials_url: str) -> int:
    """One pass of checkout's relay (as its worker makes every second) to trials at
    `trials_url`, with the topics messaging/routing.py routes there."""
    ctx = checkout.extensions["checkout"].ctx
    settings = ctx.settings.with_overrides(service_urls={**ctx.settings.service_urls, "trials": trials_url})
    to_trials = [s for s in subscribers("checkout", settings) if s.name == "trials"]
    return relay_once(ctx, to_trials, token=lambda audience: service_token(ctx.settings, audience))


def worker_interval() -> float:
    """The seconds between a worker's passes when started with no --interval."""
    parser = argparse.ArgumentParser()
    jobs.add_loop_arguments(parser)
    return float(parser.parse_args([]).interval)


@contextmanager
def relaying(checkout: Flask, trials_url: str) -> Iterator[float]:
    """Checkout's relay to trials running meanwhile, as its worker runs it: a pass
    every `worker_interval()` seconds (yielded)."""
    interval, stop = worker_interval(), threading.Event()
    relay = jobs.Guarded("checkout relay", lambda: str(relay_to_trials(checkout, trials_url)))

    def loop() -> None:
        while not stop.is_set():
            relay()
            stop.wait(interval)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield interval
    finally:
        stop.set()
        thread.join(timeout=30)


def join_trials(checkout: Flask, trials_url: str) -> None:
    """Trials starts listening after checkout's demo events went out to nobody
    (`_seeded`): checkout republishes its namespaces' facts (python -m
    services.checkout.snapshot) and its relay brings them to trials' read model."""
    publish_snapshots(checkout.extensions["checkout"].ctx)
    while relay_to_trials(checkout, trials_url):
        pass


@pytest.fixture
def trials_server_app(trials_db_url: str, clock: FixedClock, app: Flask,
                      checkout_server: LiveServer) -> Iterator[tuple[Flask, LiveServer]]:
    """Trials on a real socket (checkout's relay posts to it), its read model fed."""
    from services.trials.app import create_app as create_trials_app

    flask_app = create_trials_app(trials_settings(trials_db_url, checkout_server.url), clock)
    server = LiveServer(flask_app)
    join_trials(app, server.url)
    yield flask_app, server
    server.stop()
    flask_app.extensions["trials"].ctx.close()


@pytest.fixture
def trials_app(trials_server_app: tuple[Flask, LiveServer]) -> Flask:
    return trials_server_app[0]


# --- log hygiene ------------------------------------------------------------------
RUN_LOG = Path(__file__).resolve().parents[1] / "test-output" / "test-run.log"


class _RawLog(logging.Handler):
    """Every log line of the run, as the code wrote it (before any redaction)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        RUN_LOG.parent.mkdir(exist_ok=True)
        self.stream = RUN_LOG.open("w", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string is not ours to judge here
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += " | " + repr(record.exc_info[1])
        self.stream.write(f"{record.name} {record.levelname} {text}\n")
        self.stream.flush()


@pytest.fixture(scope="session", autouse=True)
def raw_run_log() -> Iterator[None]:
    handler = _RawLog()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(min(previous, logging.INFO))
    yield
    root.removeHandler(handler)
    root.setLevel(previous)
    handler.stream.close()


# Files that run for minutes on one worker (CI's 1,000-subscription year is about 13):
# handed out first, so the other worker runs the rest beside them rather than one
# worker finishing them alone at the end.
LONGEST_FILES = ("tests/e2e/test_renewal_accuracy.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole files in the order xdist hands them out (make test passes
    --no-loadscope-reorder): the longest first, then the files with the most
    tests first, as xdist's own reordering would. The log scan reads what every
    other test logged: it runs last."""
    last = [i for i in items if i.name == "test_no_secrets_in_the_logs_of_this_test_run"]
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        if item not in last:
            files.setdefault(item.nodeid.partition("::")[0], []).append(item)
    order = sorted(files, key=lambda name: (name not in LONGEST_FILES, -len(files[name])))
    items[:] = [item for name in order for item in files[name]] + last
