"""Writing the schedule: each planned message is an INSERT guarded by its
unique dedupe key (`ON CONFLICT DO NOTHING`), so a duplicate delivery, a replay
or two racing consumers schedule it once; cancelling is a conditional UPDATE of
what has not been sent."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from persistence.db import is_postgres
from services.common.service import ServiceUnitOfWork
from services.notifications.adapters.models import Notification
from services.notifications.domain.messages import Planned
from services.notifications.domain.rendering import render

SCHEDULED, SENDING, SENT, FAILED, CANCELED = "scheduled", "sending", "sent", "failed", "canceled"
STATUSES = (SCHEDULED, SENDING, SENT, FAILED, CANCELED)


def schedule(uow: ServiceUnitOfWork, plan: Planned) -> bool:
    """Insert the notification unless its dedupe key exists; True if it is new.

    Rendering here checks the context is complete before anything is kept (a
    broken event is refused, and retried by its publisher) and gives the subject.
    """
    subject = render(plan.template, plan.context).subject
    dialect = postgresql if is_postgres(uow.session) else sqlite
    statement = (
        dialect.insert(Notification)
        .values(dedupe_key=plan.dedupe_key, template=plan.template, recipient=plan.recipient,
                subject=subject, context=plan.context, send_after=plan.send_after, status=SCHEDULED,
                attempts=0, traffic=uow.traffic.value, created_at=uow.now)
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
        .returning(Notification.id)
    )
    return uow.session.execute(statement).scalar() is not None


def schedule_all(uow: ServiceUnitOfWork, plans: Iterable[Planned]) -> list[str]:
    """The dedupe keys that were new."""
    return [plan.dedupe_key for plan in plans if schedule(uow, plan)]


def exists(uow: ServiceUnitOfWork, dedupe_key: str) -> bool:
    found = uow.session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key))
    return found is not None


def keys_with_prefix(uow: ServiceUnitOfWork, prefix: str) -> list[str]:
    return list(uow.session.scalars(select(Notification.dedupe_key)
                                    .where(Notification.dedupe_key.startswith(prefix, autoescape=True))))


def cancel(uow: ServiceUnitOfWork, keys: Iterable[str]) -> int:
    """Cancel those of `keys` not yet sent or being sent; how many were."""
    keys = list(keys)
    if not keys:
        return 0
    result = uow.session.execute(
        update(Notification).where(Notification.dedupe_key.in_(keys), Notification.status == SCHEDULED)
        .values(status=CANCELED, next_attempt_at=None).returning(Notification.id))
    return len(result.all())
