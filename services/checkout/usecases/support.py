"""Support tooling for admins: find a customer's subscriptions and orders, read a
subscription's history, and refund an order in full or in part.

A refund goes through Stripe on an idempotency key made of the order and how much
was refunded before, so a repeated click gives back nothing twice; it is audited
(who, how much, why) and the billing contact gets a mail (`order.refunded`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from contracts import events
from funnel.telemetry import Step
from identity.auth import Principal
from services.checkout.adapters.models import (
    BillingAccount,
    BillingAuditEntry,
    Namespace,
    NamespaceTrial,
    Order,
    Renewal,
    RenewalNotice,
    Subscription,
    User,
)
from services.checkout.adapters.payments import PaymentProviderUnavailable, PaymentRejected
from services.checkout.runtime import Checkout
from services.checkout.usecases.audit import audit
from services.checkout.usecases.billing import PROVIDER_DOWN, PROVIDER_REJECTED
from services.checkout.usecases.campaigns import require_admin
from services.checkout.usecases.views import order_view, subscription_view
from services.common.errors import Conflict, Invalid, not_found
from services.common.service import ServiceUnitOfWork

FOUND_AT_MOST = 50


def search(uow: ServiceUnitOfWork, principal: Principal, *, namespace: str | None, email: str | None,
           order_id: int | None) -> list[dict[str, Any]]:
    """Namespaces matching a namespace id or path, a person's or billing contact's email,
    or an order id; each with its subscriptions and latest orders."""
    require_admin(principal)
    with uow:
        ids: set[int] = set()
        if namespace:
            ids |= set(uow.session.scalars(select(Namespace.id).where(or_(
                Namespace.path == namespace.strip().lower(),
                Namespace.id == (int(namespace) if namespace.isdigit() else -1)))))
        if email:
            wanted = email.strip().lower()
            accounts = select(BillingAccount.id).where(func.lower(BillingAccount.email) == wanted)
            people = select(User.id).where(func.lower(User.email) == wanted)
            ids |= set(uow.session.scalars(select(Subscription.namespace_id).where(
                Subscription.billing_account_id.in_(accounts))))
            ids |= set(uow.session.scalars(select(Order.namespace_id).where(or_(
                Order.billing_account_id.in_(accounts), Order.user_id.in_(people)))))
        if order_id is not None:
            ids |= set(uow.session.scalars(select(Order.namespace_id).where(Order.id == order_id)))
        found = uow.session.scalars(select(Namespace).where(Namespace.id.in_(ids)).order_by(Namespace.path)
                                    .limit(FOUND_AT_MOST))
        return [_customer(uow, ns) for ns in found]


def _customer(uow: ServiceUnitOfWork, ns: Namespace) -> dict[str, Any]:
    subs = uow.session.scalars(select(Subscription).where(Subscription.namespace_id == ns.id)
                               .order_by(Subscription.id.desc()))
    orders = uow.session.scalars(select(Order).where(Order.namespace_id == ns.id)
                                 .order_by(Order.id.desc()).limit(20))
    return {"namespace_id": ns.id, "namespace_path": ns.path, "plan": ns.plan,
            "subscriptions": [subscription_view(s) for s in subs],
            "orders": [order_view(o) for o in orders]}


def history(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> dict[str, Any]:
    """Everything that happened to a namespace's billing, oldest first: orders, renewals
    and dunning attempts, trials, reminders announced, and the audit trail."""
    require_admin(principal)
    with uow:
        ns = uow.session.get(Namespace, namespace_id)
        if ns is None:
            raise not_found("namespace", namespace_id)
        sub_ids = select(Subscription.id).where(Subscription.namespace_id == namespace_id)
        entries: list[dict[str, Any]] = []
        for o in uow.session.scalars(select(Order).where(Order.namespace_id == namespace_id)):
            entries.append({"at": o.created_at.isoformat(), "what": f"order_{o.status}", "order_id": o.id,
                            "detail": f"{o.kind} {o.plan}, {o.seats} seats, total {o.total}"
                                      + (f", {o.failure_code}" if o.failure_code else "")})
        for r in uow.session.scalars(select(Renewal).where(Renewal.subscription_id.in_(sub_ids))):
            entries.append({"at": r.updated_at.isoformat(), "what": f"renewal_{r.status}", "order_id": None,
                            "detail": f"renewal of {r.renewal_date.isoformat()}, attempt {r.attempts}"
                                      + (f", {r.last_error}" if r.last_error else "")})
        for n in uow.session.scalars(select(RenewalNotice).where(RenewalNotice.subscription_id.in_(sub_ids))):
            entries.append({"at": n.created_at.isoformat(), "what": "renewal_notice", "order_id": None,
                            "detail": f"{n.days_before} days before {n.renewal_date.isoformat()}"})
        trials = select(NamespaceTrial).where(NamespaceTrial.namespace_id == namespace_id)
        for t in uow.session.scalars(trials):
            entries.append({"at": t.last_event_at.isoformat(), "what": f"trial_{t.status}", "order_id": None,
                            "detail": f"{t.kind} trial, ends {t.ends_at.date().isoformat()}"})
        trail = select(BillingAuditEntry).where(BillingAuditEntry.namespace_id == namespace_id)
        for a in uow.session.scalars(trail):
            entries.append({"at": a.created_at.isoformat(), "what": a.action, "order_id": a.order_id,
                            "detail": f"by user {a.actor_id}" + (f": {a.reason}" if a.reason else "")})
        # A stable sort: entries of the same moment keep the order they were recorded in.
        return {"namespace_id": ns.id, "namespace_path": ns.path, "plan": ns.plan,
                "events": sorted(entries, key=lambda e: str(e["at"]))}


def refund(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, order_id: int, amount: int | None,
           reason: str) -> dict[str, Any]:
    """Give back `amount` cents of a charged order (what is left of it when None)."""
    require_admin(principal)
    with uow:
        order = uow.session.get(Order, order_id, with_for_update=True)
        if order is None:
            raise not_found("order", order_id)
        left = (order.amount_charged or 0) - (order.refunded_amount or 0)
        if not order.stripe_payment_intent_id or left <= 0:
            raise Conflict("nothing_to_refund", "Nothing to refund",
                           f"Order {order_id} has no charge left to refund ({left} cents).")
        amount = left if amount is None else amount
        if amount > left:
            raise Invalid("refund_too_large", "Refund too large",
                          f"At most {left} cents of order {order_id} can be refunded.", refundable=left)
        key = f"refund-order-{order.id}-from-{order.refunded_amount or 0}-{amount}"
        try:
            refund_id = app.payments.refund(order.stripe_payment_intent_id, idempotency_key=key,
                                            amount=amount)
        except PaymentProviderUnavailable as exc:
            raise PROVIDER_DOWN from exc
        except PaymentRejected as exc:
            raise PROVIDER_REJECTED from exc
        order.refunded_amount = (order.refunded_amount or 0) + amount
        order.refunded = order.refunded_amount >= order.amount_charged
        path = uow.session.scalar(select(Namespace.path).where(Namespace.id == order.namespace_id)) or ""
        account = uow.session.get(BillingAccount, order.billing_account_id)
        refunded: events.OrderRefunded = {
            "order_id": order.id, "namespace_id": order.namespace_id, "namespace_path": path,
            "email": account.email if account else "", "amount": amount, "currency": order.currency,
            "refunded_total": order.refunded_amount, "amount_charged": order.amount_charged,
            "reason": reason}
        uow.publish("order.refunded", refunded)
        audit(uow, principal, "order_refunded", namespace_id=order.namespace_id, order_id=order.id,
              reason=reason[:64], amount=amount, stripe_refund_id=refund_id, full_reason=reason)
        uow.track(Step.ORDER_REFUNDED, user_id=principal.user_id, namespace_id=order.namespace_id,
                  order_id=order.id, amount=amount)
        uow.commit()
        return order_view(order)
