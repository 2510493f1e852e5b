"""Where a request's time went, for the `Server-Timing` header: database,
Stripe, and the rest (our own code). Each request gets its own tally."""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_tally: ContextVar[dict[str, float] | None] = ContextVar("server_timing", default=None)


def start() -> object:
    return _tally.set({"db": 0.0, "stripe": 0.0})


def add(kind: str, seconds: float) -> None:
    if (tally := _tally.get()) is not None:
        tally[kind] = tally.get(kind, 0.0) + seconds


def header(total: float, token: object) -> str:
    tally = _tally.get() or {}
    _tally.reset(token)  # type: ignore[arg-type]
    db, stripe = tally.get("db", 0.0), tally.get("stripe", 0.0)
    parts = [("db", db), ("stripe", stripe), ("app", max(0.0, total - db - stripe)), ("total", total)]
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in parts)


def time_queries(engine: Engine) -> None:
    """Count the time spent in every statement this engine runs."""

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, *_: Any) -> None:
        conn.info.setdefault("query_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, *_: Any) -> None:
        started = conn.info["query_started"].pop()
        add("db", time.perf_counter() - started)
