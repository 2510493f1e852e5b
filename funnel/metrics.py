"""The funnel's Prometheus counters, in the process's default registry, so every
service's /metrics (services/common/metrics.py) shows them."""

from __future__ import annotations

from prometheus_client import Counter

FUNNEL_STEPS = Counter("funnel_steps_total", "Funnel steps recorded", ["service", "step", "traffic"])
# View-only funnel rows written in batches (funnel/batch.py).
FUNNEL_BATCH_FAILURES = Counter("funnel_batch_failures_total",
                                "Batches of view-only funnel rows the database refused (retried)",
                                ["service"])
FUNNEL_ROWS_DROPPED = Counter(
    "funnel_rows_dropped_total",
    "View-only funnel rows given up (buffer full, or a stop, while the database refused)",
    ["service"])
POSTHOG_SKIPPED = Counter("posthog_events_skipped_total",
                          "Funnel events not forwarded while PostHog was failing (the local store has them)",
                          ["service"])
