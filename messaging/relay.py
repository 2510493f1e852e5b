"""Outbox relay: delivers a service's unpublished outbox rows to the services
that subscribe to their topics, at least once (consumers de-duplicate on the
event id with the inbox, messaging/inbox.py).

On PostgreSQL rows are claimed with `FOR UPDATE SKIP LOCKED`, so several relays
can run side by side without delivering a row twice; on SQLite one relay runs.
A row that some subscriber did not take stays unpublished and is retried
after a backoff counted from that attempt (`next_attempt_at`). So does a row
the relay itself fails on (a bug, a payload it can not send): the error is
recorded on that row and the batch goes on, so one bad row never holds up the
rows behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import requests
from sqlalchemy import Select, or_, select

from messaging.inbox import EVENTS_PATH, Envelope
from persistence.db import is_postgres
from services.common import sweeps
from services.common.outbox import OutboxMixin
from services.common.service import ServiceContext

log = logging.getLogger(__name__)

FIRST_BACKOFF = timedelta(seconds=2)
MAX_BACKOFF = timedelta(seconds=300)


@dataclass(frozen=True)
class Subscriber:
    name: str
    url: str  # base URL; events go to {url}/internal/events
    topics: tuple[str, ...]  # topic prefixes: "subscription." takes "subscription.created", "" all

    def wants(self, topic: str) -> bool:
        return any(topic.startswith(prefix) for prefix in self.topics)


def backoff(attempts: int) -> timedelta:
    """How long after its last failed attempt a row that failed `attempts` times is due again."""
    return sweeps.backoff(attempts, FIRST_BACKOFF, MAX_BACKOFF)


def envelope(row: OutboxMixin, source: str) -> Envelope:
    return Envelope(id=row.id, topic=row.topic, source=source, occurred_at=row.occurred_at.isoformat(),
                    payload=row.payload)


def relay_once(ctx: ServiceContext, subscribers: Sequence[Subscriber], *, token: str | Callable[[str], str],
               batch: int = 100, http: requests.Session | None = None, timeout: float = 5.0) -> int:
    """Deliver up to `batch` due rows, oldest first; returns how many were published.

    `token` is what the relay shows each subscriber: a function of the
    subscriber's name, each service's credential being for that service alone.

    The rows stay locked until the batch's transaction ends, so another relay
    skips them rather than sending them again.
    """
    client = http or requests.Session()
    headers = {s.name: {"Authorization": f"Bearer {token if isinstance(token, str) else token(s.name)}"}
               for s in subscribers}
    published = 0
    try:
        with ctx.session_factory() as session, session.begin():
            rows = session.scalars(_claim(ctx.outbox_model, ctx.clock.now(), batch,
                                          locking=is_postgres(session))).all()
            # A subscriber that cannot be reached is not tried again in this batch:
            # a dead host would otherwise cost a connection attempt (or a timeout) per row.
            unreachable: dict[str, str] = {}
            for row in rows:
                try:
                    errors = _relay_row(ctx.name, row, subscribers, client, headers, timeout, unreachable)
                except Exception as exc:  # this row's problem: recorded on it, the batch goes on
                    errors = [f"relay: {sweeps.describe(exc)}"]
                    first = not row.attempts
                    log.log(logging.ERROR if first else logging.WARNING,
                            "event %s (%s) could not be relayed (attempt %d): %s", row.id, row.topic,
                            (row.attempts or 0) + 1, sweeps.describe(exc),
                            exc_info=exc if first or log.isEnabledFor(logging.DEBUG) else None,
                            extra={"event_id": row.id, "topic": row.topic})
                if errors:
                    row.attempts = (row.attempts or 0) + 1
                    row.next_attempt_at = ctx.clock.now() + backoff(row.attempts)
                    row.last_error = "; ".join(errors)[:1000]
                else:
                    row.published_at = ctx.clock.now()
                    published += 1
    finally:
        if http is None:
            client.close()
    return published


def _relay_row(source: str, row: OutboxMixin, subscribers: Sequence[Subscriber], client: requests.Session,
               headers: dict[str, dict[str, str]], timeout: float, unreachable: dict[str, str]) -> list[str]:
    """Deliver one row to the subscribers that want it; the reasons of those that did not take it."""
    event = envelope(row, source)
    errors = []
    for subscriber in subscribers:
        if not subscriber.wants(row.topic):
            continue
        error = unreachable.get(subscriber.name) or _deliver(
            client, subscriber, event, headers[subscriber.name], timeout, unreachable)
        if error:
            errors.append(error)
    return errors


def _claim(model: type[OutboxMixin], now: datetime, batch: int, *, locking: bool) -> Select[Any]:
    query = (select(model).where(model.published_at.is_(None),
                                 or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now))
             .order_by(model.occurred_at, model.id).limit(batch))
    return query.with_for_update(skip_locked=True) if locking else query


def _deliver(http: requests.Session, subscriber: Subscriber, event: Envelope, headers: dict[str, str],
             timeout: float, unreachable: dict[str, str]) -> str | None:
    """POST one event; None if taken, else a short reason (no URL, no token)."""
    try:
        body = cast(dict[str, Any], event)  # a TypedDict of JSON values, which mypy sees as any Mapping
        response = http.post(f"{subscriber.url.rstrip('/')}{EVENTS_PATH}", json=body, headers=headers,
                             timeout=timeout)
    except requests.RequestException as exc:
        reason = f"{subscriber.name}: unreachable ({type(exc).__name__})"
        unreachable[subscriber.name] = reason
        log.warning("event %s (%s) not delivered to %s: %s; skipping it for the rest of this batch",
                    event["id"], event["topic"], subscriber.name, type(exc).__name__)
        return reason
    if 200 <= response.status_code < 300:
        return None
    code = _problem_code(response)
    log.warning("event %s (%s) not delivered to %s: HTTP %d%s", event["id"], event["topic"],
                subscriber.name, response.status_code, f" {code}" if code else "")
    return f"{subscriber.name}: HTTP {response.status_code}" + (f" {code}" if code else "")


def _problem_code(response: requests.Response) -> str | None:
    """The consumer's problem code (e.g. service_only), which says more than the status."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code[:64] if isinstance(code, str) else None
