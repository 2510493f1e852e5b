"""Fixtures for the experiment tests: a fresh, migrated event store per test on
each backend, and a writer that puts events into it."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from experiments.store import upgrade
from persistence.db import make_engine
from tests.experiments.helpers import EventWriter
from tests.support import PG_SKIP_REASON, pg_base_url, postgres_database, sqlite_url


@pytest.fixture(autouse=True)
def keep_root_logging() -> Iterator[None]:
    """The CLI configures logging for its process (root handlers replaced);
    in-process here, that would cut pytest's capture and the run log off."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store migrated once on SQLite; each test copies the file."""
    path = tmp_path_factory.mktemp("store") / "experiments-template.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture(scope="session")
def store_postgres_url() -> Iterator[str]:
    if not pg_base_url():
        pytest.skip(PG_SKIP_REASON)
    with postgres_database("experiments") as url:
        upgrade(url)
        yield url


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated event store on this test's backend."""
    if backend == "sqlite":
        path = tmp_path / "experiments.db"
        shutil.copy(request.getfixturevalue("store_template"), path)
        return sqlite_url(path)
    url: str = request.getfixturevalue("store_postgres_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE events, collector_checkpoints RESTART IDENTITY"))
    engine.dispose()
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def writer(store: Engine) -> EventWriter:
    return EventWriter(store)
