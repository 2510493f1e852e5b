"""Growing an existing customer: quote and buy seats, a Duo add-on, or packs.

An expansion is bought exactly like a first purchase (`purchases.purchase`:
the Idempotency-Key, the namespace lock, one open order per namespace, the
off-session charge, 3-D Secure and declines); only its pricing and what
completion provisions differ (settlement.py: `_complete_expansion`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from funnel.telemetry import Step
from identity.auth import Principal
from services.checkout.adapters.models import Namespace, Order, PackPurchase, Subscription
from services.checkout.domain.expansions import (
    Expansion,
    ExpansionQuote,
    Holdings,
    price_expansion,
)
from services.checkout.runtime import Checkout
from services.checkout.usecases import access, discounts
from services.checkout.usecases.views import line_view
from services.common.errors import DomainError
from services.common.service import ServiceUnitOfWork


@dataclass(frozen=True)
class ExpansionRequest:
    namespace_id: int
    expansion: Expansion
    discount_code: str | None = None
    payment_method_id: int | None = None

    def funnel(self) -> dict[str, Any]:
        return {"kind": "expansion", "expansion": self.expansion.kind.value, "sku": self.expansion.sku,
                "quantity": self.expansion.quantity}

    def priced_order(self, app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                     namespace: Namespace) -> Order:
        quote, outcome = _quote(app, uow, principal, namespace, self.expansion, self.discount_code)
        if outcome is not None and outcome.rejection is not None:
            raise outcome.rejection
        return Order(
            namespace_id=namespace.id, user_id=principal.user_id, plan=quote.plan, seats=quote.after.seats,
            currency=quote.currency, subtotal=quote.subtotal, discount_total=quote.discount_total,
            total=quote.total, lines=[line_view(line) for line in quote.lines],
            catalog_version=quote.catalog_version,
            discount_code=quote.discount.code if quote.discount else None, term_start=quote.term_start,
            term_end=quote.term_end or quote.term_start, kind="expansion",
            expands_subscription_id=quote.subscription_id if quote.term_end else None,
            heading=quote.heading)


def holdings(session: Session, namespace_id: int, today: date) -> Holdings:
    """Compute minutes bought (they never expire) and storage held today."""
    minutes, gib = session.execute(
        select(func.coalesce(func.sum(PackPurchase.units).filter(PackPurchase.sku == "compute_minutes"), 0),
               func.coalesce(func.sum(PackPurchase.units).filter(PackPurchase.sku == "storage"), 0))
        .outerjoin(Subscription, Subscription.id == PackPurchase.subscription_id)
        .where(PackPurchase.namespace_id == namespace_id,
               or_(PackPurchase.sku == "compute_minutes", PackPurchase.expires_on > today,
                   # a subscription's storage follows its term (renewals move it on)
                   Subscription.status == "active"))).one()
    return Holdings(int(minutes), int(gib))


def storage_expires_on(session: Session, namespace_id: int, today: date) -> date | None:
    """When the storage held now first runs out: its subscription's term end, else
    the earliest pack's end."""
    return session.scalar(
        select(func.min(func.coalesce(Subscription.term_end, PackPurchase.expires_on)))
        .select_from(PackPurchase)
        .outerjoin(Subscription, Subscription.id == PackPurchase.subscription_id)
        .where(PackPurchase.namespace_id == namespace_id, PackPurchase.sku == "storage",
               or_(PackPurchase.expires_on > today, Subscription.status == "active")))


def _quote(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace: Namespace,
           expansion: Expansion, code: str | None
           ) -> tuple[ExpansionQuote, discounts.CodeOutcome | None]:
    facts = access.namespace_facts(uow.session, namespace)
    today = uow.now.date()
    held = holdings(uow.session, namespace.id, today)
    quote = price_expansion(app.catalog, expansion, facts, namespace.path, held, today)
    outcome = None
    if code:
        outcome = discounts.evaluate_code(uow, principal, quote, code)
        if outcome.applied:
            quote = price_expansion(app.catalog, expansion, facts, namespace.path, held, today,
                                    outcome.applied)
    return quote, outcome


def quote_expansion(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
                    expansion: Expansion, code: str | None
                    ) -> tuple[ExpansionQuote, discounts.CodeOutcome | None]:
    """The price of an expansion (Owners: they are the ones who can buy it).
    Records the funnel's "chose expansion", and "quoted" once it has a price."""
    funnel = ExpansionRequest(namespace_id, expansion, code).funnel()
    with uow:
        uow.telemetry_only()
        namespace = access.load_namespace(uow.session, namespace_id, principal, owner=True)
        uow.track(Step.EXPANSION_CHOSEN, user_id=principal.user_id, namespace_id=namespace_id, **funnel)
        try:
            quote, outcome = _quote(app, uow, principal, namespace, expansion, code)
        except DomainError as refused:
            # The choice is worth counting even when the rules refuse it (only the funnel is written).
            uow.track(Step.EXPANSION_REFUSED, user_id=principal.user_id, namespace_id=namespace_id,
                      reason=refused.code, **funnel)
            uow.commit()
            raise
        uow.track(Step.EXPANSION_QUOTED, user_id=principal.user_id, namespace_id=namespace_id,
                  total=quote.total, **funnel)
        uow.commit()
        return quote, outcome


def quote_view(quote: ExpansionQuote) -> dict[str, Any]:
    after = quote.after
    return {
        "namespace_id": quote.namespace_id, "kind": quote.expansion.kind.value, "sku": quote.expansion.sku,
        "quantity": quote.expansion.quantity, "heading": quote.heading, "currency": quote.currency,
        "catalog_version": quote.catalog_version, "subscription_id": quote.subscription_id,
        "term_start": quote.term_start.isoformat(),
        "term_end": quote.term_end.isoformat() if quote.term_end else None,
        "days_left": quote.days_left, "term_days": quote.term_days,
        "lines": [line_view(line) for line in quote.lines], "subtotal": quote.subtotal,
        "discount_total": quote.discount_total, "total": quote.total,
        "discount_code": quote.discount.code if quote.discount else None,
        "after": {"plan": after.plan, "seats": after.seats,
                  "addons": [{"sku": sku, "seats": seats} for sku, seats in after.addons],
                  "compute_minutes": after.compute_minutes, "storage_gib": after.storage_gib},
    }
