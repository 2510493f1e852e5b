"""Events the notifications service consumes (delivered by the other services'
outbox relays to `POST /internal/events`, each handled once by its id).

Each handler plans messages (domain/messages.py) and schedules them with
INSERTs guarded by their dedupe keys, in the unit of work `receive` opened, so
a redelivery under a new event id, a replay or a race schedules nothing new.
Synthetic traffic (load tests) never schedules mail.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from funnel.telemetry import Traffic
from messaging.inbox import Handler
from services.common.service import ServiceUnitOfWork
from services.notifications.domain import messages as M
from services.notifications.domain import schedule as S
from services.notifications.domain.messages import Planned
from services.notifications.runtime import Notifications
from services.notifications.usecases.scheduling import cancel, exists, keys_with_prefix, schedule_all

SYNTHETIC = "synthetic: no mail"


def _people_only(handler: Handler) -> Handler:
    @functools.wraps(handler)
    def wrapper(uow: ServiceUnitOfWork, payload: dict[str, Any]) -> str:
        if uow.traffic is Traffic.SYNTHETIC or payload.get("traffic") == Traffic.SYNTHETIC.value:
            return SYNTHETIC
        return handler(uow, payload)
    return wrapper


def _outcome(new: list[str], planned: list[Planned], canceled: int = 0) -> str:
    said = f"scheduled {', '.join(new)}" if new else "nothing new"
    if len(new) < len(planned):
        said += f" ({len(planned) - len(new)} already scheduled)"
    return said + (f"; canceled {canceled}" if canceled else "")


def _one(plan: Callable[[ServiceUnitOfWork, dict[str, Any]], Planned]) -> Handler:
    @_people_only
    def handler(uow: ServiceUnitOfWork, payload: dict[str, Any]) -> str:
        planned = [plan(uow, payload)]
        return _outcome(schedule_all(uow, planned), planned)
    handler.__name__ = getattr(plan, "__name__", "handler")
    return handler


# --- trials ----------------------------------------------------------------------------
def _move_endings(uow: ServiceUnitOfWork, topic: str, payload: dict[str, Any],
                  schedule: S.Schedule) -> tuple[list[Planned], int]:
    """Ending reminders for the trial's end in `payload`: an end moved by an
    extension or a reactivation cancels the unsent reminders for the old end.
    An event about an older end than one already scheduled (delivered late)
    changes nothing; nor does one about a trial that has been converted."""
    context = M.trial_context(topic, payload)
    trial_id = context["trial_id"]
    if exists(uow, S.trial_key("trial_converted", trial_id)):
        return [], 0
    new_day = S.day(context["ends_at"])
    known = keys_with_prefix(uow, S.trial_ending_prefix(trial_id))
    if any(S.ending_day_of(key) > new_day for key in known):
        return [], 0
    canceled = cancel(uow, [key for key in known if S.ending_day_of(key) < new_day])
    return M.trial_endings(topic, payload, uow.now, schedule), canceled


def _duo_pro_upsell(uow: ServiceUnitOfWork, payload: dict[str, Any]) -> bool:
    """The duo-pro-upsell experiment, evaluated here as in trials: the same ids
    hash to the same variation, so the mail agrees with what the page offered."""
    if payload.get("kind") != "ultimate" or payload.get("duo_pro_eligible") is not True:
        return False
    return bool(uow.flag(DUO_UPSELL_FLAG, {"id": str(payload.get("user_id")),
                                           "namespace_id": str(payload.get("namespace_id")),
                                           "plan": payload.get("plan_before")}))


def _trial_changed(topic: str, schedule: S.Schedule, *, started: bool) -> Handler:
    @_people_only
    def handler(uow: ServiceUnitOfWork, payload: dict[str, Any]) -> str:
        planned = []
        if started:
            planned = [M.trial_once("trial_started", topic, payload, uow.now)]
            planned[0].context["duo_pro_upsell"] = _duo_pro_upsell(uow, payload)
        endings, canceled = _move_endings(uow, topic, payload, schedule)
        planned += endings
        return _outcome(schedule_all(uow, planned), planned, canceled)
    handler.__name__ = topic.replace(".", "_")
    return handler


def _trial_ended(topic: str, template: str) -> Handler:
    @_people_only
    def handler(uow: ServiceUnitOfWork, payload: dict[str, Any]) -> str:
        planned = [M.trial_once(template, topic, payload, uow.now)]
        trial_id = planned[0].context["trial_id"]
        canceled = cancel(uow, keys_with_prefix(uow, S.trial_ending_prefix(trial_id)))
        return _outcome(schedule_all(uow, planned), planned, canceled)
    handler.__name__ = topic.replace(".", "_")
    return handler


DUO_UPSELL_FLAG = "duo-pro-upsell"


def _linked(handler: Handler, checkout_url: str) -> Handler:
    """The payload with `billing_url`: checkout's Billing page of its namespace (the
    list of one's subscriptions when it names none), unless the publisher sent one."""
    @functools.wraps(handler)
    def wrapper(uow: ServiceUnitOfWork, payload: dict[str, Any]) -> str:
        if not payload.get("billing_url"):
            namespace_id = payload.get("namespace_id")
            suffix = f"/{namespace_id}" if isinstance(namespace_id, int) else ""
            payload = {**payload, "billing_url": f"{checkout_url}/billing{suffix}"}
        return handler(uow, payload)
    return wrapper


def handlers(app: Notifications) -> dict[str, Handler]:
    """What each topic schedules, by the service's schedule (data/schedule.toml)."""
    checkout_url = app.ctx.settings.service_urls["checkout"]
    return {topic: _linked(handler, checkout_url) for topic, handler in _handlers(app).items()}


def _handlers(app: Notifications) -> dict[str, Handler]:
    schedule = app.schedule
    return {
        "order.completed": _one(lambda uow, p: M.receipt(p, uow.now)),
        "order.refunded": _one(lambda uow, p: M.refund(p, uow.now)),
        "subscription.renewal_upcoming": _one(lambda uow, p: M.renewal_upcoming(p, uow.now, schedule)),
        "subscription.renewed": _one(lambda uow, p: M.renewal_receipt(p, uow.now)),
        "subscription.renewal_failed": _one(lambda uow, p: M.renewal_failed(p, uow.now)),
        "subscription.expired": _one(lambda uow, p: M.subscription_expired(p, uow.now)),
        "subscription.auto_renew_changed": _one(lambda uow, p: M.auto_renew_changed(p, uow.now)),
        "card.expiring": _one(lambda uow, p: M.card_expiring(p, uow.now)),
        "subscription.overage_notice": _one(lambda uow, p: M.overage_notice(p, uow.now)),
        "subscription.seats_reconciled": _one(lambda uow, p: M.seats_reconciled(p, uow.now)),
        "subscription.reconciliation_failed": _one(lambda uow, p: M.reconciliation_failed(p, uow.now)),
        "subscription.seats_explained": _one(lambda uow, p: M.seats_explained(p, uow.now)),
        "subscription.duo_seats_removed": _one(lambda uow, p: M.duo_seats_removed(p, uow.now)),
        "billing.manager_invited": _one(lambda uow, p: M.manager_invitation(p, uow.now)),
        "trial.started": _trial_changed("trial.started", schedule, started=True),
        "trial.extended": _trial_changed("trial.extended", schedule, started=False),
        "trial.reactivated": _trial_changed("trial.reactivated", schedule, started=False),
        "trial.expired": _trial_ended("trial.expired", "trial_expired"),
        "trial.converted": _trial_ended("trial.converted", "trial_converted"),
    }
