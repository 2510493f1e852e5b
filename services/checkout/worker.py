"""`python -m services.checkout.worker [--interval S] [--once]`: checkout's background work.

Relays checkout's outbox to the services routed its topics
(messaging/routing.py) every pass, and runs the renewal sweeps
(services/checkout/sweep.py: reminders, charges with dunning, expiry,
expiring-card notices) and the quarterly seat reconciliation every 10 s.
SIGTERM finishes the current pass first.
"""

from __future__ import annotations

import sys

from messaging import jobs
from services.checkout.app import build_checkout
from services.checkout.config import CheckoutSettings
from services.checkout.usecases import reconciliation
from services.checkout.usecases.renewals import run_all

# Renewal sweeps are cheap when nothing is due, but need not run every second.
RENEWAL_SWEEP_SECONDS = 10.0


def build(renewal_seconds: float = RENEWAL_SWEEP_SECONDS) -> jobs.Jobs:
    checkout = build_checkout(CheckoutSettings.from_env())

    def renewals() -> str:
        done = {what: count for what, count in run_all(checkout, checkout.ctx.uow,
                                                       checkout.renewal_rules).items() if count}
        return f"checkout renewals: {done}" if done else ""

    def seats() -> str:
        done = {what: n for what, n in reconciliation.run(checkout, checkout.ctx.uow).items() if n}
        return f"checkout seats: {done}" if done else ""

    sweeps = jobs.Guarded("checkout sweeps", jobs.every(renewal_seconds, renewals))
    reconciles = jobs.Guarded("checkout seat reconciliation", jobs.every(renewal_seconds, seats))
    return [sweeps, reconciles, *jobs.relay_jobs(checkout.ctx)], [checkout.ctx.close]


if __name__ == "__main__":
    raise SystemExit(jobs.main(__doc__ or "", build, sys.argv[1:]))
