"""The notifications service: what is sent to people, when, and whether it arrived.

It consumes the other services' events (`POST /internal/events`), schedules
each message once under a unique dedupe key, and a delivery worker
(`python -m services.notifications.deliver`) sends them through SMTP (or an
HTTP mail API that takes an idempotency key).
`create_app()` is the WSGI factory.
"""

from __future__ import annotations

from flask import Flask

from messaging.inbox import events_blueprint
from messaging.routing import owners
from services.common.clock import Clock, SystemClock
from services.common.config import Settings
from services.common.service import build_context
from services.common.web import create_service_app
from services.notifications.adapters.mail_api import HttpMailApi
from services.notifications.adapters.mailer import Mailer, SmtpMailer
from services.notifications.adapters.models import ExposureRow, FunnelEventRow, InboxEvent, OutboxMessage
from services.notifications.api import notifications as notifications_api
from services.notifications.config import MailSettings, mail_settings
from services.notifications.domain.schedule import Schedule
from services.notifications.runtime import EXTENSION, Notifications
from services.notifications.usecases.events import handlers


def build_notifications(settings: Settings, clock: Clock | None = None, mailer: Mailer | None = None,
                        mail: MailSettings | None = None, schedule: Schedule | None = None,
                        machine_clock: Clock | None = None) -> Notifications:
    """`clock` is business time (time travel moves it); `machine_clock` times
    delivery leases and retries (tests move it; by default the system's)."""
    ctx = build_context("notifications", settings, clock, OutboxMessage, FunnelEventRow, ExposureRow)
    app = Notifications(ctx=ctx, schedule=schedule or Schedule.load(), mail=mail or mail_settings(),
                        mailer=mailer, machine_clock=machine_clock or SystemClock())
    return app


def make_mailer(mail: MailSettings) -> Mailer:
    """The HTTP mail API when MAIL_API_URL is set, else SMTP."""
    return HttpMailApi.from_settings(mail) if mail.api_url else SmtpMailer.from_settings(mail)


def create_app(settings: Settings | None = None, clock: Clock | None = None,
               mailer: Mailer | None = None, machine_clock: Clock | None = None) -> Flask:
    notifications = build_notifications(settings or Settings.from_env("notifications"), clock, mailer,
                                        machine_clock=machine_clock)
    flask_app = create_service_app(
        notifications.ctx, title="Notifications", description=__doc__ or "",
        blueprints=[notifications_api.blp,
                    events_blueprint(InboxEvent, handlers(notifications), owners("notifications"))])
    flask_app.extensions[EXTENSION] = notifications
    return flask_app
