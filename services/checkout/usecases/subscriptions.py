"""Reading a namespace's subscription and what it is entitled to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.checkout.adapters.models import Subscription
from services.checkout.runtime import Checkout
from services.checkout.usecases import access
from services.checkout.usecases.views import subscription_view
from services.common.auth import Principal
from services.common.problems import Problem
from services.common.service import ServiceUnitOfWork


def _active(uow: ServiceUnitOfWork, namespace_id: int) -> Subscription | None:
    return uow.session.scalar(select(Subscription).where(
        Subscription.namespace_id == namespace_id, Subscription.status == "active"))


def get_subscription(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> dict[str, Any]:
    with uow:
        namespace = access.load_namespace(uow.session, namespace_id, principal)
        sub = _active(uow, namespace_id)
        if sub is None:
            raise Problem(404, "no_subscription", "No subscription",
                          f"{namespace.path} has no active paid subscription (plan: {namespace.plan}).")
        return subscription_view(sub)


def get_entitlements(app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                     namespace_id: int) -> dict[str, Any]:
    with uow:
        namespace = access.load_namespace(uow.session, namespace_id, principal)
        sub = _active(uow, namespace_id)
        addons = tuple(a.sku for a in sub.addons) if sub else ()
        return {
            "namespace_id": namespace.id, "path": namespace.path,
            "plan": namespace.plan, "paid_plan": sub.plan if sub else None,
            "seats": sub.seats if sub else None,
            "billable_members": access.billable_members(uow.session, namespace.id),
            "addons": [{"sku": a.sku, "seats": a.seats} for a in sub.addons] if sub else [],
            "features": app.catalog.features_for(namespace.plan, addons),
        }
