"""Who may do what with a namespace: members read, Owners buy."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import Membership, Namespace, Subscription
from services.checkout.domain.pricing import CurrentTerm, NamespaceFacts
from services.common.auth import Principal
from services.common.problems import Problem, not_found


def load_namespace(session: Session, namespace_id: int, principal: Principal,
                   *, owner: bool = False, lock: bool = False) -> Namespace:
    """The namespace, if the caller may see it (404 otherwise, so ids don't leak).

    `lock` takes the row lock that serialises purchases for one namespace.
    """
    namespace = session.get(Namespace, namespace_id, with_for_update=lock)
    membership = session.get(Membership, (namespace_id, principal.user_id)) if namespace else None
    if namespace is None or (membership is None and not principal.is_admin):
        raise not_found("namespace", namespace_id)
    if owner and (membership is None or membership.role != "owner"):
        raise Problem(403, "not_owner", "Owner role required",
                      f"Only Owners of {namespace.path} can buy for it.")
    return namespace


def billable_members(session: Session, namespace_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Membership)
        .where(Membership.namespace_id == namespace_id, Membership.billable.is_(True))
    ) or 0


def namespace_facts(session: Session, namespace: Namespace) -> NamespaceFacts:
    sub = session.scalar(select(Subscription).where(Subscription.namespace_id == namespace.id,
                                                    Subscription.status == "active"))
    current = CurrentTerm(sub.id, sub.plan, sub.seats, sub.term_start, sub.term_end,
                          tuple((a.sku, a.seats) for a in sub.addons)) if sub else None
    return NamespaceFacts(namespace.id, namespace.is_top_level, namespace.plan,
                          billable_members(session, namespace.id), current)
