"""Benchmark: the experiment report's aggregation over 1,000,000 funnel events in
the event store on PostgreSQL (a script that prints numbers, not a timed test).

    make bench-report      # uses TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test

It loads the store in bulk (INSERT ... SELECT generate_series, seeded) with the
four experiments of experiments/metrics.toml and filler steps up to a million
rows, then times each experiment's report twice: straight after the load
(before PostgreSQL has table statistics, as on a fresh store) and after
ANALYZE. It also times the collector copying 100,000 rows from a service
database. Results go to benchmarks/results/.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from experiments.analysis import analyse
from experiments.catalog import Catalog
from experiments.decisions import decide
from experiments.store import collect_once, events, to_micros, upgrade
from persistence.db import make_engine
from services.common.config import normalise_database_url
from services.common.migrate import upgrade as upgrade_service
from tests.support import postgres_database

TOTAL_EVENTS = 1_000_000
COLLECTED_EVENTS = 100_000
START = datetime(2026, 9, 1, tzinfo=UTC)
RESULTS = Path(__file__).resolve().parent / "results" / "experiment_report.md"
DAY_US = 86_400 * 1_000_000

# One statement per experiment: exposures (some logged by two services), then
# each funnel step for a seeded random share of the units that reached the
# previous one. :t0 is the start in microseconds; units arrive over 60 days.
EXPERIMENTS = """
CREATE TEMP TABLE units AS
SELECT 'smb-discount-prompt' AS experiment, 'id' AS attr, i AS unit, (random() < 0.5)::int AS variation,
       :t0 + (random() * 60 * :day)::bigint AS exposed_us
FROM generate_series(1, 150000) i
UNION ALL
SELECT 'default-seats', 'namespace_id', i, (random() < 0.5)::int, :t0 + (random() * 60 * :day)::bigint
FROM generate_series(1, 100000) i
UNION ALL
SELECT 'ultimate-trial-length', 'namespace_id', 100000 + i, (random() < 0.5)::int,
       :t0 + (random() * 60 * :day)::bigint
FROM generate_series(1, 60000) i
UNION ALL
SELECT 'duo-pro-upsell', 'namespace_id', 160000 + i, (random() < 0.5)::int,
       :t0 + (random() * 60 * :day)::bigint
FROM generate_series(1, 60000) i;

INSERT INTO events (event_id, service, source_id, step, user_id, namespace_id, occurred_at, occurred_us,
                    properties, experiments, traffic, experiment_key, variation_id, variation_name,
                    hash_attribute, unit_id)
SELECT gen_random_uuid()::text, s.service, 0, 'experiment_viewed',
       CASE WHEN u.attr = 'id' THEN u.unit ELSE 7 END, CASE WHEN u.attr = 'id' THEN NULL ELSE u.unit END,
       to_timestamp((u.exposed_us + s.lag) / 1e6), u.exposed_us + s.lag,
       json_build_object('experiment', u.experiment, 'variation', u.variation), '{}',
       CASE WHEN random() < 0.02 THEN 'synthetic' ELSE 'real' END,
       u.experiment, u.variation, 'v' || u.variation, u.attr, u.unit
FROM units u CROSS JOIN LATERAL (
    SELECT 'checkout' AS service, 0 AS lag
    UNION ALL SELECT 'trials', 60000000 WHERE u.unit % 5 = 0) s;

CREATE TEMP TABLE steps (experiment text, position int, step text, props json, rate float, treated float);
INSERT INTO steps VALUES
  ('smb-discount-prompt', 1, 'plan_chosen', '{"plan": "premium"}', 0.35, 1.10),
  ('smb-discount-prompt', 2, 'card_captured', '{}', 0.55, 1.05),
  ('smb-discount-prompt', 3, 'purchase_completed', '{"plan": "premium"}', 0.80, 1.00),
  ('default-seats', 1, 'plan_chosen', '{"plan": "premium"}', 0.40, 1.00),
  ('default-seats', 2, 'purchase_completed', '{"plan": "premium"}', 0.30, 0.95),
  ('ultimate-trial-length', 1, 'trial_started', '{"kind": "ultimate"}', 0.30, 1.00),
  ('ultimate-trial-length', 2, 'trial_converted', '{"kind": "ultimate"}', 0.20, 0.85),
  ('duo-pro-upsell', 1, 'trial_started', '{"kind": "duo_pro"}', 0.15, 1.30),
  ('duo-pro-upsell', 2, 'purchase_completed', '{"plan": "ultimate"}', 0.10, 1.00);

CREATE TEMP TABLE reached AS
SELECT u.experiment, u.attr, u.unit, u.variation, 0 AS position, u.exposed_us AS at_us FROM units u;
"""

STEP = """
INSERT INTO reached
SELECT r.experiment, r.attr, r.unit, r.variation, s.position,
       r.at_us + (random() * :day
                  * CASE WHEN s.experiment = 'ultimate-trial-length' THEN 80 ELSE 12 END)::bigint
FROM reached r JOIN steps s ON s.experiment = r.experiment AND s.position = r.position + 1
WHERE r.position = :position - 1 AND random() < s.rate * CASE WHEN r.variation = 1 THEN s.treated ELSE 1 END
"""

STEP_EVENTS = """
INSERT INTO events (event_id, service, source_id, step, user_id, namespace_id, occurred_at, occurred_us,
                    properties, experiments, traffic)
SELECT gen_random_uuid()::text, 'checkout', 0, s.step,
       CASE WHEN r.attr = 'id' THEN r.unit ELSE 7 END,
       CASE WHEN r.attr = 'id' AND s.step = 'card_captured' THEN NULL WHEN r.attr = 'id' THEN 900000 + r.unit
            ELSE r.unit END,
       to_timestamp(r.at_us / 1e6), r.at_us, s.props, '{}', 'real'
FROM reached r JOIN steps s ON s.experiment = r.experiment AND s.position = r.position
WHERE r.position > 0
"""

# Steps nobody analyses (plans viewed, notifications...) up to the total.
FILLER = """
INSERT INTO events (event_id, service, source_id, step, user_id, namespace_id, occurred_at, occurred_us,
                    properties, experiments, traffic)
SELECT gen_random_uuid()::text, 'checkout', 0,
       (ARRAY['plans_viewed', 'notification_sent', 'trial_eligibility_checked', 'code_applied'])[1 + i % 4],
       1 + (random() * 150000)::int, 1 + (random() * 220000)::int,
       to_timestamp(t / 1e6), t, '{}', '{}', 'real'
FROM (SELECT i, :t0 + (random() * 90 * :day)::bigint AS t FROM generate_series(1, :n) i) f
"""


def load(engine: Engine) -> float:
    started = time.perf_counter()
    params = {"t0": to_micros(START), "day": DAY_US}
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        for statement in EXPERIMENTS.split(";\n"):
            if statement.strip():
                conn.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
        for position in (1, 2, 3):
            conn.execute(text(STEP), {"position": position, "day": DAY_US})
        conn.execute(text(STEP_EVENTS))
        missing = TOTAL_EVENTS - (conn.scalar(select(func.count()).select_from(events)) or 0)
        conn.execute(text(FILLER), {**params, "n": missing})
    return time.perf_counter() - started


def time_reports(engine: Engine, catalog: Catalog) -> dict[str, tuple[float, float, str]]:
    """{experiment: (funnel seconds, decision seconds, what it counted)}: the
    report is both, the funnel (`analyse`) then the plan's decision (`decide`)."""
    timings = {}
    for key in catalog.keys:
        metrics, definition = catalog.get(key)
        started = time.perf_counter()
        report = analyse(engine, metrics, definition)
        funnel = time.perf_counter() - started
        started = time.perf_counter()
        decide(engine, metrics, definition, report)
        decision = time.perf_counter() - started
        counted = "; ".join(f"{v.name}: {v.units:,} → " + " → ".join(f"{s.units:,}" for s in v.steps)
                            for v in report.variations)
        timings[key] = (funnel, decision, counted)
    return timings


def time_collector(store: Engine) -> float:
    """Seconds for the collector to copy COLLECTED_EVENTS rows from a checkout database."""
    with postgres_database("bench_checkout") as url:
        url = normalise_database_url(url)
        upgrade_service("checkout", url)
        source = make_engine(url)
        with source.begin() as conn:
            conn.execute(text(
                "INSERT INTO funnel_events (event_id, service, step, user_id, namespace_id, occurred_at,"
                " properties, experiments, traffic) SELECT gen_random_uuid()::text, 'checkout',"
                " 'plan_chosen', i, i, now(), '{\"plan\": \"premium\"}', '{}', 'real'"
                " FROM generate_series(1, :n) i"),
                {"n": COLLECTED_EVENTS})
        started = time.perf_counter()
        copied = collect_once(store, {"checkout": source}, max_batches=None)
        seconds = time.perf_counter() - started
        source.dispose()
    assert copied == COLLECTED_EVENTS, copied
    return seconds


def main() -> int:
    base = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    os.environ["TEST_DATABASE_URL"] = base
    catalog = Catalog.load()
    with postgres_database("bench_store") as url:
        url = normalise_database_url(url)
        upgrade(url)
        engine = make_engine(url)
        load_seconds = load(engine)
        with engine.connect() as conn:
            rows = conn.scalar(select(func.count()).select_from(events)) or 0
            exposures = conn.scalar(select(func.count()).where(events.c.experiment_key.is_not(None))) or 0
        print(f"loaded {rows:,} events ({exposures:,} exposures) in {load_seconds:.1f} s", flush=True)
        fresh = time_reports(engine, catalog)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE events"))
        analysed = time_reports(engine, catalog)
        for key, (funnel, decision, counted) in analysed.items():
            print(f"{key:<24} fresh {fresh[key][0]:6.2f} + {fresh[key][1]:6.2f} s, "
                  f"analysed {funnel:6.2f} + {decision:6.2f} s   {counted}", flush=True)
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE events, collector_checkpoints"))
        collect_seconds = time_collector(engine)
        print(f"collector: {COLLECTED_EVENTS:,} rows in {collect_seconds:.2f} s", flush=True)
        engine.dispose()
    write_results(rows, exposures, load_seconds, fresh, analysed, collect_seconds)
    return 0


def write_results(rows: int, exposures: int, load_seconds: float, fresh: dict[str, tuple[float, float, str]],
                  analysed: dict[str, tuple[float, float, str]], collect_seconds: float) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    load = os.getloadavg()[0]  # other work on the machine shows in the timings
    lines = [
        "# Experiment report aggregation on PostgreSQL", "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.platform()}, load average {load:.1f} at the end. "
        "Command: `make bench-report`.", "",
        f"Store: {rows:,} funnel events ({exposures:,} of them exposures, 2% synthetic, a fifth of the units "
        f"exposed in two services), loaded in {load_seconds:.1f} s. A report is the funnel (`analyse()`: "
        "the SQL aggregation, gbstats and the SRM check) then the plan's decision (`decide()`: every plan "
        "metric over complete windows in one query, the time-to-convert query, gbstats). *Fresh* is "
        "straight after the bulk load, before PostgreSQL has statistics for the table; *analysed* is "
        "after `ANALYZE`.", "",
        "| experiment | funnel, fresh (s) | decision, fresh (s) | funnel, analysed (s) "
        "| decision, analysed (s) | units per variation → each step |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [f"| {key} | {fresh[key][0]:.2f} | {fresh[key][1]:.2f} | {funnel:.2f} | {decision:.2f} "
              f"| {counted} |" for key, (funnel, decision, counted) in analysed.items()]
    lines += ["", f"Collector: {COLLECTED_EVENTS:,} new rows copied from a checkout database in "
              f"{collect_seconds:.2f} s ({COLLECTED_EVENTS / collect_seconds:,.0f} rows/s, "
              "batches of 5,000)."]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
