"""Duo seat assignment: Owners give members of the namespace a seat of Duo Pro
or Duo Enterprise, one at a time or up to `max_bulk_assignments` at once, all
or nothing, never more than the seats purchased plus those an active trial
grants.

Assigning locks the namespace row (as a purchase does), so concurrent
requests take turns and the count they check is the count they leave: 50
requests for 10 free seats give exactly 10. The person who started a trial
holds a seat (`hold_for_trial`), a member who leaves loses theirs (`forget`),
and when seats are lowered (a renewal, a trial that ends) the newest
assignments go first and the Owners are told (`cut_back`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from contracts import events
from identity.auth import Principal
from services.checkout.adapters.models import DuoAssignment, Membership, Namespace, NamespaceTrial, User
from services.checkout.domain.catalog import Catalog
from services.checkout.runtime import Checkout
from services.checkout.usecases import access, seats
from services.checkout.usecases.reconciliation import owner_emails
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.service import ServiceUnitOfWork

SORTS = ("name", "role", "assigned")
# Owners first when sorting by role, as the platform lists members.
ROLE_ORDER = {"owner": 0, "maintainer": 1, "developer": 2, "reporter": 3, "guest": 4}


def duo_skus(catalog: Catalog) -> list[str]:
    return [sku for sku in catalog.addons if sku.startswith("duo_")]


def _sku(catalog: Catalog, sku: str) -> str:
    if sku not in duo_skus(catalog):
        raise NotFound("unknown_addon", "Unknown add-on",
                       f"{sku!r} is not a Duo add-on: choose one of {', '.join(duo_skus(catalog))}.")
    return sku


def seat_limit(session: Session, namespace_id: int, sku: str, now: datetime) -> int:
    """Seats purchased on the active subscription plus those an active trial grants."""
    sub = seats.active_subscription(session, namespace_id)
    purchased = next((a.seats for a in (sub.addons if sub else ()) if a.sku == sku), 0)
    trial = session.scalar(select(func.coalesce(func.sum(NamespaceTrial.seats), 0)).where(
        NamespaceTrial.namespace_id == namespace_id, NamespaceTrial.grants_addon == sku,
        NamespaceTrial.status == "active", NamespaceTrial.ends_at > now)) or 0
    return purchased + int(trial)


def _assigned(session: Session, namespace_id: int, sku: str) -> set[int]:
    return set(session.scalars(select(DuoAssignment.user_id).where(
        DuoAssignment.namespace_id == namespace_id, DuoAssignment.sku == sku)))


def _summary(session: Session, namespace_id: int, sku: str, now: datetime) -> dict[str, Any]:
    limit, assigned = seat_limit(session, namespace_id, sku, now), len(_assigned(session, namespace_id, sku))
    return {"namespace_id": namespace_id, "sku": sku, "seats": limit, "assigned": assigned,
            "free": max(0, limit - assigned)}


def members(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int, sku: str, *,
            sort: str = "name", descending: bool = False, role: str | None = None,
            assigned: bool | None = None, search: str | None = None) -> dict[str, Any]:
    """The namespace's members with whether each holds a seat of `sku`, filtered and sorted."""
    with uow:
        namespace = access.load_namespace(uow.session, namespace_id, principal)
        _sku(app.catalog, sku)
        holders = _assigned(uow.session, namespace_id, sku)
        rows = uow.session.execute(select(Membership.user_id, Membership.role, User.name, User.email).join(
            User, User.id == Membership.user_id).where(Membership.namespace_id == namespace_id)).all()
        found = [{"user_id": uid, "name": name, "email": email, "role": r, "assigned": uid in holders}
                 for uid, r, name, email in rows
                 if (role is None or r == role) and (assigned is None or (uid in holders) == assigned)
                 and (not search or search.casefold() in f"{name} {email}".casefold())]
        keys = {"name": lambda m: (m["name"].casefold(), m["user_id"]),
                "role": lambda m: (ROLE_ORDER.get(m["role"], 9), m["name"].casefold(), m["user_id"]),
                "assigned": lambda m: (not m["assigned"], m["name"].casefold(), m["user_id"])}
        found.sort(key=keys[sort], reverse=descending)
        return {**_summary(uow.session, namespace_id, sku, uow.now), "namespace_path": namespace.path,
                "members": found}


def assign(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int, sku: str,
           user_ids: list[int]) -> dict[str, Any]:
    """Give each of `user_ids` a seat, all or nothing (those holding one already keep it)."""
    with uow:
        _owned(app, uow, principal, namespace_id, sku, user_ids)
        wanted = set(user_ids)
        strangers = sorted(wanted - set(uow.session.scalars(select(Membership.user_id).where(
            Membership.namespace_id == namespace_id, Membership.user_id.in_(wanted)))))
        if strangers:
            raise Invalid("not_a_member", "Not a member",
                          f"Only members of the namespace get a seat; not members: {strangers[:10]}.",
                          user_ids=strangers)
        held = _assigned(uow.session, namespace_id, sku)
        new = sorted(wanted - held)
        limit = seat_limit(uow.session, namespace_id, sku, uow.now)
        free = max(0, limit - len(held))
        if len(new) > free:
            raise Conflict("duo_seats_exhausted", "Not enough seats",
                           f"{len(new)} members need a seat and {free} of {limit} are free; nobody was "
                           "assigned.", seats=limit, seats_free=free)
        for user_id in new:
            uow.session.add(DuoAssignment(namespace_id=namespace_id, sku=sku, user_id=user_id,
                                          assigned_at=uow.now))
        uow.session.flush()
        summary = _summary(uow.session, namespace_id, sku, uow.now)
        uow.commit()
        return {**summary, "changed": new}


def unassign(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int, sku: str,
             user_ids: list[int]) -> dict[str, Any]:
    """Take the seats of `user_ids` back (those without one are no change)."""
    with uow:
        _owned(app, uow, principal, namespace_id, sku, user_ids)
        gone = sorted(set(user_ids) & _assigned(uow.session, namespace_id, sku))
        uow.session.execute(delete(DuoAssignment).where(
            DuoAssignment.namespace_id == namespace_id, DuoAssignment.sku == sku,
            DuoAssignment.user_id.in_(gone)))
        summary = _summary(uow.session, namespace_id, sku, uow.now)
        uow.commit()
        return {**summary, "changed": gone}


def _owned(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int, sku: str,
           user_ids: list[int]) -> None:
    # The namespace row lock makes concurrent assignments take turns.
    access.load_namespace(uow.session, namespace_id, principal, owner=True, lock=True)
    _sku(app.catalog, sku)
    if len(set(user_ids)) > app.seat_rules.max_bulk_assignments:
        raise Invalid("too_many_users", "Too many users",
                      f"At most {app.seat_rules.max_bulk_assignments} users per request.")


def entitlements(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
                 user_id: int) -> dict[str, Any]:
    """Whether a user has Duo in a namespace (what the platform asks before a Duo feature)."""
    with uow:
        if not ("service" in principal.roles or principal.is_admin or principal.user_id == user_id):
            raise Forbidden("not_yourself", "Only your own entitlements",
                            "Ask for your own entitlements, or use a service token.")
        seats.readable(uow.session, namespace_id, principal)
        member = uow.session.get(Membership, (namespace_id, user_id))
        held = set(uow.session.scalars(select(DuoAssignment.sku).where(
            DuoAssignment.namespace_id == namespace_id, DuoAssignment.user_id == user_id)))
        return {"namespace_id": namespace_id, "user_id": user_id, "member": member is not None,
                "role": member.role if member else None, "billable": bool(member and member.billable),
                "duo": {sku: sku in held for sku in duo_skus(app.catalog)}}


# --- kept in step with the rest ------------------------------------------------------------
def forget(session: Session, namespace_id: int, user_ids: Iterable[int]) -> None:
    """Members who left lose their seats."""
    session.execute(delete(DuoAssignment).where(DuoAssignment.namespace_id == namespace_id,
                                                DuoAssignment.user_id.in_(list(user_ids))))


def hold_for_trial(session: Session, trial: NamespaceTrial, now: datetime) -> None:
    """The person who started an add-on trial holds one of its seats."""
    if trial.grants_addon is None or trial.seat_holder is None or trial.status != "active":
        return
    if session.get(Membership, (trial.namespace_id, trial.seat_holder)) is None:
        return
    exists = session.scalar(select(DuoAssignment.id).where(
        DuoAssignment.namespace_id == trial.namespace_id, DuoAssignment.sku == trial.grants_addon,
        DuoAssignment.user_id == trial.seat_holder))
    if exists is None:
        session.add(DuoAssignment(namespace_id=trial.namespace_id, sku=trial.grants_addon,
                                  user_id=trial.seat_holder, assigned_at=now))


def cut_back(uow: ServiceUnitOfWork, namespace_id: int, sku: str, change_id: str) -> list[int]:
    """Seats were lowered: the newest assignments above the limit go, and the Owners are told."""
    limit = seat_limit(uow.session, namespace_id, sku, uow.now)
    newest_first = list(uow.session.scalars(select(DuoAssignment).where(
        DuoAssignment.namespace_id == namespace_id, DuoAssignment.sku == sku)
        .order_by(DuoAssignment.assigned_at.desc(), DuoAssignment.id.desc())))
    over = newest_first[:max(0, len(newest_first) - limit)]
    if not over:
        return []
    for row in over:
        uow.session.delete(row)
    removed = sorted(row.user_id for row in over)
    path = uow.session.get(Namespace, namespace_id).path  # type: ignore[union-attr]
    for email in owner_emails(uow.session, namespace_id):
        notice: events.DuoSeatsRemoved = {
            "namespace_id": namespace_id, "namespace_path": path, "email": email, "sku": sku, "seats": limit,
            "removed_user_ids": removed, "change_id": change_id}
        uow.publish("subscription.duo_seats_removed", notice)
    return removed
