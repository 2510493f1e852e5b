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

from collections import OrderedDict
from datetime import datetime
from threading import Lock
from typing import Any

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint, and_, or_, select
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


class SeenExposures:
    """Exposures this process knows are stored, so a repeat evaluation (most
    of them) costs no INSERT. Bounded: forgetting only costs an INSERT that
    the unique constraint turns into nothing."""

    def __init__(self, size: int = 100_000) -> None:
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        return key in self._seen

    def add(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._seen[key] = None
            self._seen.move_to_end(key)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)


def exposure_key(exposure: Exposure) -> tuple[str, str, str]:
    return exposure.hash_attribute, exposure.hash_value, exposure.experiment


def store_first(session: Session, model: type[ExposureMixin], exposure: Exposure,
                user_id: int | None, namespace_id: int | None, now: datetime) -> bool:
    """Insert the exposure unless the unit already has one; True if this was the first."""
    # RETURNING, not rowcount: with an implicit RETURNING, psycopg reports rowcount -1.
    inserted = session.scalar(insert_ignoring_duplicates(session, model.__table__).values(
        experiment_key=exposure.experiment, hash_attribute=exposure.hash_attribute,
        hash_value=exposure.hash_value, variation_id=exposure.variation, feature=exposure.feature,
        user_id=user_id, namespace_id=namespace_id, first_seen_at=now).returning(model.__table__.c.id))
    return inserted is not None


def variations_of(session: Session, model: type[ExposureMixin], user_id: int | None,
                  namespace_id: int | None) -> dict[str, int]:
    """{experiment key: variation} for a person and the namespace they act on."""
    units = []
    if user_id is not None:
        units.append(and_(model.hash_attribute == USER_ID, model.hash_value == str(user_id)))
    if namespace_id is not None:
        units.append(and_(model.hash_attribute == NAMESPACE_ID, model.hash_value == str(namespace_id)))
    if not units:
        return {}
    rows = session.execute(select(model.experiment_key, model.variation_id).where(or_(*units)))
    return {key: variation for key, variation in rows}
