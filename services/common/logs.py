"""Structured JSON logs, one object a line, with the request id that crossed
the services (HTTP header, then event payload) on every line it concerns.

Nothing secret goes in: tokens, card numbers and keys never reach a log call,
and `Redactor` masks anything shaped like one that slips through (a test scans
the logs of a whole test run for them).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

SECRET_PATTERNS = [
    re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+"),           # Stripe keys
    re.compile(r"\bwhsec_[A-Za-z0-9_]+"),                               # webhook secrets
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),  # JWTs
    CARD := re.compile(r"\b(?:\d[ -]?){13,19}\b"),                      # card numbers
    re.compile(r"\b(?:seti|pi)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"),      # client secrets
]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def find_secrets(text: str) -> list[str]:
    """Anything in `text` shaped like a key, token, client secret or card number."""
    found = []
    for pattern in SECRET_PATTERNS:
        for match in pattern.findall(text):
            digits = re.sub(r"\D", "", match)
            if pattern is CARD and not (13 <= len(digits) <= 19 and _luhn(digits)):
                continue  # long numbers that are not card numbers (timestamps, ids)
            found.append(match)
    return found


def redact(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "service": self.service, "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if rid := request_id_var.get():
            entry["request_id"] = rid
        for key in ("method", "path", "status", "duration_ms", "event_id", "topic",
                    "sweep", "item_id", "reason", "attempt"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: int = logging.INFO) -> None:
    """JSON to stderr for this process (a service, the worker or a CLI)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("stripe").setLevel(logging.WARNING)  # it logs every request at INFO
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # we log requests ourselves


def init_error_monitoring(service: str, dsn: str | None, environment: str) -> bool:
    """Sentry, only when SENTRY_DSN is set; no request bodies, headers or PII leave."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    def scrub(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
        request = event.get("request") or {}
        for key in ("data", "headers", "cookies", "query_string"):
            request.pop(key, None)
        return event

    sentry_sdk.init(dsn=dsn, integrations=[FlaskIntegration()], send_default_pii=False,
                    environment=environment, server_name=service, before_send=scrub,  # type: ignore[arg-type]
                    traces_sample_rate=0.0)
    return True
