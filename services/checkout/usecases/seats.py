"""Seats as the platform sees them: who holds a billable seat and since when,
seats in use, the max used this term, seats owed, the preview before adding
members, and the namespace's seat settings.

Seat holdings are written in the same transaction as the membership they
follow (`follow`, called by the directory use case and when a plan change
makes Guests billable or not), not by a consumer of the `directory.*` events:
the count must be exact at the moment a hook is applied, because "block seat
overages" refuses that very hook, and a consumer would lag behind it (and
could see the events of one membership in another order than the platform's
times, which the directory tables have already sorted out). The holdings use
the platform's times, so the usage series and each quarter's max are where
they happened even when a hook came late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from identity.auth import Principal
from services.checkout.adapters.models import (
    DuoAssignment,
    Membership,
    Namespace,
    NamespaceSeatSettings,
    NamespaceTrial,
    SeatHolding,
    SeatSettingChange,
    Subscription,
    User,
)
from services.checkout.domain import directory as D
from services.checkout.domain import seats as S
from services.checkout.domain.catalog import Catalog
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.runtime import Checkout
from services.checkout.usecases import access
from services.common.errors import Conflict, Forbidden, Invalid, not_found
from services.common.service import ServiceUnitOfWork

BLOCK_OVERAGES, EXCLUDED = "block_overages", "reconciliation_excluded"


# --- holdings, kept with the memberships -------------------------------------------------
def follow(session: Session, namespace_id: int, user_id: int, role: str, billable: bool,
           at: datetime) -> None:
    """A membership was written: open a holding if the member now takes a seat,
    close it if they no longer do."""
    held = session.scalar(select(SeatHolding).where(
        SeatHolding.namespace_id == namespace_id, SeatHolding.user_id == user_id,
        SeatHolding.left_at.is_(None)))
    if billable and held is None:
        session.add(SeatHolding(namespace_id=namespace_id, user_id=user_id, role=role, took_at=at))
    elif billable and held is not None:
        held.role = role
    elif held is not None:
        held.left_at = max(at, held.took_at)


def reprice(session: Session, namespace: Namespace, at: datetime) -> None:
    """The top-level `namespace` changed plan: Guests take a seat on every plan
    but Ultimate, so who is billable is decided again for it and its subgroups."""
    prefix = namespace.path + "/"
    rows = session.execute(select(Membership).join(Namespace, Namespace.id == Membership.namespace_id).where(
        or_(Namespace.id == namespace.id, Namespace.path.startswith(prefix, autoescape=True)))).scalars()
    for membership in rows:
        billable = D.is_billable(membership.role, namespace.plan)
        if billable != membership.billable:
            membership.billable = billable
            follow(session, membership.namespace_id, membership.user_id, membership.role, billable, at)


def holdings(session: Session, namespace_id: int, since: datetime) -> list[S.Holding]:
    """The holdings of `namespace_id` open at or after `since`."""
    rows = session.execute(select(SeatHolding.user_id, SeatHolding.took_at, SeatHolding.left_at).where(
        SeatHolding.namespace_id == namespace_id,
        or_(SeatHolding.left_at.is_(None), SeatHolding.left_at > since)))
    return [S.Holding(user_id, took, left) for user_id, took, left in rows]


def active_subscription(session: Session, namespace_id: int, lock: bool = False) -> Subscription | None:
    query = select(Subscription).where(Subscription.namespace_id == namespace_id,
                                       Subscription.status == SubscriptionStatus.ACTIVE)
    return session.scalar(query.with_for_update() if lock else query)


def settings_of(session: Session, namespace_id: int) -> NamespaceSeatSettings | None:
    return session.get(NamespaceSeatSettings, namespace_id)


def readable(session: Session, namespace_id: int, principal: Principal) -> Namespace:
    """The namespace for a member, an admin, or the platform (a `service` token: it
    asks before adding members, and for who has Duo)."""
    if "service" in principal.roles:
        namespace = session.get(Namespace, namespace_id)
        if namespace is None:
            raise not_found("namespace", namespace_id)
        return namespace
    return access.load_namespace(session, namespace_id, principal)


# --- usage --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Usage:
    namespace: Namespace
    subscription: Subscription | None
    term_start: datetime  # where "this term" starts: the subscription's, else the namespace's creation
    holdings: list[S.Holding]

    @property
    def seats(self) -> int:
        return self.subscription.seats if self.subscription else 0

    @property
    def in_use(self) -> int:
        return sum(1 for h in self.holdings if h.left_at is None)

    @property
    def max_used(self) -> int:
        return max(S.max_used(self.holdings, self.term_start, None), self.in_use)

    @property
    def owed(self) -> int:
        return S.seats_owed(self.max_used, self.seats) if self.subscription else 0

    def quarter(self, today: Any) -> tuple[int, datetime]:
        """The current quarter of the term and when it started."""
        assert self.subscription is not None
        quarter = S.quarter_on(self.subscription.term_start, today)
        return quarter, S.midnight(S.quarter_start(self.subscription.term_start, quarter))


def usage(session: Session, namespace: Namespace, lock: bool = False) -> Usage:
    sub = active_subscription(session, namespace.id, lock=lock)
    start = S.midnight(sub.term_start) if sub else namespace.created_at
    return Usage(namespace, sub, start, holdings(session, namespace.id, start))


def utilization(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int
                ) -> dict[str, Any]:
    """Seats bought, in use, max used this term and owed; Duo seats assigned of purchased."""
    with uow:
        namespace = readable(uow.session, namespace_id, principal)
        seen = usage(uow.session, namespace)
        settings = settings_of(uow.session, namespace_id)
        return {"namespace_id": namespace_id, "namespace_path": namespace.path, "plan": namespace.plan,
                "seats_bought": seen.seats,
                "seats_in_use": seen.in_use, "max_seats_used": seen.max_used, "seats_owed": seen.owed,
                "term_start": seen.subscription.term_start.isoformat() if seen.subscription else None,
                "term_end": seen.subscription.term_end.isoformat() if seen.subscription else None,
                "block_overages": bool(settings and settings.block_overages),
                "reconciliation_excluded": bool(settings and settings.reconciliation_excluded),
                "duo": duo_seats(app.catalog, uow.session, namespace_id, seen.subscription, uow.now)}


def duo_seats(catalog: Catalog, session: Session, namespace_id: int, sub: Subscription | None,
              now: datetime) -> list[dict[str, Any]]:
    """Per Duo add-on: seats purchased, granted by an active trial, and assigned."""
    purchased = {a.sku: a.seats for a in (sub.addons if sub else ())}
    trials = {sku: n for sku, n in session.execute(
            select(NamespaceTrial.grants_addon, NamespaceTrial.seats).where(
        NamespaceTrial.namespace_id == namespace_id, NamespaceTrial.status == "active",
        NamespaceTrial.ends_at > now, NamespaceTrial.grants_addon.is_not(None)))}
    assigned = {sku: n for sku, n in session.execute(select(DuoAssignment.sku, func.count()).where(
        DuoAssignment.namespace_id == namespace_id).group_by(DuoAssignment.sku))}
    return [{"sku": sku, "purchased": purchased.get(sku, 0), "trial": trials.get(sku) or 0,
             "assigned": assigned.get(sku, 0)}
            for sku in catalog.addons if sku.startswith("duo_")]


def billable_members(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> list[dict[str, Any]]:
    """Who holds a seat now, since when, oldest first."""
    with uow:
        readable(uow.session, namespace_id, principal)
        rows = uow.session.execute(
            select(SeatHolding, User.name, User.email).join(User, User.id == SeatHolding.user_id).where(
                SeatHolding.namespace_id == namespace_id, SeatHolding.left_at.is_(None))
            .order_by(SeatHolding.took_at, SeatHolding.user_id)).all()
        return [{"user_id": h.user_id, "name": name, "email": email, "role": h.role,
                 "seat_taken_at": h.took_at.isoformat()} for h, name, email in rows]


def seat_history(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> list[dict[str, Any]]:
    """Every holding, current and past: who took a seat, when, and when they left."""
    with uow:
        readable(uow.session, namespace_id, principal)
        rows = uow.session.scalars(select(SeatHolding).where(SeatHolding.namespace_id == namespace_id)
                                   .order_by(SeatHolding.took_at, SeatHolding.id)).all()
        return [{"user_id": h.user_id, "role": h.role, "seat_taken_at": h.took_at.isoformat(),
                 "left_at": h.left_at.isoformat() if h.left_at else None} for h in rows]


def usage_series(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> dict[str, Any]:
    """Seats in use over the current term, one point per change (what the portal plots)."""
    with uow:
        namespace = readable(uow.session, namespace_id, principal)
        seen = usage(uow.session, namespace)
        points = S.series(seen.holdings, seen.term_start, None)
        return {"namespace_id": namespace_id, "term_start": seen.term_start.isoformat(),
                "seats_bought": seen.seats, "max_seats_used": seen.max_used,
                "points": [{"at": at.isoformat(), "seats_in_use": n} for at, n in points]}


# --- preview --------------------------------------------------------------------------------
def preview_add(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
                user_ids: list[int], role: str) -> dict[str, Any]:
    """What happens if these users are added with this role: whether seats owed
    rise, by how many, and what the next reconciliation would charge."""
    with uow:
        namespace = readable(uow.session, namespace_id, principal)
        seen = usage(uow.session, namespace)
        holders = {h.user_id for h in seen.holdings if h.left_at is None}
        takes_seat = D.is_billable(role, namespace.plan)
        new = len({u for u in user_ids if u not in holders}) if takes_seat else 0
        today = uow.now.date()
        answer: dict[str, Any] = {"namespace_id": namespace_id, "role": role, "takes_seat": takes_seat,
                                  "new_seats": new, "seats_bought": seen.seats, "seats_in_use": seen.in_use,
                                  "seats_in_use_after": seen.in_use + new, "currency": app.catalog.currency}
        if seen.subscription is None:
            return {**answer, "will_increase_overage": False, "additional_seats_owed": 0,
                    "seats_owed_before": 0, "seats_owed_after": 0, "amount": 0, "additional_amount": 0,
                    "reconciliation_date": None}
        sub = seen.subscription
        quarter, since = seen.quarter(today)
        quarter_max = max(S.max_used(seen.holdings, since, None), seen.in_use)
        preview = S.preview_add(sub.seats, seen.in_use, quarter_max, new, quarter,
                                app.catalog.plans[sub.plan].unit_amount)
        return {**answer, "will_increase_overage": preview.will_increase_overage,
                "additional_seats_owed": preview.additional_seats_owed,
                "seats_owed_before": preview.owed_before, "seats_owed_after": preview.owed_after,
                "amount": preview.amount_after, "additional_amount": preview.additional_amount,
                "reconciliation_date": S.quarter_end(sub.term_start, quarter).isoformat()}


# --- block seat overages ------------------------------------------------------------------
def refuse_overage(session: Session, namespace: Namespace, user_id: int) -> None:
    """Called before a member of `namespace` takes a seat they do not hold:
    refused while the namespace blocks overages and its paid seats are all used."""
    settings = settings_of(session, namespace.id)
    if settings is None or not settings.block_overages:
        return
    # Adds of different members to one namespace take turns here, so two can not
    # both take the last seat (the purchase lock: namespace first, then the rest).
    session.get(Namespace, namespace.id, with_for_update=True)
    sub = active_subscription(session, namespace.id)
    if sub is None:
        return
    in_use = session.scalar(select(func.count()).select_from(SeatHolding).where(
        SeatHolding.namespace_id == namespace.id, SeatHolding.left_at.is_(None),
        SeatHolding.user_id != user_id)) or 0
    reason = S.overage_refusal(namespace.path, sub.seats, in_use)
    if reason is not None:
        raise Conflict("seat_overage_blocked", "No seat left", reason, seats=sub.seats, seats_in_use=in_use)


def change_setting(uow: ServiceUnitOfWork, namespace_id: int, setting: str, value: bool,
                   by: int, reason: str | None) -> NamespaceSeatSettings:
    """Set one seat setting and audit the change (a change to the same value is no change)."""
    row = uow.session.get(NamespaceSeatSettings, namespace_id, with_for_update=True)
    if row is None:
        row = NamespaceSeatSettings(namespace_id=namespace_id, block_overages=False,
                                    reconciliation_excluded=False, updated_at=uow.now)
        uow.session.add(row)
    if getattr(row, setting) != value:
        setattr(row, setting, value)
        row.updated_at = uow.now
        uow.session.add(SeatSettingChange(namespace_id=namespace_id, setting=setting, value=value,
                                          reason=reason, changed_by=by, changed_at=uow.now))
    return row


def set_block_overages(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
                       enabled: bool) -> dict[str, Any]:
    """Owners only. Turning it on removes nobody: it refuses only later adds."""
    with uow:
        namespace = access.load_namespace(uow.session, namespace_id, principal, owner=True, lock=True)
        if not namespace.is_top_level:
            raise Invalid("not_top_level", "Not a top-level group",
                          "Seats are bought and counted on the top-level group.")
        row = change_setting(uow, namespace_id, BLOCK_OVERAGES, enabled, principal.user_id, None)
        uow.commit()
        return {"namespace_id": namespace_id, "block_overages": row.block_overages,
                "reconciliation_excluded": row.reconciliation_excluded}


def set_excluded(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int, excluded: bool,
                 reason: str) -> dict[str, Any]:
    """Admins: exclude a namespace from quarterly reconciliation (it trues up at renewal), with a reason."""
    if not principal.is_admin:
        raise Forbidden("admin_required", "Admin role required",
                        "Only admins exclude a namespace from reconciliation.")
    with uow:
        access.load_namespace(uow.session, namespace_id, principal, lock=True)
        row = change_setting(uow, namespace_id, EXCLUDED, excluded, principal.user_id, reason)
        uow.commit()
        return {"namespace_id": namespace_id, "block_overages": row.block_overages,
                "reconciliation_excluded": row.reconciliation_excluded}


def setting_changes(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> list[dict[str, Any]]:
    with uow:
        readable(uow.session, namespace_id, principal)
        rows = uow.session.scalars(select(SeatSettingChange).where(
            SeatSettingChange.namespace_id == namespace_id).order_by(SeatSettingChange.id)).all()
        return [{"setting": r.setting, "value": r.value, "reason": r.reason, "changed_by": r.changed_by,
                 "changed_at": r.changed_at.isoformat()} for r in rows]
