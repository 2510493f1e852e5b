"""Run one service on the development server (`make run`); production uses gunicorn."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from flask import Flask
from werkzeug.serving import run_simple

from services.common.config import DEFAULT_PORTS


def port_for(service: str) -> int:
    return int(os.environ.get(f"{service.upper()}_PORT", DEFAULT_PORTS[service]))


def serve(service: str, factory: Callable[[], Flask]) -> None:
    logging.basicConfig(level=logging.INFO, format=f"{service} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("stripe").setLevel(logging.WARNING)  # it logs every request at INFO
    host = os.environ.get("HOST", "127.0.0.1")
    run_simple(host, port_for(service), factory(), threaded=True, use_reloader=False)
