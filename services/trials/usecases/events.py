"""Events the trials service consumes (delivered by checkout's outbox relay):
subscriptions convert running trials, and they and the directory's changes
keep trials' read model of namespaces (usecases/directory.py) in step."""

from __future__ import annotations

from contracts import events
from messaging.inbox import Handler
from services.common.service import ServiceUnitOfWork
from services.trials.domain import directory as D
from services.trials.runtime import Trials
from services.trials.usecases import directory
from services.trials.usecases.trials import convert_on_purchase


def _group(event: str) -> Handler:
    def apply(uow: ServiceUnitOfWork, payload: events.DirectoryChange) -> str:
        return directory.group_changed(uow, event, payload)
    return apply


def _member(event: str) -> Handler:
    def apply(uow: ServiceUnitOfWork, payload: events.DirectoryChange) -> str:
        return directory.member_changed(uow, event, payload)
    return apply


def handlers(app: Trials) -> dict[str, Handler]:
    """A subscription bought for a namespace, or an add-on added to one, converts its
    running trial; every plan change and directory change updates the read model."""
    def converted(uow: ServiceUnitOfWork, payload: events.SubscriptionChanged) -> str:
        directory.plan_changed(uow, payload, payload["plan"])
        return convert_on_purchase(app, uow, payload)

    def expanded(uow: ServiceUnitOfWork, payload: events.SubscriptionExpanded) -> str:
        directory.plan_changed(uow, payload, payload["plan"])
        return convert_on_purchase(app, uow, payload)

    def renewed(uow: ServiceUnitOfWork, payload: events.SubscriptionRenewed) -> str:
        return directory.plan_changed(uow, payload, payload.get("plan"))

    def expired(uow: ServiceUnitOfWork, payload: events.SubscriptionExpired) -> str:
        return directory.plan_changed(uow, payload, "free")  # checkout returns it to Free

    def snapshot(uow: ServiceUnitOfWork, payload: events.NamespaceSnapshot) -> str:
        return directory.snapshot(uow, payload)

    return {"subscription.created": converted, "subscription.upgraded": converted,
            "subscription.expanded": expanded, "subscription.renewed": renewed,
            "subscription.expired": expired, "directory.namespace_snapshot": snapshot,
            **{f"directory.{e}": _group(e) for e in (D.GROUP_CREATED, D.GROUP_RENAMED, D.GROUP_DESTROYED)},
            **{f"directory.{e}": _member(e) for e in (D.MEMBER_ADDED, D.MEMBER_UPDATED, D.MEMBER_REMOVED)}}
