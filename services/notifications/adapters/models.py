"""Notifications's tables. Only the notifications service writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from funnel.exposures import ExposureMixin
from funnel.telemetry import FunnelEventMixin
from messaging.inbox import InboxMixin
from persistence.db import BigIntPK, UTCDateTime
from services.common.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class FunnelEventRow(FunnelEventMixin, Base):
    pass


class ExposureRow(ExposureMixin, Base):
    pass


class InboxEvent(InboxMixin, Base):
    pass


class Notification(Base):
    """One message to one person. The unique dedupe key (not a check-then-insert)
    is the guarantee that nothing is scheduled twice, however often the event
    that caused it is delivered.

    status: scheduled -> sending (claimed by a worker) -> sent | failed, back to
    scheduled after a temporary failure; canceled when it no longer applies.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
        Index("ix_notifications_status_send_after", "status", "send_after"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(255))
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)  # everything the template needs
    send_after: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    traffic: Mapped[str] = mapped_column(String(16), default="real")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
