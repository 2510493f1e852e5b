"""Events the trials service consumes (delivered by checkout's outbox relay)."""

from __future__ import annotations

from services.common import events
from services.common.inbox import Handler
from services.common.service import ServiceUnitOfWork
from services.trials.runtime import Trials
from services.trials.usecases.trials import convert_on_purchase


def _converted(uow: ServiceUnitOfWork, payload: events.SubscriptionChanged) -> str:
    app: Trials = uow.ctx.extras["trials"]
    return convert_on_purchase(app, uow, payload)


HANDLERS: dict[str, Handler] = {
    "subscription.created": _converted,
    "subscription.upgraded": _converted,
}
