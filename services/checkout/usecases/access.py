"""Who may do what with a namespace: members read, Owners buy."""

from __future__ import annotations

from sqlalchemy import Select, SQLColumnExpression, and_, bindparam, func, select
from sqlalchemy.orm import Session, aliased, selectinload

from identity.auth import Principal
from services.checkout.adapters.models import BillingManager, Membership, Namespace, Subscription
from services.checkout.domain.portal import BillingRole, require_manager
from services.checkout.domain.pricing import CurrentTerm, NamespaceFacts
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.common.errors import Forbidden, not_found


def load_namespace(session: Session, namespace_id: int, principal: Principal,
                   *, owner: bool = False, lock: bool = False) -> Namespace:
    """The namespace, if the caller may see it (404 otherwise, so ids don't leak).

    `lock` takes the row lock that serialises purchases for one namespace.
    """
    return load_with_membership(session, namespace_id, principal, owner=owner, lock=lock)[0]


def load_with_membership(session: Session, namespace_id: int, principal: Principal, *,
                         owner: bool = False, lock: bool = False) -> tuple[Namespace, Membership | None]:
    """load_namespace, with the caller's membership (None for an admin who is not a member)."""
    if lock:
        namespace = session.get(Namespace, namespace_id, with_for_update=True)
        membership = session.get(Membership, (namespace_id, principal.user_id)) if namespace else None
    else:
        params = {"ns": namespace_id, "user": principal.user_id}
        namespace, membership = session.execute(_NAMESPACE_AND_MEMBERSHIP, params).first() or (None, None)
    return visible(namespace, membership, principal, namespace_id, owner=owner), membership


def visible(namespace: Namespace | None, membership: Membership | None, principal: Principal,
            namespace_id: int, *, owner: bool = False) -> Namespace:
    """The namespace if the caller may see it (and buy for it, with `owner`)."""
    if namespace is None or (membership is None and not principal.is_admin):
        raise not_found("namespace", namespace_id)
    if owner and (membership is None or membership.role != "owner"):
        raise Forbidden("not_owner", "Owner role required",
                        f"Only Owners of {namespace.path} can buy for it.")
    return namespace


def load_for_billing(session: Session, namespace_id: int, principal: Principal, *,
                     manage: bool = False, lock: bool = False) -> tuple[Namespace, BillingRole]:
    """The namespace and the caller's standing on its billing. Members and billing
    managers see it (anyone else gets the 404 that hides it); `manage` needs an
    Owner, a billing manager or an admin."""
    namespace = session.get(Namespace, namespace_id, with_for_update=lock)
    membership = session.get(Membership, (namespace_id, principal.user_id)) if namespace else None
    manager = namespace is not None and \
        session.get(BillingManager, (namespace_id, principal.user_id)) is not None
    standing = BillingRole(membership.role if membership else None, manager, principal.is_admin)
    if namespace is None or not standing.can_read:
        raise not_found("namespace", namespace_id)
    if manage:
        require_manager(standing, namespace.path)
    return namespace, standing


def billable_count(namespace_id: int | SQLColumnExpression[int]) -> Select[int]:
    """COUNT of the billable members; `namespace_id` may be an outer query's column
    (a correlated subquery: one statement for many namespaces, not one each)."""
    return (select(func.count()).select_from(_BILLABLE)
            .where(_BILLABLE.namespace_id == namespace_id, _BILLABLE.billable.is_(True)))


def billable_members(session: Session, namespace_id: int) -> int:
    return session.scalar(_BILLABLE_COUNT, {"ns": namespace_id}) or 0


def namespace_facts(session: Session, namespace: Namespace) -> NamespaceFacts:
    billable, sub = session.execute(_FACTS, {"ns": namespace.id}).first() or (0, None)
    return facts_of(namespace, billable, sub)


def facts_of(namespace: Namespace, billable: int | None, sub: Subscription | None) -> NamespaceFacts:
    current = CurrentTerm(sub.id, sub.plan, sub.seats, sub.term_start, sub.term_end,
                          tuple((a.sku, a.seats) for a in sub.addons)) if sub else None
    return NamespaceFacts(namespace.id, namespace.is_top_level, namespace.plan, billable or 0, current)


# The hot statements (every quote, purchase and namespace look-up) are built once,
# at import, with bound parameters: building a select() costs more than running it.
# Its own name, so the count can sit inside a query that joins memberships itself.
_BILLABLE = aliased(Membership, name="billable_members")
_BILLABLE_COUNT = billable_count(bindparam("ns"))
# The namespace and the caller's membership in one round trip, not one each.
_NAMESPACE_AND_MEMBERSHIP = (
    select(Namespace, Membership)
    .outerjoin(Membership, and_(Membership.namespace_id == Namespace.id,
                                Membership.user_id == bindparam("user")))
    .where(Namespace.id == bindparam("ns")))
# The billable count and the active subscription (at most one: a partial unique
# index) in one round trip; the subscription's add-ons, if there is one, in a second.
_FACTS = (
    select(billable_count(Namespace.id).scalar_subquery(), Subscription)
    .select_from(Namespace)
    .outerjoin(Subscription, and_(Subscription.namespace_id == Namespace.id,
                                  Subscription.status == SubscriptionStatus.ACTIVE))
    .where(Namespace.id == bindparam("ns"))
    .options(selectinload(Subscription.addons)))
