"""`make timetravel DAYS=30`: watch a year of subscriptions in a minute.

Moves the business clock that every process of `make run` shares (the file
in CLOCK_FILE, `clock.json` in VAR_DIR) forward one day at a time; on each day runs
what the worker would (renewal reminders, charges, dunning, expiry, trial
expiry), relays the events to the running services, delivers the mail to the
local SMTP server, and prints what was sent. Needs `make run` running.

    python -m services.timetravel --days 30
    python -m services.timetravel --reset        # back to real time
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta

from sqlalchemy import select

from services.checkout.app import build_checkout
from services.checkout.usecases.renewals import run_all
from services.common.clock import OffsetClock
from services.common.config import Settings, var_dir
from services.common.relay import relay_once
from services.notifications.adapters.models import Notification
from services.notifications.app import build_notifications, make_mailer
from services.notifications.usecases.delivery import deliver_due
from services.trials.app import build_trials
from services.trials.usecases.trials import expire_due
from services.worker import service_token, subscribers


def travel(days: int) -> None:
    checkout = build_checkout(Settings.from_env("checkout"))
    trials = build_trials(Settings.from_env("trials"))
    notifications = build_notifications(Settings.from_env("notifications"))
    mailer = make_mailer(notifications.mail)
    clock = checkout.ctx.clock
    assert isinstance(clock, OffsetClock)
    publishers = [checkout.ctx, trials.ctx]
    try:
        for _ in range(days):
            day_start = clock.advance(timedelta(days=1))
            print(f"{day_start:%Y-%m-%d}", end="")
            done = run_all(checkout, checkout.ctx.uow, checkout.renewal_rules)
            expired_trials = expire_due(trials, trials.ctx.uow)
            for _ in range(2):  # a reaction may publish again (subscription -> trial -> checkout)
                for ctx in publishers:
                    relay_once(ctx, subscribers(ctx.name, ctx.settings), token=service_token(ctx.settings))
            deliver_due(notifications.ctx, mailer)
            happened = {k: v for k, v in done.items() if v}
            if expired_trials:
                happened["trials expired"] = len(expired_trials)
            print(f"  {happened}" if happened else "")
            with notifications.ctx.session_factory() as session:
                for n in session.scalars(select(Notification).where(
                        Notification.status == "sent", Notification.sent_at >= day_start - timedelta(days=1),
                        Notification.sent_at < day_start + timedelta(minutes=5)).order_by(Notification.id)):
                    print(f"    mail to {n.recipient}: {n.subject}")
    finally:
        mailer.close()
        for ctx in (checkout.ctx, trials.ctx, notifications.ctx):
            ctx.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30, help="how many days to move forward (default 30)")
    parser.add_argument("--reset", action="store_true", help="go back to real time")
    args = parser.parse_args(argv)
    os.environ.setdefault("CLOCK_FILE", str(var_dir() / "clock.json"))
    if args.reset:
        if os.path.exists(os.environ["CLOCK_FILE"]):
            os.remove(os.environ["CLOCK_FILE"])
        print("back to real time")
        return 0
    if not 1 <= args.days <= 3660:
        parser.error("--days must be between 1 and 3660")
    travel(args.days)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
