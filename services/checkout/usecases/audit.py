"""The billing audit: who changed what about a namespace's billing, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from identity.auth import Principal
from services.checkout.adapters.models import BillingAuditEntry
from services.common.service import ServiceUnitOfWork


def audit(uow: ServiceUnitOfWork, principal: Principal, action: str, *, namespace_id: int | None,
          subscription_id: int | None = None, order_id: int | None = None, reason: str | None = None,
          **details: Any) -> None:
    """One append-only line, in the transaction of the change it records."""
    uow.session.add(BillingAuditEntry(
        namespace_id=namespace_id, subscription_id=subscription_id, order_id=order_id,
        actor_id=principal.user_id, action=action, reason=reason, details=details, created_at=uow.now))


def refunds_of(uow: ServiceUnitOfWork, order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each order's refunds, as the audit trail recorded them."""
    found: dict[int, list[dict[str, Any]]] = {}
    for a in uow.session.scalars(select(BillingAuditEntry).where(
            BillingAuditEntry.action == "order_refunded", BillingAuditEntry.order_id.in_(order_ids))
            .order_by(BillingAuditEntry.id)):
        assert a.order_id is not None
        found.setdefault(a.order_id, []).append({"amount": a.details.get("amount"),
                                                 "at": a.created_at.isoformat(),
                                                 "reason": a.details.get("full_reason") or a.reason})
    return found
