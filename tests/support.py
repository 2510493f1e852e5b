"""Helpers shared by the test suites: databases, localstripe, live servers, tokens."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import stripe
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from identity import sessions
from identity.auth import issue_token
from services.common.clock import SystemClock
from services.common.config import normalise_database_url

TEST_SECRET = "test-auth-secret-long-enough-for-hs256-signing"
WEBHOOK_SECRET = "whsec_test_secret"
PG_SKIP_REASON = ("PostgreSQL tests need TEST_DATABASE_URL, e.g. "
                  "TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test make test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token(user_id: int, email: str | None = None, roles: tuple[str, ...] = ()) -> str:
    return issue_token(TEST_SECRET, user_id, email or f"user{user_id}@test", roles,
                       now=SystemClock().now(), ttl=timedelta(hours=2))


def auth(user_id: int, roles: tuple[str, ...] = ()) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user_id, roles=roles)}"}


def start_session(client: FlaskClient, user_id: int = 1, session_token: str | None = None) -> FlaskClient:
    """Sign a test client in the way the sign-in callback does (sessions.start):
    the signed session cookie holds the token and a session id."""
    with client.session_transaction() as session:
        session.clear()
        session[sessions.TOKEN] = session_token or token(user_id)
        session[sessions.SESSION_ID] = f"test-session-{user_id}"
        session.permanent = True
    return client


def pg_base_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    return normalise_database_url(url) if url else None


@contextmanager
def postgres_database(suffix: str) -> Iterator[str]:
    """A fresh PostgreSQL database next to TEST_DATABASE_URL's, dropped afterwards."""
    base = pg_base_url()
    assert base
    url = make_url(base)
    name = f"{url.database}_{suffix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class LocalStripe:
    """localstripe as a real subprocess on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = shutil.which("localstripe", path=os.path.dirname(sys.executable)) or "localstripe"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--from-scratch"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/v1/customers", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("localstripe did not start")

    def register_webhook(self, name: str, url: str, secret: str) -> None:
        requests.post(f"{self.url}/_config/webhooks/{name}", data={"url": url, "secret": secret},
                      timeout=5).raise_for_status()

    @property
    def sdk(self) -> stripe.StripeClient:
        """Stripe's own SDK, to look at what the services did."""
        return stripe.StripeClient("sk_test_inspector", base_addresses={"api": self.url})

    def forget(self) -> None:
        """Drop every object, as a localstripe restarted from scratch has none."""
        requests.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def payment_intents(self, *customers: str) -> list[Any]:
        """The customers' PaymentIntents (every page: the store outgrows one)."""
        pages = self.sdk.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        return [pi for pi in pages if pi.customer in customers]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LiveServer:
    """A Flask app on a real socket (threaded), for webhooks and concurrency."""

    def __init__(self, app: Flask, request_handler: type[WSGIRequestHandler] | None = None) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True,
                                                  request_handler=request_handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class PayloadServer:
    """A stand-in for GrowthBook's API: serves /api/features/<key>, or fails."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests += 1
                body = json.dumps(server.payload).encode()
                ok = self.path == "/api/features/sdk-test"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if ok else b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
