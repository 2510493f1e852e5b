"""An injectable UTC clock: business time never comes from datetime.now() directly.

Tests use FixedClock and move it; `make run` can use an OffsetClock so a
developer can watch renewals and expiries happen (the way billing systems
offer a test clock).
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class OffsetClock:
    """Real time plus an offset kept in a file, shared by every process of
    `make run`, so `make timetravel` moves all services' business time at
    once. The file is re-read only when it changes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def offset(self) -> timedelta:
        try:
            info = os.stat(self._path)
        except FileNotFoundError:
            return timedelta(0)
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            if stamp != self._stamp:
                with open(self._path, encoding="utf-8") as fh:
                    self._offset = timedelta(seconds=float(json.load(fh).get("offset_seconds", 0)))
                self._stamp = stamp
            return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset()

    def advance(self, delta: timedelta) -> datetime:
        total = self.offset() + delta
        tmp = f"{self._path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"offset_seconds": total.total_seconds()}, fh)
        os.replace(tmp, self._path)  # readers see the old offset or the new one, never half a file
        with self._lock:
            self._offset, self._stamp = total, None
        return self.now()
