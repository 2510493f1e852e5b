"""Delivering due notifications to SMTP: at least once, and at most once in effect.

1. Claim: in one short transaction, take up to `batch` due rows (scheduled
   and due, or `sending` for longer than the lease: their worker died) with
   `FOR UPDATE SKIP LOCKED` on PostgreSQL, and mark them `sending` with
   `claimed_at`. Several workers can run side by side; on SQLite one runs.
2. Send each with a Message-ID derived from its dedupe key, so a re-send
   after a crash carries the same Message-ID and is recognisably the same
   message.
3. Record each outcome in its own short transaction, conditional on the
   claim still being ours: `sent` (with `sent_at`, `message_id` and a
   `notification_sent` funnel event), back to `scheduled` after a temporary
   failure (with `next_attempt_at` from the backoff), or `failed` after a
   permanent failure or the last attempt.

A crash between 2 and 3 leaves the row `sending`; once the lease is over it
is claimed and sent again. That is the only way a message reaches SMTP twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import and_, or_, select, update

from services.common.db import is_postgres
from services.common.metrics import DELIVERIES
from services.common.service import ServiceContext
from services.common.telemetry import Step, Traffic
from services.notifications.adapters.mailer import Mailer, PermanentMailError, TemporaryMailError
from services.notifications.adapters.models import Notification as N
from services.notifications.config import MailSettings, mail_settings
from services.notifications.domain.rendering import render
from services.notifications.domain.schedule import Schedule, message_id
from services.notifications.usecases.scheduling import FAILED, SCHEDULED, SENDING, SENT

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0  # temporary failure: scheduled again
    failed: int = 0
    released: int = 0  # claimed, then given back unsent because the worker was told to stop
    superseded: int = 0  # our lease ran out and another worker took the row over


@dataclass(frozen=True)
class _Claim:
    id: int
    dedupe_key: str
    template: str
    recipient: str
    context: dict[str, Any]
    traffic: str
    attempts: int
    claimed_at: datetime


def _parts(ctx: ServiceContext) -> tuple[Schedule, MailSettings]:
    app = ctx.extras.get("notifications")
    if app is not None:
        return app.schedule, app.mail
    return Schedule.load(), mail_settings()


def deliver_due(ctx: ServiceContext, mailer: Mailer, *, batch: int = 50, lease: timedelta | None = None,
                stop: threading.Event | None = None) -> DeliveryReport:
    """Send up to `batch` due notifications (lease: the schedule's, 5 minutes).
    `stop` set between two messages gives the rest of the claim back."""
    schedule, mail = _parts(ctx)
    claims = _claim(ctx, batch, schedule.lease if lease is None else lease)
    report = DeliveryReport(claimed=len(claims))
    for index, claim in enumerate(claims):
        if stop is not None and stop.is_set():
            report.released = _release(ctx, claims[index:])
            break
        outcome = _deliver_one(ctx, mailer, schedule, mail, claim)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _claim(ctx: ServiceContext, batch: int, lease: timedelta) -> list[_Claim]:
    now = ctx.clock.now()
    due = or_(
        and_(N.status == SCHEDULED, N.send_after <= now,
             or_(N.next_attempt_at.is_(None), N.next_attempt_at <= now)),
        and_(N.status == SENDING, N.claimed_at <= now - lease),
    )
    with ctx.session_factory() as session, session.begin():
        query = select(N).where(due).order_by(N.send_after, N.id).limit(batch)
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        rows = session.scalars(query).all()
        for row in rows:
            row.status, row.claimed_at = SENDING, now
        return [_Claim(row.id, row.dedupe_key, row.template, row.recipient, dict(row.context), row.traffic,
                       row.attempts or 0, now) for row in rows]


def _ours(claim: _Claim) -> Any:
    return and_(N.id == claim.id, N.status == SENDING, N.claimed_at == claim.claimed_at)


def _release(ctx: ServiceContext, claims: list[_Claim]) -> int:
    released = 0
    with ctx.session_factory() as session, session.begin():
        for claim in claims:
            result = session.execute(update(N).where(_ours(claim)).values(status=SCHEDULED, claimed_at=None)
                                     .returning(N.id))
            released += len(result.all())
    return released


def build_message(mail: MailSettings, claim_key: str, recipient: str, template: str,
                  context: dict[str, Any], now: datetime) -> EmailMessage:
    rendered = render(template, context)
    message = EmailMessage()
    message["From"] = mail.mail_from
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(claim_key, mail.message_id_domain)
    message["X-Notification-Key"] = claim_key
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def _deliver_one(ctx: ServiceContext, mailer: Mailer, schedule: Schedule, mail: MailSettings,
                 claim: _Claim) -> str:
    outcome = _attempt(ctx, mailer, schedule, mail, claim)
    DELIVERIES.labels(outcome).inc()
    return outcome


def _attempt(ctx: ServiceContext, mailer: Mailer, schedule: Schedule, mail: MailSettings,
             claim: _Claim) -> str:
    try:
        message = build_message(mail, claim.dedupe_key, claim.recipient, claim.template, claim.context,
                                ctx.clock.now())
    except Exception as exc:  # a template or context that can not render will not get better
        log.exception("notification %s (%s) does not render", claim.id, claim.template)
        return _failed(ctx, schedule, claim, f"render: {type(exc).__name__}: {exc}", permanent=True)
    try:
        mailer.send(message)
    except PermanentMailError as exc:
        log.warning("notification %s to %s refused: %s", claim.id, claim.recipient, exc)
        return _failed(ctx, schedule, claim, str(exc), permanent=True)
    except TemporaryMailError as exc:
        log.warning("notification %s to %s deferred: %s", claim.id, claim.recipient, exc)
        return _failed(ctx, schedule, claim, str(exc), permanent=False)
    except Exception as exc:  # an unexpected mailer error: try again later
        log.exception("notification %s: mailer failed", claim.id)
        return _failed(ctx, schedule, claim, f"{type(exc).__name__}: {exc}", permanent=False)
    return _sent(ctx, claim, str(message["Message-ID"]))


def _sent(ctx: ServiceContext, claim: _Claim, sent_id: str) -> str:
    uow = ctx.uow(traffic=Traffic(claim.traffic))
    with uow:
        marked = uow.session.execute(
            update(N).where(_ours(claim))
            .values(status=SENT, sent_at=uow.now, message_id=sent_id, attempts=claim.attempts + 1,
                    last_error=None, next_attempt_at=None)
            .returning(N.id)).first()
        if marked is None:
            log.warning("notification %s was taken over by another worker after our lease ran out", claim.id)
            return "superseded"
        user_id, namespace_id = claim.context.get("user_id"), claim.context.get("namespace_id")
        uow.track(Step.NOTIFICATION_SENT, user_id=user_id if isinstance(user_id, int) else None,
                  namespace_id=namespace_id if isinstance(namespace_id, int) else None,
                  template=claim.template, notification_id=claim.id, attempts=claim.attempts + 1)
        uow.commit()
    return "sent"


def _failed(ctx: ServiceContext, schedule: Schedule, claim: _Claim, error: str, *, permanent: bool) -> str:
    attempts = claim.attempts + 1
    final = permanent or schedule.exhausted(attempts)
    now = ctx.clock.now()
    values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000], "claimed_at": None}
    if final:
        values.update(status=FAILED, next_attempt_at=None)
    else:
        values.update(status=SCHEDULED, next_attempt_at=now + schedule.retry_delay(attempts))
    with ctx.session_factory() as session, session.begin():
        marked = session.execute(update(N).where(_ours(claim)).values(**values).returning(N.id)).first()
    if marked is None:
        return "superseded"
    return "failed" if final else "retried"
