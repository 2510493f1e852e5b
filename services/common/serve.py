"""Run one service on the development server (`make run`); production uses gunicorn."""

from __future__ import annotations

import os
from collections.abc import Callable

from flask import Flask
from werkzeug.serving import run_simple

from services.common.config import DEFAULT_PORTS
from services.common.logs import configure_logging


def port_for(service: str) -> int:
    return int(os.environ.get(f"{service.upper()}_PORT", DEFAULT_PORTS[service]))


def serve(service: str, factory: Callable[[], Flask]) -> None:
    configure_logging(service)
    host = os.environ.get("HOST", "127.0.0.1")
    run_simple(host, port_for(service), factory(), threaded=True, use_reloader=False)
