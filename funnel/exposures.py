"""Experiment exposures: who was put in which variation, recorded once.

The flag library (flags/exposures.py) says what an exposure is and caches who
is in which variation; this module is where a service stores them. Each service
keeps an `exposures` table (unique per experiment and hashed unit). The first
time a unit is exposed in a service, the row is inserted and an
`experiment_viewed` funnel event goes with it in the same transaction (see
services/common/service.py); later evaluations find the row and write nothing. The same person exposed in
two services gives two events with the same variation (assignment hashes the
same id everywhere); the analysis counts the unit once.

The table also answers "which experiments is this person in?", so every later
funnel event of theirs carries the variations (`$feature/<key>` in PostHog).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import BigInteger, FromClause, Integer, String, UniqueConstraint, bindparam, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from flags.exposures import Exposure, Unit
from persistence.db import BigIntPK, UTCDateTime, insert_ignoring_duplicates


class ExposureMixin:
    __tablename__ = "exposures"
    if TYPE_CHECKING:
        __table__: ClassVar[FromClause]  # the mapped class's, from the declarative base

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


class TableExposures:
    """The service's `exposures` table, as the flag library's `ExposureStore`."""

    def __init__(self, session: Session, model: type[ExposureMixin]) -> None:
        self._session, self._model = session, model

    def store_first(self, exposure: Exposure, user_id: int | None, namespace_id: int | None,
                    now: datetime) -> bool:
        table = self._model.__table__
        # RETURNING, not rowcount: with an implicit RETURNING, psycopg reports rowcount -1.
        inserted = self._session.scalar(insert_ignoring_duplicates(self._session, table).values(
            experiment_key=exposure.experiment, hash_attribute=exposure.hash_attribute,
            hash_value=exposure.hash_value, variation_id=exposure.variation, feature=exposure.feature,
            user_id=user_id, namespace_id=namespace_id, first_seen_at=now).returning(table.c.id))
        return inserted is not None

    def variations(self, unit: Unit) -> dict[str, int]:
        # A class is always hashable; mypy 2.4 does not see it for this mixin (a false positive).
        query = _variations(self._model)  # type: ignore[arg-type]
        rows = self._session.execute(query, {"attribute": unit[0], "value": unit[1]})
        return {key: variation for key, variation in rows}


@functools.cache
def _variations(model: type[ExposureMixin]) -> Any:
    """Built once per model: building a select() costs about what running it does."""
    return select(model.experiment_key, model.variation_id).where(
        model.hash_attribute == bindparam("attribute"), model.hash_value == bindparam("value"))
