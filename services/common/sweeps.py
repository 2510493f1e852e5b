"""Sweeps that one bad item can not block.

A sweep (renewal reminders and charges, subscription and trial expiry, card
notices) takes the items that are due, oldest id first, a batch per
transaction. When a batch fails, its items are done again one per
transaction, so only the item that fails stays undone. Its failure is
recorded in the service's `sweep_failures` table (reason, count, when to try
again) and the sweep goes on with the next items: fresh items never wait
behind a failing one, which is tried again alone once its backoff is over
(doubling from SWEEP_RETRY_SECONDS up to SWEEP_RETRY_MAX_SECONDS, on the
service's clock). Success deletes the record.

Each failed attempt logs one line naming the sweep, the item and the reason;
the traceback goes with the first failure only (and with every one at debug
level). `/metrics` counts the failing items by sweep and reason, read from the
table at scrape time like the outbox lag (services/common/metrics.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from sqlalchemy import BigInteger, FromClause, Integer, Select, String, Text, delete, exists, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from persistence.db import UTCDateTime, insert_ignoring_duplicates, is_postgres
from services.common.logs import redact

if TYPE_CHECKING:
    from services.common.service import ServiceUnitOfWork

log = logging.getLogger(__name__)

R = TypeVar("R")


class SweepFailureMixin:
    """One item a sweep failed on: why, how often, and when it is tried again."""

    __tablename__ = "sweep_failures"
    if TYPE_CHECKING:
        __table__: ClassVar[FromClause]  # the mapped class's, from the declarative base

    sweep: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reason: Mapped[str] = mapped_column(String(64))  # a stable code: the error's class name
    last_error: Mapped[str] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # None: the sweep gave up retrying (Sweep.give_up_after); a person decides.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def backoff(failures: int, first: timedelta, cap: timedelta) -> timedelta:
    """How long after its last failure an item that failed `failures` times waits:
    `first`, doubling with each failure, never more than `cap`."""
    if failures <= 0:
        return timedelta(0)
    return min(first * (1 << min(failures - 1, 30)), cap)


def reason_of(error: BaseException) -> str:
    return type(error).__name__[:64]


def describe(error: BaseException) -> str:
    """A one-line account of an error for a log line or a row (secrets masked)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return redact(f"{reason_of(error)}: {text}" if text else reason_of(error))[:500]


def clear(uow: ServiceUnitOfWork, sweep: str, item_id: int) -> None:
    """Forget an item's failures (it was done, perhaps some other way: by hand)."""
    model = _model(uow)
    uow.session.execute(delete(model).where(model.sweep == sweep, model.item_id == item_id))


@dataclass(frozen=True)
class Sweep(Generic[R]):
    """Work through what `due` selects, each item on its own when it must.

    `due(uow)` selects the ids of the items that are due (one id column, of the
    table whose rows are locked); `work(uow, ids)` does them in the caller's
    transaction and returns what it did. An error in `outages` says a
    dependency is down: it is recorded on the item like any other, then the
    pass ends, as the next items would fail alike. With `give_up_after`, an
    item failing that long is no longer tried automatically.
    """

    name: str
    due: Callable[[ServiceUnitOfWork], Select[Any]]
    work: Callable[[ServiceUnitOfWork, list[int]], list[R]]
    batch: int = 1000
    outages: tuple[type[Exception], ...] = ()
    give_up_after: timedelta | None = None

    def run(self, new_uow: Callable[[], ServiceUnitOfWork]) -> list[R]:
        """One pass: fresh items in batches, then the failed ones whose time has come."""
        done: list[R] = []
        seen: set[int] = set()
        while True:
            with new_uow() as uow:
                ids = [i for i in self._claim(uow, None) if i not in seen]
                if not ids:  # nothing due, or only items this pass did (work that left them due)
                    break
                seen.update(ids)
                try:
                    results = self.work(uow, ids)
                    uow.commit()
                except Exception as exc:
                    error: Exception = exc
                else:
                    done += results
                    continue
            if len(ids) == 1:
                self._record(new_uow, ids[0], error)
                if isinstance(error, self.outages):
                    return done
                continue
            log.info("%s: a batch of %d failed (%s); doing its items one at a time",
                     self.name, len(ids), describe(error), extra={"sweep": self.name})
            for item_id in ids:
                results, failed = self._alone(new_uow, item_id, retry=False)
                done += results
                if isinstance(failed, self.outages):
                    return done
        for item_id in self._retries_due(new_uow):
            results, failed = self._alone(new_uow, item_id, retry=True)
            done += results
            if isinstance(failed, self.outages):
                break
        return done

    def _claim(self, uow: ServiceUnitOfWork, item_id: int | None) -> list[int]:
        """The next batch of items that have not failed, or just `item_id` if it is still due."""
        query = self.due(uow)
        column = query.selected_columns[0]
        if item_id is None:
            query = query.where(~self._failed_before(uow, column)).order_by(column).limit(self.batch)
        else:
            query = query.where(column == item_id)
        return list(uow.session.scalars(_locked(uow.session, query, column.table)))

    def _failed_before(self, uow: ServiceUnitOfWork, column: Any) -> Any:
        model = _model(uow)
        return exists().where(model.sweep == self.name, model.item_id == column)

    def _alone(self, new_uow: Callable[[], ServiceUnitOfWork], item_id: int,
               retry: bool) -> tuple[list[R], Exception | None]:
        """Do one item in its own transaction; a retry also ends its failure record."""
        with new_uow() as uow:
            record = None
            if retry:
                model = _model(uow)
                record = uow.session.scalar(_locked(uow.session, select(model).where(
                    model.sweep == self.name, model.item_id == item_id, model.retry_at <= uow.now), model))
                if record is None:  # another worker is retrying it
                    return [], None
            try:
                ids = self._claim(uow, item_id)
                results = self.work(uow, ids) if ids else []
                if record is not None:
                    if ids:
                        log.info("%s: item %d done after %d failed attempts", self.name, item_id,
                                 record.failures, extra={"sweep": self.name, "item_id": item_id})
                    clear(uow, self.name, item_id)  # done, or no longer due
                uow.commit()
                return results, None
            except Exception as exc:
                error = exc
        self._record(new_uow, item_id, error)
        return [], error

    def _retries_due(self, new_uow: Callable[[], ServiceUnitOfWork]) -> list[int]:
        with new_uow() as uow:
            model = _model(uow)
            return list(uow.session.scalars(select(model.item_id).where(
                model.sweep == self.name, model.retry_at <= uow.now).order_by(model.retry_at)))

    def _record(self, new_uow: Callable[[], ServiceUnitOfWork], item_id: int, error: Exception) -> None:
        with new_uow() as uow:
            model, now, settings = _model(uow), uow.now, uow.ctx.settings
            uow.session.execute(insert_ignoring_duplicates(uow.session, model.__table__).values(
                sweep=self.name, item_id=item_id, reason="", last_error="", failures=0,
                first_failed_at=now, last_failed_at=now, retry_at=now))
            row = uow.session.scalars(select(model).where(model.sweep == self.name,
                                                          model.item_id == item_id).with_for_update()).one()
            row.failures += 1
            row.reason, row.last_error, row.last_failed_at = reason_of(error), describe(error), now
            given_up = self.give_up_after is not None and now - row.first_failed_at >= self.give_up_after
            row.retry_at = None if given_up else now + backoff(
                row.failures, timedelta(seconds=settings.sweep_retry_seconds),
                timedelta(seconds=settings.sweep_retry_max_seconds))
            uow.commit()
        self._log(row, error)

    def _log(self, row: SweepFailureMixin, error: Exception) -> None:
        extra = {"sweep": self.name, "item_id": row.item_id, "reason": row.reason, "attempt": row.failures}
        if row.retry_at is None:
            log.error("%s: item %d failed %d times since %s (%s); no more automatic tries, "
                      "it needs a person", self.name, row.item_id, row.failures,
                      row.first_failed_at.isoformat(), row.last_error, extra=extra)
            return
        first = row.failures == 1 and not isinstance(error, self.outages)
        level = logging.ERROR if first else logging.WARNING
        trace = first or log.isEnabledFor(logging.DEBUG)
        log.log(level, "%s: item %d failed (attempt %d: %s); next try at %s", self.name, row.item_id,
                row.failures, row.last_error, row.retry_at.isoformat(), extra=extra,
                exc_info=error if trace else None)


def _model(uow: ServiceUnitOfWork) -> type[SweepFailureMixin]:
    model = uow.ctx.failure_model
    if model is None:
        raise RuntimeError(f"{uow.ctx.name} has no sweep_failures table")
    return model


def _locked(session: Session, query: Select[Any], table: Any) -> Select[Any]:
    """Rows another worker has locked are skipped, not waited for (PostgreSQL)."""
    return query.with_for_update(skip_locked=True, of=table) if is_postgres(session) else query

