"""Prometheus metrics at /metrics in every service.

Counters and histograms live in the process's default registry (under
gunicorn with several processes, set PROMETHEUS_MULTIPROC_DIR and the scrape
aggregates them); the outbox lag is measured from the database at scrape
time, so every replica reports the same truth.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from services.common import timing

T = TypeVar("T")

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency", ["service", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
FUNNEL_STEPS = Counter("funnel_steps_total", "Funnel steps recorded", ["service", "step", "traffic"])
POSTHOG_SKIPPED = Counter("posthog_events_skipped_total",
                          "Funnel events not forwarded while PostHog was failing (the local store has them)",
                          ["service"])
STRIPE_CALLS = Counter("stripe_calls_total", "Calls to Stripe", ["operation", "outcome"])
STRIPE_LATENCY = Histogram("stripe_call_duration_seconds", "Stripe call latency", ["operation"],
                           buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
DELIVERIES = Counter("notification_deliveries_total", "Mail delivery attempts", ["outcome"])


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(service, method, route, str(status)).inc()
    LATENCY.labels(service, route).observe(seconds)


def timed_stripe_call(operation: str, call: Callable[[], T]) -> T:
    started = time.perf_counter()
    outcome = "ok"
    try:
        return call()
    except Exception as exc:
        outcome = type(exc).__name__
        raise
    finally:
        elapsed = time.perf_counter() - started
        STRIPE_CALLS.labels(operation, outcome).inc()
        STRIPE_LATENCY.labels(operation).observe(elapsed)
        timing.add("stripe", elapsed)


def _outbox(ctx: Any) -> bytes:
    registry = CollectorRegistry()
    lag = Gauge("outbox_lag_seconds", "Age of the oldest undelivered event", ["service"], registry=registry)
    pending = Gauge("outbox_pending_events", "Events not yet delivered", ["service"], registry=registry)
    model = ctx.outbox_model
    with ctx.session_factory() as session:
        oldest, count = session.execute(select(func.min(model.occurred_at), func.count())
                                        .where(model.published_at.is_(None))).one()
    lag.labels(ctx.name).set((ctx.clock.now() - oldest).total_seconds() if oldest else 0)
    pending.labels(ctx.name).set(count)
    return generate_latest(registry)


def metrics_response(ctx: Any) -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return Response(body + _outbox(ctx), mimetype=CONTENT_TYPE_LATEST)
