"""Experiment exposures: who was put in which variation, recorded once.

Each service keeps an `exposures` table (unique per experiment and hashed
unit). The first time a unit is exposed in a service, the row is inserted and
an `experiment_viewed` funnel event goes with it in the same transaction;
later evaluations find the row and write nothing. The same person exposed in
two services gives two events with the same variation (assignment hashes the
same id everywhere); the analysis counts the unit once.

The table also answers "which experiments is this person in?", so every later
funnel event of theirs carries the variations (`$feature/<key>` in PostHog).
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from datetime import datetime
from threading import Lock
from typing import Any

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint, bindparam, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from experiments.flags import NAMESPACE_ID, USER_ID, Exposure
from services.common.db import BigIntPK, UTCDateTime, insert_ignoring_duplicates


class ExposureMixin:
    __tablename__ = "exposures"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    experiment_key: Mapped[str] = mapped_column(String(100))
    hash_attribute: Mapped[str] = mapped_column(String(32))
    hash_value: Mapped[str] = mapped_column(String(64))
    variation_id: Mapped[int] = mapped_column(Integer)
    feature: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    namespace_id: Mapped[int | None] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (UniqueConstraint("hash_attribute", "hash_value", "experiment_key",
                                 name="uq_exposures_unit_experiment"),)


def store_first(session: Session, model: type[ExposureMixin], exposure: Exposure,
                user_id: int | None, namespace_id: int | None, now: datetime) -> bool:
    """Insert the exposure unless the unit already has one; True if this was the first."""
    # RETURNING, not rowcount: with an implicit RETURNING, psycopg reports rowcount -1.
    inserted = session.scalar(insert_ignoring_duplicates(session, model.__table__).values(
        experiment_key=exposure.experiment, hash_attribute=exposure.hash_attribute,
        hash_value=exposure.hash_value, variation_id=exposure.variation, feature=exposure.feature,
        user_id=user_id, namespace_id=namespace_id, first_seen_at=now).returning(model.__table__.c.id))
    return inserted is not None


class KnownVariations:
    """{experiment: variation} per unit, as this process last read or wrote it.

    Every funnel event carries its person's variations; reading them from the
    table each time was a fifth of a quote's CPU. A unit's variation never
    changes once stored (the first exposure wins), so the only staleness is an
    exposure another process stored in the last `ttl` seconds: an event may
    then lack that `$feature/` property. The analysis reads exposures, not
    these properties, so its numbers do not move."""

    def __init__(self, ttl: float = 30.0, size: int = 100_000) -> None:
        self._ttl, self._size = ttl, size
        self._known: OrderedDict[tuple[str, str], tuple[float, dict[str, int]]] = OrderedDict()
        self._lock = Lock()

    def get(self, unit: tuple[str, str]) -> dict[str, int] | None:
        found = self._known.get(unit)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, unit: tuple[str, str], variations: dict[str, int]) -> None:
        with self._lock:
            self._known[unit] = (time.monotonic() + self._ttl, variations)
            self._known.move_to_end(unit)
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def forget(self, unit: tuple[str, str]) -> None:
        with self._lock:
            self._known.pop(unit, None)


def variations_of(session: Session, model: type[ExposureMixin], known: KnownVariations | None,
                  user_id: int | None, namespace_id: int | None) -> dict[str, int]:
    """{experiment key: variation} for a person and the namespace they act on;
    `known=None` reads the table without caching (a transaction that stored an
    exposure sees a row that a rollback could still take back)."""
    units = [(USER_ID, str(user_id))] if user_id is not None else []
    if namespace_id is not None:
        units.append((NAMESPACE_ID, str(namespace_id)))
    found: dict[str, int] = {}
    for unit in units:
        cached = known.get(unit) if known is not None else None
        if cached is None:
            rows = session.execute(_variations(model), {"attribute": unit[0], "value": unit[1]})
            cached = {key: variation for key, variation in rows}
            if known is not None:
                known.put(unit, cached)
        found.update(cached)
    return found


@functools.cache
def _variations(model: type[ExposureMixin]) -> Any:
    """Built once per model: building a select() costs about what running it does."""
    return select(model.experiment_key, model.variation_id).where(
        model.hash_attribute == bindparam("attribute"), model.hash_value == bindparam("value"))
