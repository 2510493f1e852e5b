"""`python -m services.checkout.sweep`: one pass of every renewal sweep (reminders,
auto-renewal charges with dunning, expiry, expiring-card notices) and of the
quarterly seat reconciliation, then exit.

`entrypoint sweep renewals` runs this from a CronJob (as `sweep trials` runs
services/trials/sweep.py). The worker runs the same
sweeps every few seconds; running both, or two passes at once, is safe: each
sweep records what is due with INSERT ... ON CONFLICT DO NOTHING and works
through the rows with FOR UPDATE SKIP LOCKED (services/checkout/usecases/renewals.py).
"""

from __future__ import annotations

from services.checkout.app import build_checkout
from services.checkout.config import CheckoutSettings
from services.checkout.usecases import reconciliation
from services.checkout.usecases.renewals import run_all
from services.common.logs import configure_logging


def main() -> int:
    configure_logging("checkout-renewals")
    checkout = build_checkout(CheckoutSettings.from_env())
    try:
        done = run_all(checkout, checkout.ctx.uow, checkout.renewal_rules)
        print(f"checkout renewals: {done}", flush=True)
        print(f"checkout seats: {reconciliation.run(checkout, checkout.ctx.uow)}", flush=True)
    finally:
        checkout.ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
