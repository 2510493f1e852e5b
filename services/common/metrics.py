"""Prometheus metrics at /metrics in every service (what one service alone
counts lives in it: checkout's Stripe calls, notifications' deliveries).

Counters and histograms live in the process's default registry (under
gunicorn with several processes, set PROMETHEUS_MULTIPROC_DIR and the scrape
aggregates them). What the background work leaves behind (the outbox lag, the
events and sweep items that keep failing) is read from the database at scrape
time: the worker has no /metrics of its own, and every replica reports the
same truth.
"""

from __future__ import annotations

import os
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
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency", ["service", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(service, method, route, str(status)).inc()
    LATENCY.labels(service, route).observe(seconds)


def _from_database(ctx: Any) -> bytes:
    registry = CollectorRegistry()
    lag = Gauge("outbox_lag_seconds", "Age of the oldest undelivered event", ["service"], registry=registry)
    pending = Gauge("outbox_pending_events", "Events not yet delivered", ["service"], registry=registry)
    failing = Gauge("outbox_failing_events", "Undelivered events whose delivery failed at least once",
                    ["service"], registry=registry)
    model = ctx.outbox_model
    with ctx.session_factory() as session:
        oldest, count, failed = session.execute(
            select(func.min(model.occurred_at), func.count(), func.count(case((model.attempts > 0, 1))))
            .where(model.published_at.is_(None))).one()
        lag.labels(ctx.name).set((ctx.clock.now() - oldest).total_seconds() if oldest else 0)
        pending.labels(ctx.name).set(count)
        failing.labels(ctx.name).set(failed)
        if ctx.failure_model is not None:
            _sweep_failures(ctx, session, registry)
        for gauges in ctx.gauges:  # what one service alone reads at scrape time
            gauges(session, registry)
    return generate_latest(registry)


def _sweep_failures(ctx: Any, session: Session, registry: CollectorRegistry) -> None:
    """Items a sweep failed on (services/common/sweeps.py), by sweep and reason."""
    failing = Gauge("sweep_items_failing", "Items a sweep failed on that are not done yet",
                    ["service", "sweep", "reason"], registry=registry)
    given_up = Gauge("sweep_items_given_up", "Failing items no longer tried automatically (need a person)",
                     ["service", "sweep"], registry=registry)
    model = ctx.failure_model
    for sweep, reason, count, retrying in session.execute(
            select(model.sweep, model.reason, func.count(), func.count(model.retry_at))
            .group_by(model.sweep, model.reason)):
        failing.labels(ctx.name, sweep, reason).set(count)
        if count > retrying:
            given_up.labels(ctx.name, sweep).inc(count - retrying)


def metrics_response(ctx: Any) -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return Response(body + _from_database(ctx), mimetype=CONTENT_TYPE_LATEST)
