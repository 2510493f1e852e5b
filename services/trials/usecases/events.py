"""Events the trials service consumes (delivered by checkout's outbox relay)."""

from __future__ import annotations

from services.common import events
from services.common.inbox import Handler
from services.common.service import ServiceUnitOfWork
from services.trials.runtime import Trials
from services.trials.usecases.trials import convert_on_purchase


def handlers(app: Trials) -> dict[str, Handler]:
    """A subscription bought for a namespace, or an add-on added to one, converts its running trial."""
    def converted(uow: ServiceUnitOfWork, payload: events.SubscriptionChanged) -> str:
        return convert_on_purchase(app, uow, payload)

    def expanded(uow: ServiceUnitOfWork, payload: events.SubscriptionExpanded) -> str:
        return convert_on_purchase(app, uow, payload)

    return {"subscription.created": converted, "subscription.upgraded": converted,
            "subscription.expanded": expanded}
