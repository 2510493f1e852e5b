"""deploy/migrate.py (the `migrate` role): the services' databases and the
experiments' event store, which must be a database of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from deploy.migrate import TARGETS, main, store_problem
from persistence.db import make_engine

PRODUCTION = {"APP_ENV": "production", "AUTH_SECRET": "a" * 48, "STRIPE_WEBHOOK_SECRET": "whsec_" + "b" * 32}


def _urls(folder: Path) -> dict[str, str]:
    return {f"{target.upper()}_DATABASE_URL": f"sqlite:///{folder / target}.db" for target in TARGETS}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrates_every_database_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _urls(tmp_path)
    assert main([], env) == 0
    assert capsys.readouterr().out.split() == [
        "checkout:", "migrated", "trials:", "migrated", "notifications:", "migrated", "experiments:", "migrated"]
    assert {"events", "collector_checkpoints", "alembic_version"} <= _tables(env["EXPERIMENTS_DATABASE_URL"])
    assert "funnel_events" in _tables(env["CHECKOUT_DATABASE_URL"])


def test_migrates_only_the_targets_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _urls(tmp_path)
    assert main(["experiments", "trials"], env) == 0
    # In their fixed order, whatever the order given.
    assert capsys.readouterr().out.split() == ["trials:", "migrated", "experiments:", "migrated"]
    assert not (tmp_path / "checkout.db").exists()
    assert "events" in _tables(env["EXPERIMENTS_DATABASE_URL"])


def test_an_unknown_target_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["billing"], _urls(tmp_path)) == 2
    assert "unknown service 'billing'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_production_refuses_without_experiments_database_url(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    env = {**PRODUCTION, **_urls(tmp_path)}
    del env["EXPERIMENTS_DATABASE_URL"]
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'shared'}.db"  # no fallback to it either
    assert main([], env) == 1
    assert "EXPERIMENTS_DATABASE_URL must be set in production" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing migrated
    # The services alone still migrate.
    assert main(["checkout"], env) == 0


@pytest.mark.parametrize(("store", "service"), [
    ("postgresql://experiments:x@db.internal/checkout", "postgresql://checkout:y@db.internal:5432/checkout"),
    ("postgres://u:p@db.internal:5432/trials", "postgresql+psycopg://v:q@db.internal/trials"),
])
def test_refuses_a_store_that_shares_a_service_database(store: str, service: str) -> None:
    name = service.rsplit("/", 1)[1]
    env = {**PRODUCTION, "CHECKOUT_DATABASE_URL": "postgresql://u:p@db.internal/checkout-x",
           "TRIALS_DATABASE_URL": "postgresql://u:p@db.internal/trials-x",
           "NOTIFICATIONS_DATABASE_URL": "postgresql://u:p@db.internal/notifications",
           f"{name.upper()}_DATABASE_URL": service, "EXPERIMENTS_DATABASE_URL": store}
    problem = store_problem(env)
    assert problem is not None and f"and {name} share a database" in problem
    assert main(["experiments"], env) == 1


def test_a_store_on_the_same_server_in_its_own_database_is_fine() -> None:
    env = {**PRODUCTION, **{f"{s.upper()}_DATABASE_URL": f"postgresql://u:p@db.internal/{s}"
                            for s in ("checkout", "trials", "notifications", "experiments")}}
    assert store_problem(env) is None
    assert store_problem({"DATABASE_URL": "sqlite:///var/one.db"}) is not None  # everything in one file
