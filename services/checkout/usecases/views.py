"""Plain-dict views of checkout's records: what the API returns and what an
idempotent replay repeats byte for byte."""

from __future__ import annotations

from typing import Any

from services.checkout.adapters.models import Order, PaymentMethod, Subscription
from services.checkout.domain.pricing import LineItem, Quote


def line_view(line: LineItem) -> dict[str, Any]:
    return {"sku": line.sku, "kind": line.kind, "description": line.description,
            "quantity": line.quantity, "unit_amount": line.unit_amount, "amount": line.amount,
            "discount": line.discount, "net": line.net}


def quote_view(quote: Quote) -> dict[str, Any]:
    return {
        "namespace_id": quote.namespace_id, "plan": quote.plan, "seats": quote.seats,
        "minimum_seats": quote.minimum_seats, "billable_members": quote.billable_members,
        "currency": quote.currency, "catalog_version": quote.catalog_version,
        "term_start": quote.term_start.isoformat(), "term_end": quote.term_end.isoformat(),
        "lines": [line_view(line) for line in quote.lines],
        "subtotal": quote.subtotal, "discount_total": quote.discount_total, "total": quote.total,
        "discount_code": quote.discount.code if quote.discount else None,
        "upgrades_subscription_id": quote.upgrade_of,
    }


def card_view(card: PaymentMethod) -> dict[str, Any]:
    return {"id": card.id, "brand": card.brand, "last4": card.last4, "exp_month": card.exp_month,
            "exp_year": card.exp_year, "is_default": card.is_default}


def order_view(order: Order) -> dict[str, Any]:
    return {
        "id": order.id, "namespace_id": order.namespace_id, "status": order.status,
        "plan": order.plan, "seats": order.seats, "currency": order.currency,
        "lines": order.lines, "subtotal": order.subtotal, "discount_total": order.discount_total,
        "total": order.total, "discount_code": order.discount_code,
        "term_start": order.term_start.isoformat(), "term_end": order.term_end.isoformat(),
        "upgrades_subscription_id": order.upgrades_subscription_id,
        "payment_intent_id": order.stripe_payment_intent_id,
        "amount_charged": order.amount_charged or 0,
        "failure_code": order.failure_code, "failure_message": order.failure_message,
        "refunded": bool(order.refunded), "refunded_amount": order.refunded_amount or 0,
        "subscription_id": order.subscription_id,
        "created_at": order.created_at.isoformat(),
        "completed_at": order.completed_at.isoformat() if order.completed_at else None,
    }


def order_kind(order: Order) -> str:
    return "upgrade" if order.upgrades_subscription_id else "purchase"


def paid_by_view(order: Order) -> dict[str, Any]:
    """An order as one line of a subscription's history."""
    return {"id": order.id, "kind": order_kind(order),
            "plan": order.plan, "seats": order.seats, "total": order.total,
            "amount_charged": order.amount_charged, "refunded_amount": order.refunded_amount,
            "completed_at": order.completed_at.isoformat() if order.completed_at else None}


def subscription_view(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id, "namespace_id": sub.namespace_id, "plan": sub.plan, "seats": sub.seats,
        "status": sub.status, "auto_renew": sub.auto_renew,
        "term_start": sub.term_start.isoformat(), "term_end": sub.term_end.isoformat(),
        "next_renewal_date": sub.term_end.isoformat() if sub.auto_renew else None,
        "addons": [{"sku": a.sku, "seats": a.seats} for a in sub.addons],
    }
