"""Trials as checkout knows them: from the trials service's events only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from contracts import events
from messaging.inbox import Handler
from services.checkout.adapters.models import NamespaceTrial
from services.checkout.usecases import duo
from services.common.service import ServiceUnitOfWork


def _apply(uow: ServiceUnitOfWork, payload: events.TrialChanged) -> str:
    """Apply a trial's change if it is newer than what we hold (its version says so)."""
    row = uow.session.scalar(select(NamespaceTrial).where(
        NamespaceTrial.namespace_id == payload["namespace_id"], NamespaceTrial.kind == payload["kind"])
        .with_for_update())
    version = int(payload["version"])
    if row is None:
        row = NamespaceTrial(namespace_id=payload["namespace_id"], kind=payload["kind"], version=0)
        uow.session.add(row)
    elif version <= row.version:
        return f"stale: version {version} after {row.version}"
    row.version = version
    row.status = payload["status"]
    row.ends_at = datetime.fromisoformat(payload["ends_at"])
    row.grants_plan = payload.get("grants_plan")
    row.grants_addon = payload.get("grants_addon")
    row.seats = payload.get("seats")
    row.seat_holder = payload.get("seat_holder", row.seat_holder)
    row.last_event_at = datetime.fromisoformat(payload["occurred_at"])
    if row.grants_addon is not None:
        if row.status == "active":
            duo.hold_for_trial(uow.session, row, uow.now)
        else:  # its seats are gone: assignments above what is purchased go, newest first
            uow.session.flush()
            duo.cut_back(uow, row.namespace_id, row.grants_addon, f"trial-{row.kind}-{row.status}-v{version}")
    return f"trial {payload['kind']} on {payload['namespace_id']}: {row.status} (v{version})"


HANDLERS: dict[str, Handler] = {
    topic: _apply for topic in ("trial.started", "trial.extended", "trial.reactivated",
                                "trial.expired", "trial.converted")
}


def active_trials(uow: ServiceUnitOfWork, namespace_id: int) -> list[NamespaceTrial]:
    return list(uow.session.scalars(select(NamespaceTrial).where(
        NamespaceTrial.namespace_id == namespace_id, NamespaceTrial.status == "active",
        NamespaceTrial.ends_at > uow.now)))


def converted_seat_holders(uow: ServiceUnitOfWork, namespace_id: int) -> dict[str, list[int]]:
    """{add-on: [user]}: who held a seat in an add-on trial that converted (they keep it)."""
    rows = uow.session.execute(select(NamespaceTrial.grants_addon, NamespaceTrial.seat_holder).where(
        NamespaceTrial.namespace_id == namespace_id, NamespaceTrial.status == "converted"))
    holders: dict[str, list[int]] = {}
    for sku, user in rows:
        if sku is not None and user is not None:  # an add-on trial's, with its seat holder
            holders.setdefault(sku, []).append(user)
    return holders
