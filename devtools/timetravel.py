"""`make timetravel DAYS=30`: watch a year of subscriptions in a minute.

Moves the business clock that every process of `make run` shares (the file
in CLOCK_FILE, `clock.json` in VAR_DIR) forward one day at a time; on each day
runs each service's own background work, as its worker would (checkout's
renewal reminders, charges, dunning and expiry, and the quarterly seat
reconciliation; trials' expiry; each outbox
relayed to the running services), then the notifications sender
(`services.notifications.deliver --once`), and prints what happened and the
mail that reached the local SMTP sink. It knows no service's tables: it drives
the services through their worker and command entry points, and reads the
clock file and the mail folder. Needs `make run` running.

    python -m devtools.timetravel --days 30
    python -m devtools.timetravel --reset        # back to real time
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from messaging.jobs import Guarded
from services.checkout import worker as checkout_worker
from services.common.clock import OffsetClock
from services.common.config import var_dir
from services.notifications import deliver
from services.trials import worker as trials_worker


class _Said(logging.Handler):
    """What the workers' jobs report (one line each), for the day's summary."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.INFO and "relayed" not in (said := record.getMessage()):
            self.lines.append(said)


def _warnings() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    return handler


def _mail(folder: Path) -> set[Path]:
    new = folder / "new"
    return set(new.iterdir()) if new.is_dir() else set()


def _describe(path: Path) -> str:
    with path.open("rb") as fh:
        headers = BytesHeaderParser(policy=policy.default).parse(fh)
    return f"mail to {headers.get('To', '?')}: {headers.get('Subject', '')}"


def travel(days: int) -> None:
    clock = OffsetClock(os.environ["CLOCK_FILE"])
    mail = var_dir() / "mail"
    said = _Said()
    # The jobs' lines go to the summary; their warnings and errors still to stderr.
    worker_log = logging.getLogger("worker")
    worker_log.handlers[:] = [said, _warnings()]
    worker_log.setLevel(logging.INFO)
    worker_log.propagate = False
    jobs: list[Guarded] = []
    closers: list[Callable[[], None]] = []
    try:
        # Renewals every pass (not every 10 s): a day here lasts well under that.
        for built, to_close in (checkout_worker.build(renewal_seconds=0), trials_worker.build()):
            jobs += built
            closers += to_close
        for _ in range(days):
            day_start = clock.advance(timedelta(days=1))
            print(f"{day_start:%Y-%m-%d}", end="")
            said.lines.clear()
            for _ in range(2):  # a reaction may publish again (subscription -> trial -> checkout)
                for job in jobs:
                    job()
            before = _mail(mail)
            root = logging.getLogger()
            handlers, level = list(root.handlers), root.level
            # Its totals and info lines stay quiet (the mail is listed below); its warnings do not.
            logged = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(logged):
                deliver.main(["--once"])
            root.handlers[:], root.level = handlers, level  # it set up its own logging
            sys.stderr.writelines(line for line in logged.getvalue().splitlines(keepends=True)
                                  if '"level": "info"' not in line)
            print(f"  {'; '.join(said.lines)}" if said.lines else "")
            for path in sorted(_mail(mail) - before, key=lambda p: p.stat().st_mtime_ns):
                print(f"    {_describe(path)}")
    finally:
        worker_log.handlers.clear()
        worker_log.propagate = True
        for close in closers:
            close()


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
