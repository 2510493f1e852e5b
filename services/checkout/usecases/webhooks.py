"""Stripe webhooks: verified on the raw body, stored once by event id, and
dispatched to one small handler per event type.

Handlers move orders with the same idempotent `apply_charge` the purchase
path uses, so a duplicate delivery or a late `payment_failed` after a
`succeeded` leaves the same final state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from funnel.telemetry import Traffic
from services.checkout.adapters.models import BillingAccount, Order, StripeEvent
from services.checkout.adapters.payments import ChargeResult
from services.checkout.domain.orders import OrderStatus
from services.checkout.runtime import Checkout
from services.checkout.usecases.settlement import apply_charge, lock_order
from services.common.errors import Malformed
from services.common.service import ServiceUnitOfWork

Handler = Callable[[Checkout, ServiceUnitOfWork, dict[str, Any]], str]


def _order_for_intent(uow: ServiceUnitOfWork, intent: dict[str, Any]) -> Order | None:
    order = _locate_order(uow, intent)
    if order is not None:
        # What the order's settlement records belongs to its buyer's traffic (a load
        # test's, demo traffic's), not to Stripe's call, which says nothing of it.
        uow.traffic = Traffic(order.traffic)
    return order


def _locate_order(uow: ServiceUnitOfWork, intent: dict[str, Any]) -> Order | None:
    order_id = uow.session.scalar(select(Order.id).where(Order.stripe_payment_intent_id == intent["id"]))
    if order_id is not None:
        return lock_order(uow, order_id)
    # The event can beat our own write of the intent id (between charge and
    # settle): fall back to the order id we put in the metadata, but only for an
    # order that has no intent yet and matches the amount and the customer.
    raw = str((intent.get("metadata") or {}).get("order_id", ""))
    if not raw.isdigit() or uow.session.get(Order, int(raw)) is None:
        return None
    order = lock_order(uow, int(raw))
    if order.stripe_payment_intent_id is not None or order.total != intent.get("amount"):
        return None
    account = uow.session.get(BillingAccount, order.billing_account_id)
    if account is None or account.stripe_customer_id != intent.get("customer"):
        return None
    return order


def _intent_succeeded(app: Checkout, uow: ServiceUnitOfWork, intent: dict[str, Any]) -> str:
    order = _order_for_intent(uow, intent)
    if order is None:
        return "ignored: no order"
    before = order.status
    apply_charge(app, uow, order, ChargeResult("succeeded", intent["id"]))
    return f"order {order.id}: {before} -> {order.status}"


def _intent_failed(app: Checkout, uow: ServiceUnitOfWork, intent: dict[str, Any]) -> str:
    order = _order_for_intent(uow, intent)
    if order is None:
        return "ignored: no order"
    before = order.status
    error = intent.get("last_payment_error") or {}
    if error.get("code") == "authentication_required" and order.status == OrderStatus.REQUIRES_ACTION:
        # Off-session 3-D Secure: Stripe calls it a failure, the buyer is still authenticating.
        return f"order {order.id}: awaiting authentication"
    apply_charge(app, uow, order, ChargeResult(
        "declined", intent["id"], None, error.get("decline_code") or error.get("code"),
        error.get("message")))
    return f"order {order.id}: {before} -> {order.status}"


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _intent_succeeded,
    "payment_intent.payment_failed": _intent_failed,
}


def receive(app: Checkout, uow: ServiceUnitOfWork, payload: bytes, signature: str | None) -> str:
    try:
        event = app.payments.construct_event(payload, signature)
    except Exception as exc:  # bad signature, stale timestamp, or not JSON
        raise Malformed("invalid_signature", "Invalid webhook signature",
                        "The Stripe-Signature header does not match the body.") from exc
    with uow:
        if uow.session.get(StripeEvent, event["id"]) is not None:
            return "duplicate"
        row = StripeEvent(id=event["id"], type=event["type"], payload=event, received_at=uow.now)
        uow.session.add(row)
        try:
            uow.session.flush()
        except IntegrityError:
            return "duplicate"  # a concurrent delivery of the same event won
        handler = HANDLERS.get(event["type"])
        row.outcome = handler(app, uow, event["data"]["object"])[:100] if handler else "unhandled"
        row.processed_at = uow.now
        uow.commit()
        return row.outcome
