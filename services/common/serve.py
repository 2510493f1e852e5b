"""Run one service on the development server (`make run`); production uses gunicorn."""

from __future__ import annotations

import os
from collections.abc import Callable

from flask import Flask
from werkzeug.serving import run_simple

from services.common.config import port_for
from services.common.logs import configure_logging


def serve(service: str, factory: Callable[[], Flask]) -> None:
    configure_logging(service)
    host = os.environ.get("HOST", "127.0.0.1")
    run_simple(host, port_for(service), factory(), threaded=True, use_reloader=False)
