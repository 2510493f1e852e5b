"""The experiment event store: an append-only copy of every service's funnel
events, and the collector that fills it.

Each service writes its own `funnel_events`; a service never reads another's
tables, so the analysis reads this copy instead (its own database, URL from
`EXPERIMENTS_DATABASE_URL`). Rows are deduplicated by `event_id`. Exposure rows
(`experiment_viewed`) get their experiment, variation and unit extracted into
indexed columns, and every row gets `occurred_us` (microseconds since the
epoch) so that conversion windows are integer arithmetic on both SQLite and
PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, Row

from flags.payload import NAMESPACE_ID, USER_ID
from persistence.db import BigIntPK, UTCDateTime, make_engine
from services.common.config import Settings
from services.common.migrate import SERVICES, upgrade_folder

log = logging.getLogger(__name__)

EXPOSURE_STEP = "experiment_viewed"
# The hash attributes assignment uses (flags/payload.py): a user or a namespace.
HASH_ATTRIBUTES = (USER_ID, NAMESPACE_ID)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = MetaData()

events = Table(
    "events", metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    # The service database the row was copied from, and its id there (the collector's checkpoint).
    Column("service", String(32), nullable=False),
    Column("source_id", BigInteger, nullable=False),
    Column("step", String(64), nullable=False),
    Column("user_id", BigInteger),
    Column("namespace_id", BigInteger),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("occurred_us", BigInteger, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("experiments", JSON, nullable=False),
    Column("traffic", String(16), nullable=False),
    # Exposure rows only: NULL on every other step.
    Column("experiment_key", String(100)),
    Column("variation_id", Integer),
    Column("variation_name", String(200)),
    Column("hash_attribute", String(32)),
    Column("unit_id", BigInteger),
    Index("ix_events_exposures", "experiment_key", "unit_id", "occurred_us",
          sqlite_where=text("experiment_key IS NOT NULL"),
          postgresql_where=text("experiment_key IS NOT NULL")),
    Index("ix_events_step_user", "step", "user_id", "occurred_us"),
    Index("ix_events_step_namespace", "step", "namespace_id", "occurred_us"),
    Index("ix_events_service_source", "service", "source_id"),
)

collector_checkpoints = Table(
    "collector_checkpoints", metadata,
    Column("source", String(32), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
)

# What the collector reads: the columns of funnel.telemetry.FunnelEventMixin.
_funnel_events = Table(
    "funnel_events", MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("event_id", String(36)),
    Column("step", String(64)),
    Column("user_id", BigInteger),
    Column("namespace_id", BigInteger),
    Column("occurred_at", UTCDateTime()),
    Column("properties", JSON),
    Column("experiments", JSON),
    Column("traffic", String(16)),
)


# --- database -------------------------------------------------------------------
def store_url_from_env() -> str:
    """`EXPERIMENTS_DATABASE_URL` (then `DATABASE_URL`), default sqlite:///var/experiments.db."""
    return Settings.from_env("experiments").database_url


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the store to `revision` (Alembic, experiments/migrations)."""
    upgrade_folder(MIGRATIONS, url, revision)


def source_urls_from_env() -> dict[str, str]:
    """{service: database URL} of the three services, as they read them."""
    return {service: Settings.from_env(service).database_url for service in SERVICES}


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


# --- collector ------------------------------------------------------------------
def _log_failure(source: str, error: Exception) -> None:
    log.error("collecting funnel events from %s failed", source, exc_info=error)


def collect_once(store: Engine, sources: Mapping[str, Engine | str], *, batch_size: int = 5000,
                 overlap: int = 10_000, max_batches: int | None = 4,
                 on_failure: Callable[[str, Exception], None] = _log_failure) -> int:
    """Copy new funnel events from each service database into the store.

    `sources` maps a service name to its engine (the worker passes the ones it
    has) or URL. Returns the number of rows added. Safe to run concurrently and
    to repeat: rows are inserted ignoring duplicate event ids. At most
    `max_batches` batches per source per call (None: until caught up), so a
    worker loop calling this every few seconds is never blocked for long.

    A source that fails (down, not migrated) goes to `on_failure` (default: an
    error log line) and is skipped; the others are still collected.
    """
    copied = 0
    for name, source in sources.items():
        engine = make_engine(source) if isinstance(source, str) else source
        try:
            copied += _collect_source(store, name, engine, batch_size, overlap, max_batches)
        except Exception as exc:  # one service down must not stop the others' collection
            on_failure(name, exc)
        finally:
            if isinstance(source, str):
                engine.dispose()
    return copied


def _collect_source(store: Engine, name: str, source: Engine, batch_size: int, overlap: int,
                    max_batches: int | None) -> int:
    with store.connect() as conn:
        last_id = conn.scalar(select(collector_checkpoints.c.last_id)
                              .where(collector_checkpoints.c.source == name)) or 0
    with source.connect() as conn:
        newest = conn.scalar(select(func.max(_funnel_events.c.id))) or 0
    if newest < last_id:
        # funnel_events is append-only: fewer ids means the database was
        # recreated (a development reset). Start over; event ids keep it exact.
        log.warning("%s has fewer funnel events than were collected; collecting it again", name)
        last_id = 0
        with store.begin() as conn:
            conn.execute(update(collector_checkpoints).where(collector_checkpoints.c.source == name)
                         .values(last_id=0))
    # On PostgreSQL ids come from a sequence when a row is inserted, but rows
    # become visible when their transaction commits: a transaction that commits
    # late shows up with an id below the checkpoint. So each pass also looks
    # for ids missing from the store in a trailing window of `overlap` ids and
    # fetches those again (rolled-back ids stay missing; they cost one cheap
    # lookup until the window moves past them).
    copied = _fetch_missing(store, name, source, max(0, last_id - overlap), last_id)
    batches = 0
    while max_batches is None or batches < max_batches:
        with source.connect() as conn:
            rows = conn.execute(select(_funnel_events).where(_funnel_events.c.id > last_id)
                                .order_by(_funnel_events.c.id).limit(batch_size)).all()
        last_id = rows[-1].id if rows else last_id
        copied += _store_rows(store, name, rows, last_id)
        batches += 1
        if len(rows) < batch_size:
            break
    return copied


def _fetch_missing(store: Engine, name: str, source: Engine, low: int, high: int) -> int:
    if high <= low:
        return 0
    with store.connect() as conn:
        present = set(conn.scalars(select(events.c.source_id).where(
            events.c.service == name, events.c.source_id > low, events.c.source_id <= high)))
    missing = [i for i in range(low + 1, high + 1) if i not in present]
    copied = 0
    for start in range(0, len(missing), 1000):
        with source.connect() as conn:
            rows = conn.execute(select(_funnel_events).where(
                _funnel_events.c.id.in_(missing[start:start + 1000]))).all()
        if rows:
            copied += _store_rows(store, name, rows, None)
    return copied


def _store_rows(store: Engine, name: str, rows: Sequence[Row[Any]], checkpoint: int | None) -> int:
    """Insert the rows (ignoring known event ids) and move the checkpoint, in one transaction."""
    now = datetime.now(UTC)
    with store.begin() as conn:
        inserted = 0
        if rows:
            # A plain executemany (no RETURNING): psycopg pipelines it, and both
            # drivers sum the rows actually inserted into rowcount.
            result = conn.execute(_insert_ignoring_duplicates(conn).execution_options(preserve_rowcount=True),
                                  [_store_row(name, row) for row in rows])
            inserted = result.rowcount
        if checkpoint is not None:
            _save_checkpoint(conn, name, checkpoint, now)
    return inserted


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return insert(events).on_conflict_do_nothing(index_elements=["event_id"])


def _save_checkpoint(conn: Connection, name: str, last_id: int, now: datetime) -> None:
    """Never moves back: two collectors running at once both leave the highest id."""
    moved = conn.execute(update(collector_checkpoints).where(collector_checkpoints.c.source == name)
                         .values(last_id=func.max(collector_checkpoints.c.last_id, last_id)
                                 if conn.dialect.name == "sqlite"
                                 else func.greatest(collector_checkpoints.c.last_id, last_id),
                                 collected_at=now))
    if moved.rowcount == 0:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(insert(collector_checkpoints).values(source=name, last_id=last_id, collected_at=now)
                     .on_conflict_do_nothing(index_elements=["source"]))


def _store_row(name: str, row: Row[Any]) -> dict[str, Any]:
    properties = row.properties or {}
    return {
        "event_id": row.event_id, "service": name, "source_id": row.id, "step": row.step,
        "user_id": row.user_id, "namespace_id": row.namespace_id, "occurred_at": row.occurred_at,
        "occurred_us": to_micros(row.occurred_at), "properties": properties,
        "experiments": row.experiments or {}, "traffic": row.traffic,
        **exposure_columns(row.step, properties, row.user_id, row.namespace_id, row.event_id),
    }


def exposure_columns(step: str, properties: Mapping[str, Any], user_id: int | None,
                     namespace_id: int | None, event_id: str) -> dict[str, Any]:
    """The indexed exposure columns of an `experiment_viewed` row (all NULL otherwise).

    The unit is the user for hash attribute `id` and the namespace for
    `namespace_id`; its id comes from the row's own column, or from
    `hash_value` when that column is empty.
    """
    empty = {"experiment_key": None, "variation_id": None, "variation_name": None,
             "hash_attribute": None, "unit_id": None}
    if step != EXPOSURE_STEP:
        return empty
    key, variation = properties.get("experiment"), properties.get("variation")
    attribute = properties.get("hash_attribute")
    units: dict[str | None, int | None] = {USER_ID: user_id, NAMESPACE_ID: namespace_id}
    unit_id = units.get(attribute)
    if unit_id is None:
        try:
            unit_id = int(properties.get("hash_value"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            unit_id = None
    if (not isinstance(key, str) or not key or isinstance(variation, bool) or not isinstance(variation, int)
            or attribute not in HASH_ATTRIBUTES or unit_id is None):
        log.warning("exposure %s does not follow the contract; stored, not analysed", event_id)
        return empty
    name = properties.get("variation_name")
    return {"experiment_key": key[:100], "variation_id": variation,
            "variation_name": str(name)[:200] if name is not None else None,
            "hash_attribute": attribute, "unit_id": unit_id}


def last_collected_at(store: Engine) -> datetime | None:
    """When the collector last finished a pass over any source (the data's freshness)."""
    with store.connect() as conn:
        latest: datetime | None = conn.scalar(select(func.max(collector_checkpoints.c.collected_at)))
        return latest
