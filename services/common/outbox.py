"""Transactional outbox: a state change and the events it causes commit together.

Each service has its own `outbox_messages` table (a concrete class built on
`OutboxMixin` in the service's models). A relay worker delivers unpublished
rows at least once; consumers de-duplicate on the event id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from persistence.db import UTCDateTime


class OutboxMixin:
    __tablename__ = "outbox_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # After a failed delivery: not before this (backoff counted from the attempt).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


def publish(
    session: Session,
    model: type[OutboxMixin],
    topic: str,
    payload: dict[str, Any],
    occurred_at: datetime,
) -> str:
    """Add an event to the current transaction's outbox; returns its id."""
    event_id = str(uuid.uuid4())
    session.add(
        model(  # type: ignore[call-arg]
            id=event_id, topic=topic, payload=payload, occurred_at=occurred_at, attempts=0
        )
    )
    return event_id
