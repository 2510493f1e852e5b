"""Delivering due notifications: at least once, and at most once in effect.

Two clocks. `send_after` is business time (`ctx.clock`, which `make
timetravel` moves); a claim's lease and a retry's backoff (`claimed_at`,
`next_attempt_at`) are the machine's (`machine_clock`), so moving business
time never makes a message in a worker's hands look abandoned.

1. Claim: in one short transaction, take up to `batch` due rows (scheduled
   and due, or `sending` for longer than the lease: their worker died) with
   `FOR UPDATE SKIP LOCKED` on PostgreSQL, and mark them `sending` with
   `claimed_at` and the `message_id` each will carry: it is on record before
   any conversation with the relay starts. Several workers can run side by
   side; on SQLite claims take turns (BEGIN IMMEDIATE).
2. Send each, rendered as of now (a reminder states the days actually left,
   or is skipped once the next one is due: `schedule.as_sent`), with a
   Message-ID derived from its dedupe key.
3. Record each outcome straight after the relay's answer, one row per
   commit, conditional on the claim still being ours: `sent` is a single
   UPDATE plus its `notification_sent` funnel event; back to `scheduled`
   after a temporary failure (`next_attempt_at` from the backoff), `failed`
   after a permanent one or the last attempt, `canceled` for a late reminder.

A crash between the relay's acceptance and 3's commit leaves the row
`sending`; after the lease it is sent again with the same Message-ID. That
window is the only way a message reaches the relay twice (`make
bench-mail-kill` measures it), and the receiving side keeps one copy per
Message-ID: see adapters/mailer.py for what a production relay must do, and
adapters/mail_api.py for a provider that takes an idempotency key.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update

from funnel.telemetry import Step, Traffic
from persistence.db import is_postgres
from services.common.service import ServiceContext
from services.notifications.adapters.mailer import Mailer, PermanentMailError, TemporaryMailError
from services.notifications.adapters.models import Notification as N
from services.notifications.config import MailSettings
from services.notifications.domain.rendering import render
from services.notifications.domain.schedule import TooLate, as_sent, message_id
from services.notifications.metrics import DELIVERIES
from services.notifications.runtime import Notifications
from services.notifications.usecases.scheduling import CANCELED, FAILED, SCHEDULED, SENDING, SENT

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0  # temporary failure: scheduled again
    failed: int = 0
    skipped: int = 0  # a reminder whose time had passed: canceled, the next one says it
    released: int = 0  # claimed, then given back unsent because the worker was told to stop
    superseded: int = 0  # our lease ran out and another worker took the row over


@dataclass(frozen=True)
class _Claim:
    id: int
    dedupe_key: str
    message_id: str
    template: str
    recipient: str
    context: dict[str, Any]
    traffic: str
    attempts: int
    claimed_at: datetime


def deliver_due(app: Notifications, mailer: Mailer, *, batch: int = 50, lease: timedelta | None = None,
                stop: threading.Event | None = None) -> DeliveryReport:
    """Send up to `batch` due notifications (lease: the schedule's, 5 minutes).
    `stop` set between two messages gives the rest of the claim back."""
    claims = _claim(app, batch, app.schedule.lease if lease is None else lease)
    report = DeliveryReport(claimed=len(claims))
    for index, claim in enumerate(claims):
        if stop is not None and stop.is_set():
            report.released = sum(_finish(app.ctx, rest, status=SCHEDULED, claimed_at=None)
                                  for rest in claims[index:])
            break
        outcome = _attempt(app, mailer, claim)
        DELIVERIES.labels(outcome).inc()
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _claim(app: Notifications, batch: int, lease: timedelta) -> list[_Claim]:
    now, machine_now = app.ctx.clock.now(), app.machine_clock.now()
    due = or_(
        and_(N.status == SCHEDULED, N.send_after <= now,
             or_(N.next_attempt_at.is_(None), N.next_attempt_at <= machine_now)),
        and_(N.status == SENDING, N.claimed_at <= machine_now - lease),
    )
    with app.ctx.session_factory() as session, session.begin():
        query = select(N).where(due).order_by(N.send_after, N.id).limit(batch)
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        claims = []
        for row in session.scalars(query).all():
            row.status, row.claimed_at = SENDING, machine_now
            row.message_id = mid = message_id(row.dedupe_key, app.mail.message_id_domain)
            claims.append(_Claim(row.id, row.dedupe_key, mid, row.template, row.recipient, dict(row.context),
                                 row.traffic, row.attempts or 0, machine_now))
        return claims


def _ours(claim: _Claim) -> Any:
    return and_(N.id == claim.id, N.status == SENDING, N.claimed_at == claim.claimed_at)


def _finish(ctx: ServiceContext, claim: _Claim, **values: Any) -> bool:
    """Record an outcome other than `sent`, if the claim is still ours."""
    with ctx.session_factory() as session, session.begin():
        marked = session.execute(update(N).where(_ours(claim)).values(**values).returning(N.id)).first()
    return marked is not None


def _message(mail: MailSettings, claim: _Claim, context: dict[str, Any], now: datetime) -> EmailMessage:
    rendered = render(claim.template, context)
    message = EmailMessage()
    message["From"] = mail.mail_from
    message["To"] = claim.recipient
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = claim.message_id
    message["X-Notification-Key"] = claim.dedupe_key
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def _attempt(app: Notifications, mailer: Mailer, claim: _Claim) -> str:
    ctx, now = app.ctx, app.ctx.clock.now()
    try:
        context = as_sent(claim.template, claim.context, now, app.schedule)
        message = context if isinstance(context, TooLate) else _message(app.mail, claim, context, now)
    except Exception as exc:  # a template or context that can not render will not get better
        log.exception("notification %s (%s) does not render", claim.id, claim.template)
        return _failed(app, claim, f"render: {type(exc).__name__}: {exc}", permanent=True)
    if isinstance(message, TooLate):
        log.info("notification %s (%s) not sent: %s", claim.id, claim.template, message.reason)
        return _outcome(_finish(ctx, claim, status=CANCELED, last_error=message.reason, claimed_at=None),
                        "skipped")
    try:
        mailer.send(message)
    except PermanentMailError as exc:
        log.warning("notification %s to %s refused: %s", claim.id, claim.recipient, exc)
        return _failed(app, claim, str(exc), permanent=True)
    except TemporaryMailError as exc:
        log.warning("notification %s to %s deferred: %s", claim.id, claim.recipient, exc)
        return _failed(app, claim, str(exc), permanent=False)
    except Exception as exc:  # an unexpected mailer error: try again later
        log.exception("notification %s: mailer failed", claim.id)
        return _failed(app, claim, f"{type(exc).__name__}: {exc}", permanent=False)
    return _sent(ctx, claim)


# Built once: between the relay's 250 and this commit a crash means a second
# copy, so nothing in that window is spent building statements.
_TABLE = cast(Table, N.__table__)  # a mapped class's table, typed as any FROM clause
_MARK_SENT = (update(_TABLE)
              .where(_TABLE.c.id == bindparam("row_id"), _TABLE.c.status == SENDING,
                     _TABLE.c.claimed_at == bindparam("claim"))
              .values(status=SENT, sent_at=bindparam("at"), attempts=bindparam("tries"), last_error=None,
                      next_attempt_at=None)
              .returning(_TABLE.c.id))


def _sent(ctx: ServiceContext, claim: _Claim) -> str:
    user_id, namespace_id = claim.context.get("user_id"), claim.context.get("namespace_id")
    uow = ctx.uow(traffic=Traffic(claim.traffic))
    with uow:
        marked = uow.session.execute(_MARK_SENT, {"row_id": claim.id, "claim": claim.claimed_at,
                                                  "at": uow.now, "tries": claim.attempts + 1}).first()
        if marked is None:
            log.warning("notification %s was taken over by another worker after our lease ran out", claim.id)
            return "superseded"
        uow.track(Step.NOTIFICATION_SENT, user_id=user_id if isinstance(user_id, int) else None,
                  namespace_id=namespace_id if isinstance(namespace_id, int) else None,
                  template=claim.template, notification_id=claim.id, attempts=claim.attempts + 1)
        uow.commit()
    return "sent"


def _failed(app: Notifications, claim: _Claim, error: str, *, permanent: bool) -> str:
    attempts = claim.attempts + 1
    final = permanent or app.schedule.exhausted(attempts)
    values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000], "claimed_at": None}
    if final:
        values.update(status=FAILED, next_attempt_at=None)
    else:
        values.update(status=SCHEDULED,
                      next_attempt_at=app.machine_clock.now() + app.schedule.retry_delay(attempts))
    return _outcome(_finish(app.ctx, claim, **values), "failed" if final else "retried")


def _outcome(ours: bool, outcome: str) -> str:
    return outcome if ours else "superseded"
