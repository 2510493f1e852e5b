"""Trials's tables. Only the trials service writes them."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from services.common.outbox import OutboxMixin
from services.common.telemetry import FunnelEventMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class FunnelEventRow(FunnelEventMixin, Base):
    pass
