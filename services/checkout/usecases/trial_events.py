"""Trials as checkout knows them: from the trials service's events only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from services.checkout.adapters.models import NamespaceTrial
from services.common.inbox import Handler
from services.common.service import ServiceUnitOfWork


def _apply(uow: ServiceUnitOfWork, payload: dict[str, Any]) -> str:
    occurred = datetime.fromisoformat(payload["occurred_at"])
    row = uow.session.scalar(select(NamespaceTrial).where(
        NamespaceTrial.namespace_id == payload["namespace_id"], NamespaceTrial.kind == payload["kind"]))
    if row is None:
        row = NamespaceTrial(namespace_id=payload["namespace_id"], kind=payload["kind"],
                             last_event_at=occurred, status=payload["status"],
                             ends_at=datetime.fromisoformat(payload["ends_at"]))
        uow.session.add(row)
    elif occurred < row.last_event_at:
        return "stale: a newer event was applied"
    row.status = payload["status"]
    row.ends_at = datetime.fromisoformat(payload["ends_at"])
    row.grants_plan = payload.get("grants_plan")
    row.grants_addon = payload.get("grants_addon")
    row.seats = payload.get("seats")
    row.seat_holder = payload.get("seat_holder", row.seat_holder)
    row.last_event_at = occurred
    return f"trial {payload['kind']} on {payload['namespace_id']}: {row.status}"


HANDLERS: dict[str, Handler] = {
    topic: _apply for topic in ("trial.started", "trial.extended", "trial.reactivated",
                                "trial.expired", "trial.converted")
}


def active_trials(uow: ServiceUnitOfWork, namespace_id: int) -> list[NamespaceTrial]:
    return list(uow.session.scalars(select(NamespaceTrial).where(
        NamespaceTrial.namespace_id == namespace_id, NamespaceTrial.status == "active",
        NamespaceTrial.ends_at > uow.now)))
