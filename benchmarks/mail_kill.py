"""Benchmark: the real mail sender (`python -m services.notifications.deliver`)
SIGKILLed in the middle of its batches, against the project's SMTP sink.

    make bench-mail-kill                   # 3 runs of 600 notifications, 10 kills each, on SQLite
    make bench-mail-kill DATABASE=postgres # on PostgreSQL (TEST_DATABASE_URL's server)

Each kill lands at a random moment up to 0.3 s after the restarted sender's
first message reached the sink (some messages into its batch, at any point of
a message's round trip); the sender is started again each time, and at the
end once more with `--once` to finish. Then, at the sink:

- lost: notifications whose Message-ID never arrived (must be 0);
- sent twice: copies the relay received because a kill fell between its 250
  and the sender's `sent` commit (the window the sender narrows; the sink
  drops them, as a real mailbox does);
- in the mailbox twice: copies a person would see (must be 0).

Results go to benchmarks/results/mail_kill_<database>.md.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devtools.mailsink import MaildirHandler, start
from persistence.db import make_engine
from services.common.config import ROOT, normalise_database_url
from services.common.migrate import upgrade
from services.notifications.adapters.models import FunnelEventRow, Notification
from services.notifications.domain.schedule import message_id
from tests.support import free_port, postgres_database, sqlite_url

RESULTS = Path(__file__).resolve().parent / "results"
MAIL_FROM = "Checkout <billing@checkout.test>"
CONTEXT = {"order_id": 0, "namespace_id": 100, "namespace_path": "acme", "email": "", "plan": "premium",
           "seats": 5, "currency": "USD", "subtotal": 174000, "discount_total": 0, "total": 174000,
           "term_start": "2026-11-21", "term_end": "2027-11-21", "company": "Acme Corp", "card": None,
           "discount_code": None, "user_id": None,
           "lines": [{"description": "Premium plan, 5 seats, 12 months", "quantity": 5, "unit_amount": 34800,
                      "amount": 174000, "discount": 0, "net": 174000}]}


@dataclass(frozen=True)
class KillRun:
    notifications: int
    kills: int
    lost: int
    sent_twice: int  # copies the relay received and the sink dropped
    in_mailbox_twice: int  # copies a person would see
    marked_sent: int
    sent_events: int
    seconds: float


def insert_due(url: str, count: int) -> set[str]:
    """`count` receipts due now; their Message-IDs."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.add_all(Notification(
            dedupe_key=f"receipt/{i}", template="receipt", recipient=f"owner{i}@kill.test",
            subject=f"Receipt {i}", context={**CONTEXT, "order_id": i, "email": f"owner{i}@kill.test"},
            send_after=now - timedelta(minutes=1), status="scheduled", attempts=0, traffic="real",
            created_at=now) for i in range(count))
    engine.dispose()
    return {message_id(f"receipt/{i}", "checkout.test") for i in range(count)}


def sender(url: str, port: int, *args: str, log: Path, **environ: str) -> subprocess.Popen[bytes]:
    """The real sender process, as `make run` starts it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POSTHOG_", "DATABASE_URL", "CLOCK_FILE", "MAIL_API_"))}
    env.update(NOTIFICATIONS_DATABASE_URL=url, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
               MAIL_FROM=MAIL_FROM, APP_ENV="test", **environ)
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "services.notifications.deliver", *args], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def kill_run(url: str, workdir: Path, *, count: int = 600, kills: int = 10,
             rng: random.Random | None = None) -> KillRun:
    """Send `count` notifications with the sender SIGKILLed `kills` times; count at the sink."""
    rng = rng or random.Random()
    expected = insert_due(url, count)
    log = workdir / "sender.log"
    controller = start(workdir / "mail", port=free_port())
    handler: MaildirHandler = controller.handler
    started = time.perf_counter()
    try:
        for _ in range(kills):
            worker = sender(url, controller.port, "--batch", "50", "--interval", "0.1",
                            "--lease-seconds", "1", log=log)
            before, deadline = handler.received, time.monotonic() + 60
            while handler.received == before and handler.received < count:  # it is sending
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sender stopped or stalled:\n" + log.read_text()[-3000:])
                time.sleep(0.005)
            # Some messages into its batch, at a moment unrelated to any one message's round trip
            # (a kill timed on the sink's receipt would land in the 250-to-commit window too often).
            time.sleep(rng.uniform(0, 0.3))
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        finisher = sender(url, controller.port, "--once", "--lease-seconds", "0", log=log)
        if finisher.wait(timeout=300) != 0:
            raise RuntimeError("the last sender failed:\n" + log.read_text()[-3000:])
        seconds = time.perf_counter() - started
    finally:
        controller.stop()
    box = mailbox.Maildir(str(workdir / "mail"), create=False)
    held = Counter(str(box[key]["Message-ID"]) for key in box.keys())
    engine = make_engine(url)
    with Session(engine) as session:
        marked = session.scalar(select(func.count()).where(Notification.status == "sent")) or 0
        events = session.scalar(select(func.count()).select_from(FunnelEventRow)) or 0
    engine.dispose()
    return KillRun(notifications=count, kills=kills, lost=len(expected - set(held)),
                   sent_twice=len(handler.dropped), in_mailbox_twice=sum(n - 1 for n in held.values()),
                   marked_sent=marked, sent_events=events, seconds=seconds)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, migrated notifications database: a SQLite file, or PostgreSQL."""
    if kind == "sqlite":
        url = sqlite_url(folder / "notifications.db")
        upgrade("notifications", url)
        yield url
        return
    with postgres_database("mailkill") as url:
        url = normalise_database_url(url)
        upgrade("notifications", url)
        yield url


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--notifications", type=int, default=600)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)
    if args.database == "postgres":
        os.environ.setdefault("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    runs = []
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as folder, database(args.database, Path(folder)) as url:
            run = kill_run(url, Path(folder), count=args.notifications, kills=args.kills)
        runs.append(run)
        print(f"run {number}: {run.notifications} notifications, {run.kills} SIGKILLs: lost {run.lost}, "
              f"sent twice {run.sent_twice} (dropped by the sink), "
              f"in the mailbox twice {run.in_mailbox_twice}; marked sent {run.marked_sent}, "
              f"{run.seconds:.1f} s", flush=True)
    results = RESULTS / f"mail_kill_{args.database}.md"
    command = "make bench-mail-kill" + (" DATABASE=postgres" if args.database == "postgres" else "")
    lines = ["# The mail sender SIGKILLed mid-batch", "",
             f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, {args.database}. Command: `{command}`.", "",
             "| run | notifications | SIGKILLs | lost | sent twice (the sink dropped the copy) "
             "| in the mailbox twice | seconds |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {n} | {r.notifications} | {r.kills} | {r.lost} | {r.sent_twice} | {r.in_mailbox_twice} "
              f"| {r.seconds:.1f} |" for n, r in enumerate(runs, 1)]
    results.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written to {results}")
    return 0 if all(r.lost == 0 and r.in_mailbox_twice == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
