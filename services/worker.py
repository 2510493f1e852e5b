"""`python -m services.worker [service ...]`: the stack's background work.

For each named job (default: all), relay the service's outbox to the services
subscribed to its topics, and run its sweep: trials ends the trials whose time
is up, checkout sends renewal reminders and charges renewals; `experiments`
copies every service's funnel events into the experiments' store. `make run`
runs one worker for everything; a deployment splits them (several replicas are
safe: relays claim rows with SKIP LOCKED, the sweeps' UPDATEs are conditional,
the collector ignores duplicate event ids). SIGTERM finishes the current pass first.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from services.common.auth import issue_token
from services.common.clock import SystemClock
from services.common.config import Settings
from services.common.db import make_engine
from services.common.logs import configure_logging
from services.common.relay import Subscriber, relay_once
from services.common.service import ServiceContext
from services.common.sweeps import describe

# Who hears what. Topic prefixes; consumers de-duplicate with their inbox.
SUBSCRIPTIONS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "checkout": [("trials", ("subscription.",)),
                 ("notifications", ("order.", "subscription.", "card."))],
    "trials": [("checkout", ("trial.",)), ("notifications", ("trial.",))],
}
# Renewal sweeps are cheap when nothing is due, but need not run every second.
RENEWAL_SWEEP_SECONDS = 10.0
# Funnel events reach the experiments' event store within this long.
COLLECT_SECONDS = 5.0
# Besides the publishing services, the worker can run the experiments collector.
EXPERIMENTS = "experiments"
JOBS = (*sorted(SUBSCRIPTIONS), EXPERIMENTS)

log = logging.getLogger("worker")

# A job does one pass of its work and says what it did ("" for nothing), or
# None when it is not its turn (the renewal sweeps run every 10 s).
Job = Callable[[], str | None]


def subscribers(service: str, settings: Settings) -> list[Subscriber]:
    return [Subscriber(name, settings.service_urls[name], topics)
            for name, topics in SUBSCRIPTIONS.get(service, [])]


def service_token(settings: Settings) -> str:
    """What a relay shows the consumers: a short-lived token with the 'service' role."""
    return issue_token(settings.auth_secret, 0, "relay@services.internal", ("service",),
                       now=SystemClock().now(), ttl=timedelta(minutes=10))


def _relay_job(ctx: ServiceContext, subs: list[Subscriber], settings: Settings) -> Job:
    def relay() -> str:
        sent = relay_once(ctx, subs, token=service_token(settings))
        return f"{ctx.name}: relayed {sent}" if sent else ""
    return relay


def _sweep_job(settings: Settings) -> tuple[Job, ServiceContext]:
    from services.trials.app import build_trials
    from services.trials.usecases.trials import expire_due

    trials = build_trials(settings)

    def sweep() -> str:
        ended = expire_due(trials, trials.ctx.uow)
        return f"trials: expired {len(ended)}" if ended else ""
    return sweep, trials.ctx


def _renewal_job(settings: Settings) -> tuple[Job, ServiceContext]:
    from services.checkout.app import build_checkout
    from services.checkout.usecases.renewals import run_all

    checkout = build_checkout(settings)
    last = [0.0]

    def renewals() -> str | None:
        if time.monotonic() - last[0] < RENEWAL_SWEEP_SECONDS:
            return None
        last[0] = time.monotonic()
        done = run_all(checkout, checkout.ctx.uow, checkout.renewal_rules)
        return f"checkout renewals: {done}" if any(done.values()) else ""
    return renewals, checkout.ctx


def _collect_job() -> Job:
    """Copy the services' funnel events into the experiments' event store."""
    from experiments import store

    engine = make_engine(store.store_url_from_env())
    sources = {name: make_engine(url) for name, url in store.source_urls_from_env().items()}
    last = [0.0]

    def collect() -> str | None:
        if time.monotonic() - last[0] < COLLECT_SECONDS:
            return None
        last[0] = time.monotonic()
        copied = store.collect_once(engine, sources)
        return f"experiments: collected {copied} funnel events" if copied else ""
    return collect


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


def build_jobs(services: list[str]) -> tuple[list[Guarded], list[ServiceContext]]:
    jobs: list[Guarded] = []
    contexts: list[ServiceContext] = []
    for service in services:
        if service == EXPERIMENTS:
            jobs.append(Guarded("experiments collector", _collect_job()))
            continue
        settings = Settings.from_env(service)
        # Each publishing service has its own periodic job besides its relay.
        job, ctx = _sweep_job(settings) if service == "trials" else _renewal_job(settings)
        jobs.append(Guarded(f"{service} sweeps", job))
        contexts.append(ctx)
        if subs := subscribers(service, settings):
            jobs.append(Guarded(f"{service} relay", _relay_job(ctx, subs, settings)))
    return jobs, contexts


def run(services: list[str], interval: float, once: bool) -> int:
    jobs, contexts = build_jobs(services)
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
    finally:
        for ctx in contexts:
            ctx.close()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("services", nargs="*", metavar="service",
                        help=f"any of {', '.join(JOBS)} (default: all)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    unknown = set(args.services) - set(JOBS)
    if unknown:
        parser.error(f"unknown services: {', '.join(sorted(unknown))}")
    configure_logging("worker")
    return run(args.services or list(JOBS), args.interval, args.once)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
