"""View-only funnel rows, written off the request path in batches.

A quote, a price list or an eligibility check changes nothing: its funnel row
(telemetry.VIEW_ONLY_STEPS, in a `telemetry_only()` transaction) was the only
write of the request, 12-22% of its throughput. Here the request, once its
transaction has committed, appends the row (fully built: event id, step, person,
namespace, time, properties, experiments and traffic as known at the step) to a
per-process buffer; a background thread writes what is waiting as one multi-row
INSERT in its own transaction every FUNNEL_BATCH_MS (200 ms in production), or
sooner when half of FUNNEL_BATCH_MAX_ROWS rows wait.

Loss bound. Rows stay in the buffer until the INSERT that holds them has
committed, and a request never appends beyond FUNNEL_BATCH_MAX_ROWS (1,000), so
a SIGKILLed (or OOM-killed) worker loses at most the rows buffered since its
last committed batch: those of about the last FUNNEL_BATCH_MS plus one batch
write, never more than FUNNEL_BATCH_MAX_ROWS per worker process. Every request
answered before that point has its row stored (benchmarks/funnel_kill.py
measures it). A graceful stop loses nothing: `ServiceContext.close()`, gunicorn's
worker_exit hook (SIGTERM, max_requests recycling) and atexit all write what is
waiting. Like the other view-only rows, a batch commits without waiting for
PostgreSQL's WAL flush, so a crash of PostgreSQL itself may lose its last moment
of them; nothing that was bought is ever in a batch.

When the buffer is full (the database slower than the traffic) the request
that finds it so writes the waiting rows itself before appending its own
(back-pressure: the request slows down, nothing is dropped). When a batch fails
(the database unreachable) the rows stay, the failure is logged and counted
(`funnel_batch_failures_total`), and the thread tries again, backing off up to
MAX_RETRY_SECONDS. A row is dropped only if the buffer is full and the database
still refuses it, or at a stop that cannot reach the database: logged, and
counted in `funnel_rows_dropped_total`. Retrying a batch whose commit did reach
the database stores nothing twice (the event id is unique; duplicates are skipped).

FUNNEL_BATCH_MS=0 writes these rows in the step's transaction as before (the
default of `Settings()`, so tests read them right after a request).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.engine import Engine

from funnel.metrics import FUNNEL_BATCH_FAILURES, FUNNEL_ROWS_DROPPED
from persistence.db import insert_ignoring_duplicates

log = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 5.0
# A graceful stop tries this often, this far apart, before it gives the rows up
# (a stopping worker must not outlive gunicorn's graceful_timeout).
STOP_ATTEMPTS, STOP_RETRY_SECONDS = 3, 0.5
_RELAXED_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


class FunnelBatcher:
    """One process's buffer of view-only funnel rows for one service's table."""

    def __init__(self, engine: Engine, table: Table, service: str, *, interval_seconds: float,
                 max_rows: int, wake_at: int | None = None) -> None:
        if interval_seconds <= 0 or max_rows < 1:
            raise ValueError("a funnel batch needs an interval above 0 and room for a row")
        self._engine, self._table, self._service = engine, table, service
        self.interval_seconds, self.max_rows = interval_seconds, max_rows
        # This many rows waiting wake the writer before its interval is up.
        self.wake_at = wake_at if wake_at is not None else max(1, max_rows // 2)
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards _rows
        self._writing = threading.Lock()  # one batch at a time, so the oldest rows go first
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        _open.add(self)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._rows)

    def add(self, row: dict[str, Any]) -> None:
        """Buffer a committed step's row; a full buffer is written by this caller first."""
        while True:
            with self._lock:
                if len(self._rows) < self.max_rows:
                    self._rows.append(row)
                    waiting = len(self._rows)
                    break
            if not self.flush():
                self._drop(1, "the buffer is full and the database refuses the batch")
                return
        if self._closed:  # after a stop: nobody else will write it
            self.flush()
            return
        self._start()
        if waiting >= self.wake_at:
            self._wake.set()

    def flush(self) -> bool:
        """Write the rows waiting now (one transaction); False if that failed.

        One INSERT executed for many rows, not one INSERT of many VALUES: each batch
        size compiled its own statement, and SQLAlchemy's statement cache (500 per
        engine) kept them all, so a worker's memory grew with the sizes it had seen
        (trials +8 MB over 90,000 requests in make bench, found with tracemalloc)."""
        with self._writing:
            with self._lock:
                batch = list(self._rows)
            if not batch:
                return True
            try:
                with self._engine.begin() as conn:
                    if self._engine.dialect.name == "postgresql":
                        conn.execute(_RELAXED_COMMIT)
                    conn.execute(insert_ignoring_duplicates(self._engine, self._table), batch)
            except Exception as error:
                FUNNEL_BATCH_FAILURES.labels(self._service).inc()
                log.warning("funnel batch of %d rows not written, will retry: %s", len(batch), error)
                return False
            with self._lock:  # only this writer removes rows, and appends go to the end
                del self._rows[:len(batch)]
            return True

    def close(self) -> None:
        """Stop the thread and write everything waiting (graceful stop: nothing lost)."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        for attempt in range(STOP_ATTEMPTS):
            if self.flush():
                break
            if attempt + 1 < STOP_ATTEMPTS:
                time.sleep(STOP_RETRY_SECONDS)
        else:
            with self._lock:
                lost, self._rows = len(self._rows), []
            self._drop(lost, "the database refused the last batch at stop")
        _open.discard(self)

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=f"funnel-batch-{self._service}",
                                                    daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        delay = self.interval_seconds
        while not self._stopping.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping.is_set():
                return  # close() writes the rest
            delay = self.interval_seconds if self.flush() else min(delay * 2, MAX_RETRY_SECONDS)

    def _drop(self, count: int, why: str) -> None:
        if count:
            FUNNEL_ROWS_DROPPED.labels(self._service).inc(count)
            log.error("%d view-only funnel rows dropped: %s", count, why)


_open: weakref.WeakSet[FunnelBatcher] = weakref.WeakSet()


def close_all() -> None:
    """Write every batcher's waiting rows: at process exit, and from gunicorn's worker_exit."""
    for batcher in list(_open):
        batcher.close()


atexit.register(close_all)
