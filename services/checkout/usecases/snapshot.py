"""Republish what other services keep of checkout's namespaces, as
`directory.namespace_snapshot` events: one per namespace, with its path,
kind, parent, plan, add-ons and members, each fact with the time of the
change that set it (the platform's for the directory, checkout's for the plan).

Trials keeps a read model of these facts from checkout's events
(services/trials/usecases/directory.py). Whatever it did not hear (groups
made before it subscribed, plans set by the demo seed, an outage longer than
the relay retries) reaches it this way; a snapshot never undoes a newer event
there, because every fact carries its time. `python -m services.checkout.snapshot`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from contracts import events
from services.checkout.adapters.models import (
    DirectoryGroup,
    DirectoryMember,
    Membership,
    Namespace,
    Subscription,
    SubscriptionAddOn,
)
from services.checkout.domain import directory as D
from services.common.service import ServiceUnitOfWork

TOPIC = "directory.namespace_snapshot"
# The platform's hook names and the directory.* events checkout publishes for them.
_EVENTS = {D.GROUP_CREATE: "group_created", D.GROUP_RENAME: "group_renamed",
           D.GROUP_DESTROY: "group_destroyed", D.MEMBER_ADD: "member_added",
           D.MEMBER_UPDATE: "member_updated", D.MEMBER_REMOVE: "member_removed"}


def publish(uow: ServiceUnitOfWork, namespace_ids: Iterable[int] | None = None) -> int:
    """Publish a snapshot of each namespace (every one if `namespace_ids` is None),
    in the caller's unit of work; returns how many. The caller commits."""
    query = select(Namespace).order_by(Namespace.id)
    if namespace_ids is not None:
        query = query.where(Namespace.id.in_(list(namespace_ids)))
    published = 0
    for namespace in uow.session.scalars(query).all():
        uow.publish(TOPIC, _snapshot(uow, namespace))
        published += 1
    return published


def _snapshot(uow: ServiceUnitOfWork, ns: Namespace) -> events.NamespaceSnapshot:
    session = uow.session
    group = session.get(DirectoryGroup, ns.id)
    # A namespace older than the hooks: its creation is the last change known.
    changed_at, last_event = ((group.changed_at, group.last_event) if group
                              else (ns.created_at, D.GROUP_CREATE))
    heard = {m.user_id: m for m in session.scalars(
        select(DirectoryMember).where(DirectoryMember.group_id == ns.id))}
    members: list[events.SnapshotMember] = []
    for membership in session.scalars(select(Membership).where(Membership.namespace_id == ns.id)):
        row = heard.pop(membership.user_id, None)
        members.append({"user_id": membership.user_id, "role": membership.role,
                        "changed_at": (row.changed_at if row else ns.created_at).isoformat(),
                        "last_event": _EVENTS[row.last_event if row else D.MEMBER_ADD]})
    for row in heard.values():  # removed, or waiting for nothing any more: no role
        if row.removed or (group is not None and group.destroyed):
            members.append({"user_id": row.user_id, "role": None, "changed_at": row.changed_at.isoformat(),
                            "last_event": _EVENTS[row.last_event]})
    addons: dict[str, list[str]] = {}
    for sub_id, sku in session.execute(
            select(Subscription.id, SubscriptionAddOn.sku)
            .join(SubscriptionAddOn, SubscriptionAddOn.subscription_id == Subscription.id)
            .where(Subscription.namespace_id == ns.id)):
        addons.setdefault(str(sub_id), []).append(sku)
    snapshot: dict[str, Any] = {
        "namespace_id": ns.id, "path": ns.path, "kind": ns.kind, "parent_id": ns.parent_id,
        "destroyed": group is not None and group.destroyed, "changed_at": changed_at.isoformat(),
        "last_event": _EVENTS[last_event], "plan": ns.plan,
        "addons": {sub: sorted(skus) for sub, skus in addons.items()},
        "plan_changed_at": uow.now.isoformat(), "members": members}
    return snapshot  # type: ignore[return-value]
