"""Fixtures: every database test runs on SQLite and, with TEST_DATABASE_URL, on
PostgreSQL; end-to-end tests add a real localstripe and a live HTTP server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.checkout.adapters.models import Base as CheckoutBase
from services.checkout.app import create_app
from services.checkout.runtime import Checkout
from services.checkout.seed import seed
from services.common.clock import FixedClock
from services.common.config import Settings
from services.common.db import make_engine
from services.common.migrate import upgrade
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


# --- databases -----------------------------------------------------------------
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkout's schema migrated once; each test copies the file."""
    path = tmp_path_factory.mktemp("db") / "checkout-template.db"
    upgrade("checkout", sqlite_url(path))
    return path


@pytest.fixture(scope="session")
def postgres_checkout_url() -> Iterator[str]:
    if not pg_base_url():
        pytest.skip(PG_SKIP_REASON)
    with postgres_database("checkout") as url:
        upgrade("checkout", url)
        yield url


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in CheckoutBase.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def checkout_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "checkout.db"
        shutil.copy(template, path)
        return sqlite_url(path)
    url = request.getfixturevalue("postgres_checkout_url")
    _truncate_all(url)
    return str(url)


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("concurrency guarantees are tested on PostgreSQL (SQLite runs one writer)")


# --- clock, settings, apps -------------------------------------------------------
@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def make_settings(service: str, database_url: str, stripe_base: str | None = None) -> Settings:
    return Settings(service=service, database_url=database_url, auth_secret=TEST_SECRET,
                    stripe_api_base=stripe_base or "http://127.0.0.1:9", stripe_timeout_seconds=5,
                    stripe_webhook_secret=WEBHOOK_SECRET, environment="test")


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    server = LocalStripe()
    yield server
    server.stop()


def _seeded(app: Flask, clock: FixedClock) -> Flask:
    checkout: Checkout = app.extensions["checkout"]
    with Session(checkout.ctx.engine) as session:
        seed(session, clock)
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
