"""Benchmark: one renewal-reminder sweep over 25k, 50k and 100k subscriptions on
PostgreSQL (a script that prints numbers, not a timed test).

    make bench-renewals      # uses TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test

For each size it seeds a fresh database in bulk and times three sweeps:
the first ever (renewal dates spread over a year: everything within 90 days
catches up at once), the next day (the steady state: about 4/365 of the
subscriptions), and a worst day on which every subscription is due.
Results go to benchmarks/results/.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from services.checkout.app import build_checkout
from services.checkout.config import CheckoutSettings
from services.checkout.usecases.renewals import announce_renewals
from services.common.clock import FixedClock
from services.common.config import normalise_database_url
from services.common.migrate import upgrade
from tests.support import postgres_database

NOW = datetime(2026, 11, 21, 0, 10, tzinfo=UTC)
RESULTS = Path(__file__).resolve().parent / "results" / "renewal_sweep.md"


def seed(url: str, count: int, spread_days: int) -> None:
    """Namespaces, memberships, accounts, cards and subscriptions, in set-based SQL."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        script = """
            INSERT INTO namespaces (id, path, name, kind, plan, created_at)
            SELECT i, 'g' || i, 'G' || i, 'group', 'premium', :now FROM generate_series(1, :n) i;
            INSERT INTO users (id, email, name) SELECT i, 'u' || i || '@t', 'U' FROM generate_series(1, :n) i;
            INSERT INTO memberships (namespace_id, user_id, role, billable)
            SELECT i, i, 'owner', true FROM generate_series(1, :n) i;
            INSERT INTO billing_accounts (id, user_id, company, email, country, address_line1, city,
                                          postal_code, stripe_customer_id, created_at, updated_at)
            SELECT i, i, 'Co', 'b' || i || '@t', 'US', '1 St', 'X', '1', 'cus_' || i, :now, :now
            FROM generate_series(1, :n) i;
            INSERT INTO payment_methods (billing_account_id, stripe_payment_method_id, brand, last4,
                                         exp_month, exp_year, is_default, created_at)
            SELECT i, 'pm_' || i, 'visa', '4242', 12, 2030, true, :now FROM generate_series(1, :n) i;
            INSERT INTO subscriptions (namespace_id, billing_account_id, plan, seats, term_start, term_end,
                                       auto_renew, status, created_at, updated_at)
            SELECT i, i, 'premium', 1 + i % 20,
                   (:today + ((i % :spread) || ' days')::interval - interval '1 year')::date,
                   (:today + ((i % :spread) || ' days')::interval)::date,
                   i % 10 <> 0, 'active', :now, :now
            FROM generate_series(1, :n) i
        """
        params = {"now": NOW, "n": count, "today": NOW.date(), "spread": spread_days}
        for statement in script.split(";"):
            names = [k for k in params if f":{k}" in statement]
            conn.execute(text(statement), {k: params[k] for k in names})
        conn.execute(text("ANALYZE"))
    engine.dispose()


def timed_sweeps(url: str) -> list[tuple[float, int]]:
    """(seconds, reminders) of a sweep today, then of one the next day."""
    settings = CheckoutSettings(service="checkout", database_url=url, stripe_api_base="http://127.0.0.1:9")
    clock = FixedClock(NOW)
    app = build_checkout(settings, clock)
    results = []
    for _ in range(2):
        started = time.perf_counter()
        sent = announce_renewals(app, app.ctx.uow, app.renewal_rules)
        results.append((time.perf_counter() - started, sent))
        clock.advance(timedelta(days=1))
    app.ctx.close()
    return results


def main() -> int:
    base = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    os.environ["TEST_DATABASE_URL"] = base
    rows = []
    for count in (25_000, 50_000, 100_000):
        for spread, cases in ((365, ("first sweep (catch-up)", "next day")), (14, ("worst day: all due",))):
            with postgres_database("bench") as url:
                url = normalise_database_url(url)
                upgrade("checkout", url)
                seed(url, count, spread)
                measured = timed_sweeps(url)
            for case, (seconds, sent) in zip(cases, measured, strict=False):
                rows.append((count, case, sent, seconds))
                print(f"{count:>7} subscriptions, {case:<24} {sent:>7} reminders in {seconds:6.2f} s "
                      f"({seconds / max(sent, 1) * 1e6:,.0f} µs per reminder)", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    lines = ["# Renewal reminder sweep on PostgreSQL", "",
             f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, {platform.platform()}. "
             "Command: `make bench-renewals`.", "",
             "| subscriptions | day | reminders sent | seconds | µs per reminder |",
             "|---:|---|---:|---:|---:|"]
    lines += [f"| {c:,} | {case} | {sent:,} | {s:.2f} | {s / max(sent, 1) * 1e6:,.0f} |"
              for c, case, sent, s in rows]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
