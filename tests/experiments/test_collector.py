"""The collector: every service's funnel events copied once into the store,
late commits included; and the store's schema is what its migrations make."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from experiments.store import collect_once, collector_checkpoints, events, last_collected_at, metadata
from funnel import telemetry
from persistence.db import make_engine
from services.checkout.adapters.models import FunnelEventRow as CheckoutEvent
from services.notifications.adapters.models import FunnelEventRow as NotificationsEvent
from services.trials.adapters.models import FunnelEventRow as TrialsEvent
from tests.experiments.helpers import T0
from tests.support import sqlite_url

EXPOSURE = {"experiment": "default-seats", "variation": 1, "variation_name": "Billable members + 20%",
            "feature": "checkout-default-seats", "hash_attribute": "namespace_id", "hash_value": "100"}


@pytest.fixture
def sources(fresh_db: Callable[[str], str]) -> Iterator[dict[str, Engine]]:
    engines = {service: make_engine(fresh_db(service)) for service in ("checkout", "trials")}
    yield engines
    for engine in engines.values():
        engine.dispose()


def track(engine: Engine, model: type[telemetry.FunnelEventMixin], service: str, step: str, *,
          minutes: int = 0, event_id: str | None = None, row_id: int | None = None,
          properties: dict[str, Any] | None = None, traffic: str = "real") -> str:
    """One row in a service's funnel_events (a chosen id stands in for a late commit)."""
    event_id = event_id or str(uuid.uuid4())
    with Session(engine) as session:
        session.add(model(id=row_id, event_id=event_id, service=service, step=step,  # type: ignore[call-arg]
                          user_id=1, namespace_id=100, occurred_at=T0 + timedelta(minutes=minutes),
                          properties=properties or {}, experiments={}, traffic=traffic))
        session.commit()
    return event_id


def stored(store: Engine) -> list[tuple[str, str, int]]:
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(select(events.c.service, events.c.step, events.c.source_id)
                                               .order_by(events.c.service, events.c.source_id))]


def test_copies_every_service_once_and_is_idempotent(sources: dict[str, Engine], store: Engine) -> None:
    track(sources["checkout"], CheckoutEvent, "checkout", "plan_chosen")
    track(sources["checkout"], CheckoutEvent, "checkout", "purchase_completed", minutes=5)
    track(sources["trials"], TrialsEvent, "trials", "trial_started", properties={"kind": "ultimate"})
    assert collect_once(store, sources) == 3
    assert collect_once(store, sources) == 0
    assert stored(store) == [("checkout", "plan_chosen", 1), ("checkout", "purchase_completed", 2),
                             ("trials", "trial_started", 1)]
    with store.connect() as conn:
        row = conn.execute(select(events).where(events.c.service == "trials")).one()
    assert row.properties == {"kind": "ultimate"} and row.occurred_at == T0
    assert row.occurred_us == int(T0.timestamp()) * 1_000_000
    assert last_collected_at(store) is not None

    track(sources["checkout"], CheckoutEvent, "checkout", "card_captured", minutes=9)
    assert collect_once(store, sources) == 1


def test_exposures_get_their_experiment_variation_and_unit_extracted(
        sources: dict[str, Engine], store: Engine) -> None:
    track(sources["checkout"], CheckoutEvent, "checkout", "experiment_viewed", properties=EXPOSURE,
          traffic="demo")
    track(sources["checkout"], CheckoutEvent, "checkout", "experiment_viewed",
          properties={**EXPOSURE, "variation": "one"})  # off contract: stored, not analysed
    collect_once(store, sources)
    with store.connect() as conn:
        good, bad = conn.execute(select(events).order_by(events.c.source_id)).all()
    assert (good.experiment_key, good.variation_id, good.variation_name, good.hash_attribute, good.unit_id,
            good.traffic) == ("default-seats", 1, "Billable members + 20%", "namespace_id", 100, "demo")
    assert bad.experiment_key is None and bad.unit_id is None


def test_the_same_event_id_from_two_places_is_stored_once(sources: dict[str, Engine], store: Engine) -> None:
    track(sources["checkout"], CheckoutEvent, "checkout", "plan_chosen", event_id="0" * 36)
    track(sources["trials"], TrialsEvent, "trials", "plan_chosen", event_id="0" * 36)
    assert collect_once(store, sources) == 1


def test_a_row_that_shows_up_below_the_checkpoint_is_still_collected(
        sources: dict[str, Engine], store: Engine) -> None:
    """What a late commit looks like from outside: id 3 appears after 4 was collected."""
    checkout = sources["checkout"]
    for row_id in (1, 2, 4):
        track(checkout, CheckoutEvent, "checkout", "plan_chosen", row_id=row_id)
    assert collect_once(store, {"checkout": checkout}) == 3
    track(checkout, CheckoutEvent, "checkout", "purchase_completed", row_id=3)
    assert collect_once(store, {"checkout": checkout}) == 1
    assert [r[2] for r in stored(store)] == [1, 2, 3, 4]
    assert collect_once(store, {"checkout": checkout}) == 0


def test_a_transaction_committing_after_a_later_one_is_not_skipped(
        sources: dict[str, Engine], store: Engine, postgres_only: None) -> None:
    checkout = sources["checkout"]
    row = {"event_id": "1" * 36, "service": "checkout", "step": "plan_chosen", "user_id": 1, "namespace_id": 100,
           "occurred_at": T0, "properties": {}, "experiments": {}, "traffic": "real"}
    with checkout.connect() as slow:
        slow.begin()
        slow_id = slow.execute(insert(CheckoutEvent.__table__).values(row).returning(CheckoutEvent.id)).scalar()
        fast_id = track(checkout, CheckoutEvent, "checkout", "purchase_completed")
        assert collect_once(store, {"checkout": checkout}) == 1  # the fast one; the slow one is invisible
        slow.commit()
    assert fast_id and slow_id == 1
    assert collect_once(store, {"checkout": checkout}) == 1
    assert [r[1:] for r in stored(store)] == [("plan_chosen", 1), ("purchase_completed", 2)]


def test_batches_and_a_cap_per_call(sources: dict[str, Engine], store: Engine) -> None:
    for minute in range(5):
        track(sources["checkout"], CheckoutEvent, "checkout", "plan_chosen", minutes=minute)
    checkout = {"checkout": sources["checkout"]}
    assert collect_once(store, checkout, batch_size=2, max_batches=1) == 2
    assert collect_once(store, checkout, batch_size=2, max_batches=None) == 3
    with store.connect() as conn:
        assert conn.scalar(select(collector_checkpoints.c.last_id)) == 5


def test_a_failing_source_is_logged_and_the_others_still_collected(
        sources: dict[str, Engine], store: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    track(sources["trials"], TrialsEvent, "trials", "trial_started")
    broken = sqlite_url(tmp_path / "not-migrated.db")
    with caplog.at_level(logging.ERROR, logger="experiments.store"):
        assert collect_once(store, {"checkout": broken, "trials": sources["trials"]}) == 1
    assert "collecting funnel events from checkout failed" in caplog.text


def test_sources_can_be_urls(fresh_db: Callable[[str], str], store: Engine) -> None:
    url = fresh_db("notifications")
    engine = make_engine(url)
    track(engine, NotificationsEvent, "notifications", "notification_sent")
    engine.dispose()
    assert collect_once(store, {"notifications": url}) == 1
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(events)) == 1


def test_the_migrations_make_the_schema_the_code_expects(store: Engine) -> None:
    with store.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []


def test_a_recreated_service_database_is_collected_again(fresh_db: Callable[[str], str], store: Engine,
                                                         ) -> None:
    url = fresh_db("checkout")
    checkout = make_engine(url)
    for minute in range(3):
        track(checkout, CheckoutEvent, "checkout", "plan_chosen", minutes=minute)
    assert collect_once(store, {"checkout": checkout}) == 3
    checkout.dispose()
    checkout = make_engine(fresh_db("checkout"))  # a development reset: ids start at 1 again
    track(checkout, CheckoutEvent, "checkout", "purchase_completed")
    assert collect_once(store, {"checkout": checkout}) == 1
    checkout.dispose()
    assert [r[1] for r in stored(store)].count("purchase_completed") == 1
