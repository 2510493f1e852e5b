"""The mail sender's counter, on notifications' /metrics (docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter

DELIVERIES = Counter("notification_deliveries_total", "Mail delivery attempts", ["outcome"])
