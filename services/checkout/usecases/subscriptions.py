"""Reading a namespace's subscription and what it is entitled to."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import bindparam, select

from identity.auth import Principal
from services.checkout.adapters.models import Membership, Namespace, Order, Subscription, SubscriptionAddOn
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.runtime import Checkout
from services.checkout.usecases import access, expansions
from services.checkout.usecases.trial_events import active_trials, converted_seat_holders
from services.checkout.usecases.views import paid_by_view, subscription_view
from services.common.errors import NotFound
from services.common.service import ServiceUnitOfWork


def active_subscription(uow: ServiceUnitOfWork, namespace_id: int) -> Subscription | None:
    return uow.session.scalar(select(Subscription).where(
        Subscription.namespace_id == namespace_id, Subscription.status == SubscriptionStatus.ACTIVE))


def get_subscription(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> dict[str, Any]:
    with uow:
        namespace = access.load_namespace(uow.session, namespace_id, principal)
        sub = active_subscription(uow, namespace_id)
        if sub is None:
            raise NotFound("no_subscription", "No subscription",
                           f"{namespace.path} has no active paid subscription (plan: {namespace.plan}).")
        paid_by = uow.session.scalars(select(Order).where(Order.subscription_id == sub.id)
                                      .order_by(Order.completed_at, Order.id))
        return {**subscription_view(sub), "orders": [paid_by_view(o) for o in paid_by]}


def get_entitlements(app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                     namespace_id: int) -> dict[str, Any]:
    """The paid plan and add-ons, lifted by any active trial (known from trial events)."""
    with uow:
        namespace = access.load_namespace(uow.session, namespace_id, principal)
        sub = active_subscription(uow, namespace_id)
        trials = active_trials(uow, namespace_id)
        plan = namespace.plan
        holders = converted_seat_holders(uow, namespace_id)
        addons: list[dict[str, Any]] = [{"sku": a.sku, "seats": a.seats, "trial": False,
                                         "seat_holders": holders.get(a.sku, [])}
                                        for a in sub.addons] if sub else []
        ranks = {p.id: p.rank for p in app.catalog.plans.values()}
        for trial in trials:
            if trial.grants_plan in ranks and ranks[trial.grants_plan] > ranks.get(plan, 0):
                plan = trial.grants_plan
            if trial.grants_addon and all(a["sku"] != trial.grants_addon for a in addons):
                addons.append({"sku": trial.grants_addon, "seats": trial.seats or 0, "trial": True,
                               "seat_holders": [trial.seat_holder] if trial.seat_holder else []})
        today = uow.now.date()
        held = expansions.holdings(uow.session, namespace.id, today)
        return {
            "compute_minutes": {"purchased": held.compute_minutes, "balance": held.compute_minutes},
            "storage": {"purchased_gib": held.storage_gib,
                        "expires_on": _iso(expansions.storage_expires_on(uow.session, namespace.id, today))},
            "namespace_id": namespace.id, "path": namespace.path,
            "plan": plan, "paid_plan": sub.plan if sub else None,
            "seats": sub.seats if sub else None,
            "billable_members": access.billable_members(uow.session, namespace.id),
            "addons": addons,
            "trials": [{"kind": t.kind, "ends_at": t.ends_at, "seats": t.seats} for t in trials],
            "features": app.catalog.features_for(plan, tuple(a["sku"] for a in addons)),
        }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


# Trials asks for this on every eligibility check: the billable count and the add-ons
# ever bought (one row per add-on, or one row with NULL) in one round trip, built once.
_BILLABLE_AND_ADDONS = (
    select(access.billable_count(Namespace.id).scalar_subquery(), SubscriptionAddOn.sku)
    .select_from(Namespace)
    .outerjoin(Subscription, Subscription.namespace_id == Namespace.id)
    .outerjoin(SubscriptionAddOn, SubscriptionAddOn.subscription_id == Subscription.id)
    .where(Namespace.id == bindparam("ns")))


def describe_namespace(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> dict[str, Any]:
    with uow:
        ns, membership = access.load_with_membership(uow.session, namespace_id, principal)
        role = membership.role if membership is not None else None
        rows = uow.session.execute(_BILLABLE_AND_ADDONS, {"ns": ns.id}).all()
        return {"id": ns.id, "path": ns.path, "name": ns.name, "kind": ns.kind,
                "parent_id": ns.parent_id, "plan": ns.plan, "role": role,
                "billable_members": rows[0][0] if rows else 0,
                "addons_purchased": sorted({sku for _, sku in rows if sku is not None})}


def my_namespaces(uow: ServiceUnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    """The namespaces the caller is a member of, with their role."""
    with uow:
        # One statement: the billable count is a correlated subquery, not a query per namespace.
        rows = uow.session.execute(
            select(Namespace, Membership.role, access.billable_count(Namespace.id).scalar_subquery())
            .join(Membership)
            .where(Membership.user_id == principal.user_id).order_by(Namespace.path)).all()
        return [{"id": ns.id, "path": ns.path, "name": ns.name, "kind": ns.kind,
                 "parent_id": ns.parent_id, "plan": ns.plan, "role": role,
                 "billable_members": billable or 0}
                for ns, role, billable in rows]
