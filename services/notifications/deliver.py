"""`python -m services.notifications.deliver [--once] [--interval S]`: send due
notifications through SMTP (SMTP_HOST, SMTP_PORT, MAIL_FROM), or through an
HTTP mail API with an idempotency key when MAIL_API_URL is set.

Without `--once` it loops, a pass every `--interval` seconds (at once again
when a pass filled its batch). `--once` sends everything due now, then exits.
SIGTERM (or Ctrl-C) finishes the message being sent, gives the rest of the
claimed batch back, and exits. Several workers may run side by side on
PostgreSQL (rows are claimed with SKIP LOCKED); on SQLite claims take turns.

`--lease-seconds` (or NOTIFICATIONS_LEASE_SECONDS; default from
data/schedule.toml) is how long a claimed message may stay `sending` before
another worker decides its worker died and sends it again; it is measured on
the machine's clock, so `make timetravel` never cuts it short.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from datetime import timedelta

from services.common.config import Settings
from services.common.logs import configure_logging
from services.notifications.adapters.mailer import Mailer
from services.notifications.app import build_notifications, make_mailer
from services.notifications.runtime import Notifications
from services.notifications.usecases.delivery import DeliveryReport, deliver_due

log = logging.getLogger("notifications.deliver")


def run(app: Notifications, mailer: Mailer, *, once: bool, interval: float, batch: int,
        lease: timedelta, stop: threading.Event) -> DeliveryReport:
    """Deliver until told to stop (or, with `once`, until nothing is due); the totals."""
    total = DeliveryReport()
    while not stop.is_set():
        report = deliver_due(app, mailer, batch=batch, lease=lease, stop=stop)
        for name, value in vars(report).items():
            setattr(total, name, getattr(total, name) + value)
        if report.claimed:
            log.info("claimed %d: sent %d, retried %d, failed %d, skipped %d, released %d", report.claimed,
                     report.sent, report.retried, report.failed, report.skipped, report.released)
        if report.claimed >= batch:
            continue  # more may be due right now
        if once:
            break
        stop.wait(interval)
    return total


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true", help="send everything due now, then exit")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between passes (default 5)")
    parser.add_argument("--batch", type=int, default=50, help="messages claimed per pass (default 50)")
    parser.add_argument("--lease-seconds", type=float, default=None,
                        help="reclaim messages left 'sending' this long (default: data/schedule.toml)")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    configure_logging("notifications-deliver")
    app = build_notifications(Settings.from_env("notifications"))
    lease_seconds = args.lease_seconds
    if lease_seconds is None and os.environ.get("NOTIFICATIONS_LEASE_SECONDS"):
        lease_seconds = float(os.environ["NOTIFICATIONS_LEASE_SECONDS"])
    lease = app.schedule.lease if lease_seconds is None else timedelta(seconds=lease_seconds)
    mailer = make_mailer(app.mail)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        total = run(app, mailer, once=args.once, interval=args.interval, batch=args.batch, lease=lease,
                    stop=stop)
        print(f"notifications: sent {total.sent}, retried {total.retried}, failed {total.failed}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        mailer.close()
        app.ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
