"""The notifications service's parts, wired once and shared by HTTP, the
delivery worker and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from services.common.clock import Clock, SystemClock
from services.common.service import ServiceContext
from services.notifications.adapters.mailer import Mailer
from services.notifications.config import MailSettings
from services.notifications.domain.schedule import Schedule


@dataclass
class Notifications:
    ctx: ServiceContext
    schedule: Schedule
    mail: MailSettings
    mailer: Mailer | None = None  # only the delivery worker sends
    # Delivery leases and retry backoff run on the machine's clock, never on
    # ctx.clock: `make timetravel` moves business time, and a lease measured on
    # it would expire mid-send and have the message sent again.
    machine_clock: Clock = field(default_factory=SystemClock)


# Where create_app keeps the service's parts for its requests.
EXTENSION = "notifications"


def current() -> Notifications:
    """The parts of the app serving this request: the one way the HTTP layer reaches them."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]
