"""The notifications service's parts, wired once and shared by HTTP, the
delivery worker and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

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


def of(ctx: ServiceContext) -> Notifications:
    """The service's parts from a context built by `build_notifications`."""
    return ctx.extras["notifications"]  # type: ignore[no-any-return]
