"""What checkout's calls to Stripe cost, for /metrics and the Server-Timing header."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import Counter, Histogram

from persistence import timing

T = TypeVar("T")

STRIPE_CALLS = Counter("stripe_calls_total", "Calls to Stripe", ["operation", "outcome"])
STRIPE_LATENCY = Histogram("stripe_call_duration_seconds", "Stripe call latency", ["operation"],
                           buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))


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
