"""The loop each service's worker runs (services/<name>/worker.py): a few jobs,
one pass of each every second, until SIGTERM, which finishes the current pass
first. Several replicas are safe: relays claim rows with SKIP LOCKED, the
sweeps' UPDATEs are conditional, the collector ignores duplicate event ids.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence

from identity.auth import service_token
from messaging.relay import relay_once
from messaging.routing import subscribers
from services.common.logs import configure_logging
from services.common.service import ServiceContext
from services.common.sweeps import describe

log = logging.getLogger("worker")

# A job does one pass of its work and says what it did ("" for nothing), or
# None when it is not its turn (the renewal sweeps run every 10 s).
Job = Callable[[], str | None]


class Guarded:
    """A job whose failure does not stop the others. A job that keeps failing
    the same way (the database is down) logs its traceback once, then one line
    a pass until it recovers: the log stays readable at one pass a second."""

    def __init__(self, name: str, job: Job) -> None:
        self.name, self.job = name, job
        self.failing: str | None = None  # the error it keeps failing with

    def __call__(self) -> None:
        try:
            said = self.job()
        except Exception as exc:
            what = type(exc).__name__
            if what == self.failing:
                log.error("worker job %s still failing: %s", self.name, describe(exc))
            else:
                log.exception("worker job %s failed", self.name)
            self.failing = what
            return
        if said is None:  # not its turn this pass: nothing is known yet
            return
        if self.failing:
            log.info("worker job %s works again", self.name)
            self.failing = None
        if said:
            log.info(said)


# What a worker module builds: its guarded jobs, and what to close when it stops.
Jobs = tuple[list[Guarded], list[Callable[[], None]]]


def every(seconds: float, job: Job) -> Job:
    """`job` at most once every `seconds`; None on the passes in between."""
    last = [0.0]

    def throttled() -> str | None:
        if last[0] and time.monotonic() - last[0] < seconds:
            return None
        last[0] = time.monotonic()
        return job()
    return throttled


def relay_jobs(ctx: ServiceContext) -> list[Guarded]:
    """The relay of `ctx`'s outbox to the services routed its topics (none if nobody is)."""
    subs = subscribers(ctx.name, ctx.settings)
    if not subs:
        return []

    def relay() -> str:
        sent = relay_once(ctx, subs, token=lambda audience: service_token(ctx.settings, audience))
        return f"{ctx.name}: relayed {sent}" if sent else ""
    return [Guarded(f"{ctx.name} relay", relay)]


def run(jobs: Sequence[Guarded], interval: float, once: bool) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            for job in jobs:
                job()
            if once:
                break
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    return 0


def main(description: str, build: Callable[[], Jobs], argv: Sequence[str]) -> int:
    """A worker module's command line: `[--interval S] [--once]`."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_loop_arguments(parser)
    args = parser.parse_args(list(argv))
    configure_logging("worker")
    return run_built([build], args.interval, args.once)


def add_loop_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")


def run_built(builders: Sequence[Callable[[], Jobs]], interval: float, once: bool) -> int:
    """Build every worker's jobs, run them in one loop, close them all at the end."""
    jobs: list[Guarded] = []
    closers: list[Callable[[], None]] = []
    try:
        for build in builders:
            built, to_close = build()
            jobs += built
            closers += to_close
        return run(jobs, interval, once)
    finally:
        for close in closers:
            close()
