"""Every service migrates with Alembic to exactly its models, and answers the
shared endpoints."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from persistence.db import make_engine
from services.common.clock import FixedClock
from services.common.migrate import SERVICES, upgrade
from tests.conftest import NOW, make_settings
from tests.support import pg_base_url, postgres_database, sqlite_url


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def service_db(service: str, backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield sqlite_url(tmp_path / f"{service}.db")
        return
    if not pg_base_url():
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    with postgres_database(service) as url:
        yield url


def test_migrations_build_exactly_the_models(service: str, service_db: str) -> None:
    upgrade(service, service_db)
    models = importlib.import_module(f"services.{service}.adapters.models")
    engine = make_engine(service_db)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    engine.dispose()
    assert diff == []


def test_every_service_answers_health_readiness_and_openapi(service: str, service_db: str) -> None:
    upgrade(service, service_db)
    factory = importlib.import_module(f"services.{service}.app").create_app
    app = factory(make_settings(service, service_db), FixedClock(NOW))
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok", "service": service}
    ready = client.get("/readyz").json
    assert ready["checks"]["database"] == "ok"
    assert client.get("/openapi.json").json["info"]["title"].lower() == service
    app.extensions["service_context"].close()
