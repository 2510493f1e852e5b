"""Trials' tables. Only the trials service writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from funnel.exposures import ExposureMixin
from funnel.telemetry import FunnelEventMixin
from messaging.inbox import InboxMixin
from persistence.db import BigIntPK, UTCDateTime
from services.common.outbox import OutboxMixin
from services.common.sweeps import SweepFailureMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class FunnelEventRow(FunnelEventMixin, Base):
    pass


class ExposureRow(ExposureMixin, Base):
    pass


class SweepFailure(SweepFailureMixin, Base):
    pass


class Trial(Base):
    """One trial of one kind per namespace, ever: the unique constraint (not a
    check-then-insert) is what makes a double click or two Owners racing
    produce one trial."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("namespace_id", "kind", name="uq_trials_namespace_kind"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(BigInteger)
    namespace_path: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)  # active, expired, converted
    plan_before: Mapped[str] = mapped_column(String(32))  # the paid plan it returns to
    seats: Mapped[int | None] = mapped_column(Integer)
    started_by: Mapped[int] = mapped_column(BigInteger)
    started_by_email: Mapped[str] = mapped_column(String(254))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    reactivated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Raised by every published change: consumers apply an event only if newer.
    version: Mapped[int] = mapped_column(Integer, default=0)
    experiments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # variants that shaped it


class TrialAudit(Base):
    """Who changed a trial by hand, and why (support's extensions and reactivations)."""

    __tablename__ = "trial_audit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor_user_id: Mapped[int] = mapped_column(BigInteger)
    actor_email: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(Text)
    ends_at_before: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at_after: Mapped[datetime] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class InboxEvent(InboxMixin, Base):
    pass


class DirectoryNamespace(Base):
    """Trials' read model of a namespace, fed by checkout's `directory.*` and
    `subscription.*` events (services/trials/usecases/directory.py), so that
    eligibility never asks checkout. Two clocks order its changes: the
    platform's (`changed_at`, `last_event`) for the group's path and parent,
    checkout's (`plan_changed_at`) for the plan and add-ons."""

    __tablename__ = "directory_namespaces"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # group or user
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    destroyed: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the platform's time
    last_event: Mapped[str] = mapped_column(String(32))
    plan: Mapped[str] = mapped_column(String(32), default="free")
    # {subscription id: [add-on skus]}: what checkout reports as `addons_purchased` is their union.
    addons: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    plan_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # checkout's time
    billable_members: Mapped[int] = mapped_column(Integer, default=0)


class DirectoryMember(Base):
    """A member's role in a namespace as the platform said it last; `role` None once
    removed (the row stays, so a late add brings nobody back)."""

    __tablename__ = "directory_members"

    namespace_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the platform's time
    last_event: Mapped[str] = mapped_column(String(32))
