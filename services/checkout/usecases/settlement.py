"""What an order becomes when news of its payment arrives, from the purchase
request, the confirm call after 3-D Secure, or a Stripe webhook.

`apply_charge` is idempotent and order-independent: a completed order stays
completed; money that arrives for an order that can no longer be provisioned
(the namespace was bought meanwhile, or the discount ran out during 3-D
Secure) is refunded, never kept silently. Every caller locks the order with
`lock_order` (namespace row first, then order, as opening an order does), so
two paths can neither both provision nor deadlock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from contracts import events
from funnel.telemetry import Step
from services.checkout.adapters.models import (
    BillingAccount,
    Namespace,
    Order,
    PackPurchase,
    PaymentMethod,
    Subscription,
    SubscriptionAddOn,
)
from services.checkout.adapters.payments import ChargeResult
from services.checkout.domain import orders
from services.checkout.domain.orders import CLOSED, OrderStatus
from services.checkout.domain.renewal import renewal_quote
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.runtime import Checkout
from services.checkout.usecases import discounts, seats
from services.checkout.usecases.renewals import facts_of
from services.checkout.usecases.views import order_view, subscription_view
from services.common.errors import Conflict, DomainError, PaymentFailed, not_found
from services.common.service import ServiceUnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurchaseResult:
    """Where a purchase stands: completed (with its subscription), or waiting
    for 3-D Secure (`requires_action`, with the client secret) or for the
    payment to go through (`pending`)."""
    status: OrderStatus
    order: dict[str, Any]
    subscription: dict[str, Any] | None = None
    client_secret: str | None = None
    next_step: str | None = None


@dataclass(frozen=True)
class PurchaseRefused:
    """The purchase ended without provisioning (declined, refunded, replaced).
    Returned, not raised: the order's final state commits with the answer."""
    error: DomainError


Settled = PurchaseResult | PurchaseRefused


def lock_order(uow: ServiceUnitOfWork, order_id: int) -> Order:
    """Lock an order for a state change: its namespace row first, then the order."""
    namespace_id = uow.session.scalar(select(Order.namespace_id).where(Order.id == order_id))
    if namespace_id is None:
        raise not_found("order", order_id)
    uow.session.execute(select(Namespace.id).where(Namespace.id == namespace_id).with_for_update())
    order = uow.session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                               .execution_options(populate_existing=True))
    assert order is not None
    return order


def apply_charge(app: Checkout, uow: ServiceUnitOfWork, order: Order, charge: ChargeResult) -> Settled:
    if order.status == OrderStatus.COMPLETED:
        return completed_outcome(uow, order)
    if charge.payment_intent_id and not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id = charge.payment_intent_id
    if charge.status == "succeeded":
        # Charged for the order's total (a webhook for another amount never gets here).
        order.amount_charged = order.total
        return _complete(app, uow, order)
    if order.status in CLOSED:
        return current_outcome(uow, order)  # late news of a closed order changes nothing
    if charge.status in ("requires_action", "processing"):
        if order.status != OrderStatus.REQUIRES_ACTION:
            order.status = orders.require_action(order.status).status
            uow.track(Step.THREE_DS_REQUIRED, user_id=order.user_id, namespace_id=order.namespace_id,
                      order_id=order.id)
        return PurchaseResult(OrderStatus.REQUIRES_ACTION, order_view(order),
                              client_secret=charge.client_secret,
                              next_step=f"Authenticate the payment with Stripe.js, then POST "
                                        f"/orders/{order.id}/confirm.")
    order.status = orders.decline(order.status).status
    order.failure_code = charge.decline_code or "card_declined"
    order.failure_message = charge.message
    uow.track(Step.PURCHASE_FAILED, user_id=order.user_id, namespace_id=order.namespace_id,
              order_id=order.id, reason=order.failure_code, **funnel_properties(order))
    return current_outcome(uow, order)


def current_outcome(uow: ServiceUnitOfWork, order: Order) -> Settled:
    """The answer that describes the order as it is now."""
    if order.status == OrderStatus.COMPLETED:
        return completed_outcome(uow, order)
    if order.status == OrderStatus.FAILED and order.refunded:
        return PurchaseRefused(Conflict(order.failure_code or "purchase_refunded", "Purchase refunded",
                                        order.failure_message, order_id=order.id, refunded=True))
    if order.status == OrderStatus.FAILED:
        return PurchaseRefused(PaymentFailed(
            "card_declined", "Card declined",
            f"{order.failure_message or 'Your card was declined.'} Nothing was charged; "
            "add another card and try again with a new Idempotency-Key.",
            decline_code=order.failure_code, order_id=order.id))
    if order.status in CLOSED:  # canceled or abandoned
        return PurchaseRefused(Conflict("order_superseded", "Order replaced",
                                        "A newer purchase for this namespace replaced this order; "
                                        "nothing was kept from it.", order_id=order.id))
    return PurchaseResult(OrderStatus(order.status), order_view(order), client_secret=None,
                          next_step="The payment is being processed; ask again shortly.")


def completed_outcome(uow: ServiceUnitOfWork, order: Order,
                      sub: Subscription | None = None) -> PurchaseResult:
    if sub is None and (order.subscription_id or order.upgrades_subscription_id):
        sub = uow.session.get(Subscription, order.subscription_id or order.upgrades_subscription_id)
    if sub is None:
        sub = uow.session.scalar(select(Subscription).where(Subscription.first_order_id == order.id))
    return PurchaseResult(OrderStatus.COMPLETED, order_view(order),
                          subscription=subscription_view(sub) if sub else None)


def _complete(app: Checkout, uow: ServiceUnitOfWork, order: Order) -> Settled:
    # Locked: a renewal charging this subscription meanwhile finishes first (or waits).
    active = uow.session.scalar(select(Subscription).where(
        Subscription.namespace_id == order.namespace_id, Subscription.status == SubscriptionStatus.ACTIVE)
        .with_for_update().execution_options(populate_existing=True))
    if order.status in CLOSED or not _still_priced_right(order, active):
        # A replaced order paid late, or the namespace changed under this order
        # (bought, upgraded or renewed by another): keep that, return this money.
        if order.kind == "expansion":
            return _refund(app, uow, order, Conflict(
                "subscription_changed", "Subscription changed",
                "The subscription was renewed or ended while this was being paid for; ask for a new "
                "quote."))
        return _refund(app, uow, order, Conflict("already_subscribed", "Namespace already subscribed",
            "This namespace was bought or changed by another order meanwhile."))
    if order.discount_code and not discounts.is_redeemed(uow.session, order.id):
        # Completed after 3-D Secure: the code's use is taken only now.
        try:
            with uow.session.begin_nested():
                discounts.redeem(uow, order)
        except DomainError as rejection:
            return _refund(app, uow, order, rejection)
    if order.kind == "expansion":
        return _complete_expansion(app, uow, order, active)
    addons = [line for line in order.lines if line["kind"] == "addon"]
    if active is not None:
        return _complete_upgrade(app, uow, order, active, addons)
    subscription = Subscription(
        namespace_id=order.namespace_id, billing_account_id=order.billing_account_id,
        plan=order.plan, seats=order.seats, term_start=order.term_start, term_end=order.term_end,
        auto_renew=True, status=SubscriptionStatus.ACTIVE, first_order_id=order.id, created_at=uow.now,
        updated_at=uow.now,
        addons=[SubscriptionAddOn(sku=line["sku"], seats=line["quantity"]) for line in addons])
    uow.session.add(subscription)
    namespace = uow.session.get(Namespace, order.namespace_id)
    assert namespace is not None
    namespace.plan = order.plan
    seats.reprice(uow.session, namespace, uow.now)
    order.completed_at = uow.now
    order.failure_code = order.failure_message = None
    uow.session.flush()
    order.subscription_id = subscription.id
    receipt: events.OrderCompleted = {
        **order_view(order), **_recipient(uow, order), "order_id": order.id, "user_id": order.user_id,
        "billing_account_id": order.billing_account_id, "namespace_path": namespace.path,
        "card": _card(uow, order),
        **_ledger_facts(uow, order),
    }
    created: events.SubscriptionChanged = {
        **subscription_view(subscription), "subscription_id": subscription.id,
        "billing_account_id": order.billing_account_id, "namespace_path": namespace.path,
        "features": app.catalog.features_for(order.plan, tuple(a["sku"] for a in addons)),
        "changed_at": uow.now.isoformat(),
    }
    _save(uow, order, orders.complete(order.status, receipt, created, upgrade=False))
    uow.track(Step.PURCHASE_COMPLETED, user_id=order.user_id, namespace_id=order.namespace_id,
              order_id=order.id, plan=order.plan, seats=order.seats, total=order.total,
              discount_code=order.discount_code, **funnel_properties(order))
    return completed_outcome(uow, order, subscription)


def _still_priced_right(order: Order, active: Subscription | None) -> bool:
    """Does the namespace still look as it did when the order was priced?"""
    if order.kind == "expansion":
        # Packs without a subscription need none; the rest needs the same term
        # (seats only grow within a term, so the add-on limit still holds).
        return order.expands_subscription_id is None or (
            active is not None and active.id == order.expands_subscription_id
            and active.term_end == order.term_end)
    if order.upgrades_subscription_id is None:
        return active is None
    return (active is not None and active.id == order.upgrades_subscription_id
            and active.plan == order.upgrade_from_plan and active.term_end == order.term_end)


def _complete_upgrade(app: Checkout, uow: ServiceUnitOfWork, order: Order, sub: Subscription,
                      addons: list[dict[str, Any]]) -> PurchaseResult:
    """Same term, higher plan, maybe more seats and add-ons."""
    before = sub.plan
    sub.plan, sub.seats, sub.updated_at = order.plan, order.seats, uow.now
    for line in addons:
        held = next((a for a in sub.addons if a.sku == line["sku"]), None)
        if held is None:
            sub.addons.append(SubscriptionAddOn(sku=line["sku"], seats=line["quantity"]))
        else:
            held.seats = max(held.seats, line["quantity"])
    namespace = uow.session.get(Namespace, order.namespace_id)
    assert namespace is not None
    namespace.plan = order.plan
    seats.reprice(uow.session, namespace, uow.now)
    order.completed_at, order.subscription_id = uow.now, sub.id
    uow.session.flush()
    receipt: events.OrderCompleted = {
        **order_view(order), **_recipient(uow, order), "order_id": order.id, "user_id": order.user_id,
        "billing_account_id": order.billing_account_id, "namespace_path": namespace.path,
        "upgrade_from": before, **_ledger_facts(uow, order),
    }
    upgraded: events.SubscriptionChanged = {
        **subscription_view(sub), "subscription_id": sub.id, "plan_before": before,
        "billing_account_id": order.billing_account_id, "namespace_path": namespace.path,
        "features": app.catalog.features_for(sub.plan, tuple(a.sku for a in sub.addons)),
        "changed_at": uow.now.isoformat(),
    }
    _save(uow, order, orders.complete(order.status, receipt, upgraded, upgrade=True))
    uow.track(Step.PURCHASE_COMPLETED, user_id=order.user_id, namespace_id=order.namespace_id,
              order_id=order.id, plan=order.plan, seats=order.seats, total=order.total,
              upgrade_from=before, discount_code=order.discount_code, **funnel_properties(order))
    return PurchaseResult(OrderStatus.COMPLETED, order_view(order), subscription=subscription_view(sub))


def _complete_expansion(app: Checkout, uow: ServiceUnitOfWork, order: Order,
                        sub: Subscription | None) -> PurchaseResult:
    """What the order added is the namespace's at once: seats, add-on seats,
    storage on the subscription (renewed with it) or packs on the namespace."""
    namespace = uow.session.get(Namespace, order.namespace_id)
    assert namespace is not None
    for line in order.lines:
        if line["kind"] == "seats" and sub is not None:
            sub.seats += line["quantity"]
        elif line["kind"] == "addon" and sub is not None:
            held = next((a for a in sub.addons if a.sku == line["sku"]), None)
            if held is None:
                sub.addons.append(SubscriptionAddOn(sku=line["sku"], seats=line["quantity"]))
            else:
                held.seats += line["quantity"]
        elif line["kind"] == "pack":
            pack = app.catalog.packs[line["sku"]]
            on_sub = sub if pack.recurring and order.expands_subscription_id else None
            if on_sub is not None:
                on_sub.storage_packs += line["quantity"]
            uow.session.add(PackPurchase(
                namespace_id=order.namespace_id, order_id=order.id, sku=pack.id, quantity=line["quantity"],
                units=pack.size * line["quantity"], subscription_id=on_sub.id if on_sub else None,
                expires_on=order.term_end if pack.recurring else None, created_at=uow.now))
    if sub is not None and order.expands_subscription_id:
        sub.updated_at = uow.now
        order.subscription_id = sub.id
        uow.session.flush()
        # The receipt states what the renewal now costs, as a reminder would: the
        # renewal charges it and names anything that changes it later.
        # The same facts the reminders and the charge price with, a scheduled change included.
        f = facts_of(uow.session, [sub.id])[sub.id]
        order.renewal_quote = renewal_quote(app.catalog, f.term(), f.billable).snapshot()
    order.completed_at = uow.now
    order.failure_code = order.failure_message = None
    uow.session.flush()
    receipt: events.OrderCompleted = {
        **order_view(order), **_recipient(uow, order), "order_id": order.id, "user_id": order.user_id,
        "billing_account_id": order.billing_account_id, "namespace_path": namespace.path,
        "card": _card(uow, order), "renewal": order.renewal_quote, **_ledger_facts(uow, order)}
    expanded = None
    if sub is not None and order.expands_subscription_id:
        grown: events.SubscriptionExpanded = {
            **subscription_view(sub), "subscription_id": sub.id,
            "billing_account_id": order.billing_account_id, "namespace_path": namespace.path,
            "order_id": order.id, "changed_at": uow.now.isoformat(),
            "features": app.catalog.features_for(sub.plan, tuple(a.sku for a in sub.addons)),
            "added": [{"kind": line["kind"], "sku": line["sku"], "quantity": line["quantity"]}
                      for line in order.lines]}
        expanded = grown
    _save(uow, order, orders.complete_expansion(order.status, receipt, expanded))
    uow.track(Step.PURCHASE_COMPLETED, user_id=order.user_id, namespace_id=order.namespace_id,
              order_id=order.id, plan=order.plan, seats=order.seats, total=order.total,
              discount_code=order.discount_code, **funnel_properties(order))
    return PurchaseResult(OrderStatus.COMPLETED, order_view(order),
                          subscription=subscription_view(sub) if sub is not None else None)


def funnel_properties(order: Order) -> dict[str, Any]:
    """What a funnel step says about the order's kind and what it bought: `duo_pro`
    lets an analysis count Duo Pro purchases (the duo-pro-upsell experiment)."""
    skus = {line["sku"] for line in order.lines}
    props: dict[str, Any] = {"kind": order.kind, "duo_pro": "duo_pro" in skus}
    if order.kind == "expansion" and order.lines:
        first = order.lines[0]
        props |= {"expansion": "seats" if first["kind"] == "seats" else
                  first["sku"] if first["kind"] == "pack" else "addon",
                  "sku": first["sku"], "quantity": first["quantity"]}
    return props


def _card(uow: ServiceUnitOfWork, order: Order) -> dict[str, Any] | None:
    card = uow.session.get(PaymentMethod, order.payment_method_id) if order.payment_method_id else None
    return {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month,
            "exp_year": card.exp_year} if card else None


def _save(uow: ServiceUnitOfWork, order: Order, transition: orders.Transition) -> None:
    order.status = transition.status
    for event in transition.events:
        uow.publish(event.topic, dict(event.payload))


def _ledger_facts(uow: ServiceUnitOfWork, order: Order) -> dict[str, Any]:
    """What the experiment analysis reads from a completed order: its kind and the
    variations its buyer was in at the time of purchase."""
    return {"kind": order.kind, "variations": uow.variations(order.user_id, order.namespace_id)}


def _recipient(uow: ServiceUnitOfWork, order: Order) -> dict[str, str]:
    """Who gets the receipt: the billing account's contact."""
    account = uow.session.get(BillingAccount, order.billing_account_id)
    return {"email": account.email, "company": account.company} if account else {}


def _refund(app: Checkout, uow: ServiceUnitOfWork, order: Order, reason: DomainError) -> Settled:
    """Money arrived for an order that can't be provisioned: give it back.

    Called with the order locked; the refund's idempotency key makes a repeat
    (a second webhook, a retry after a crash) harmless at Stripe."""
    if order.stripe_payment_intent_id and order.total > 0:
        app.payments.refund(order.stripe_payment_intent_id, idempotency_key=f"refund-order-{order.id}")
    log.warning("order %s refunded: %s", order.id, reason.code)
    order.status = orders.refund(order.status).status
    order.refunded = True
    order.refunded_amount = order.amount_charged
    order.failure_code = reason.code
    order.failure_message = f"{reason.detail} Your payment was refunded in full."
    uow.track(Step.PURCHASE_FAILED, user_id=order.user_id, namespace_id=order.namespace_id,
              order_id=order.id, reason=reason.code, refunded=True, **funnel_properties(order))
    return current_outcome(uow, order)
