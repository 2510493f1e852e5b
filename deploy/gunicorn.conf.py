"""Gunicorn settings for `entrypoint serve <service>`; every value can be changed
from the environment, so one image fits compose, staging and production.

Sizing. The services spend most of a request waiting on PostgreSQL and Stripe
(network I/O that releases the GIL), so the `gthread` worker is the right
model: each process serves THREADS requests at once on one interpreter. The
default of 2 processes x 8 threads (16 requests in flight per container) is
sized for a container allowed up to 2 cores: two processes can each use a
core for the CPU-bound parts (JSON, marshmallow, SQLAlchemy), and while
`max_requests` recycles one of them the other keeps serving. Raise THREADS
before WEB_CONCURRENCY when pods wait on I/O; raise WEB_CONCURRENCY (and the
CPU limit) when they are CPU-bound. Each process has its own SQLAlchemy pool
(10 connections + 20 overflow), so PostgreSQL must allow
replicas x WEB_CONCURRENCY x 10 connections per service (or put PgBouncer in
front).

Shutdown. On SIGTERM gunicorn stops accepting connections and gives in-flight
requests `graceful_timeout` (30 s) to finish; a Stripe call has a 10 s timeout
and one retry, so a purchase in progress completes. Kubernetes'
terminationGracePeriodSeconds must exceed preStop + graceful_timeout.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


bind = f"0.0.0.0:{_int('PORT', 8000)}"  # the entrypoint passes --bind with the role's port
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", 2)
threads = _int("THREADS", 8)
# Engines, Stripe clients and the PostHog thread are created per worker by the
# app factory, after the fork: never share them through a preloaded app.
preload_app = False

timeout = _int("GUNICORN_TIMEOUT", 60)  # a worker silent this long is killed and replaced
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)  # in-flight requests finish on SIGTERM
# Longer than the ingress' upstream keep-alive (nginx: 60 s) so the proxy never
# reuses a connection gunicorn has just closed (which would be a 502).
keepalive = _int("GUNICORN_KEEPALIVE", 75)
# Recycle workers now and then (bounded memory growth); jitter keeps them from
# all restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# X-Forwarded-Proto is trusted only from these addresses (comma separated, CIDR
# allowed; "*" when only the ingress can reach the pods).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# How many proxies in front append to X-Forwarded-For (0: none). When set, the
# client address the app sees (request.remote_addr, which keys the per-client
# discount-code rate limit) is the one the outermost trusted proxy saw.
proxy_fix_x_for = _int("PROXY_FIX_X_FOR", 0)

# The heartbeat file lives in memory, not on a (possibly read-only) disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn >= 25.1 opens a control socket under $HOME; the image has no writable home.
control_socket_disable = True

loglevel = os.environ.get("LOG_LEVEL", "info").lower()
errorlog = "-"
accesslog = "-"
# One JSON object per request on stdout (values are escaped for quotes only, hence "JSON-ish").
access_log_format = (
    '{"time":"%(t)s","remote_addr":"%(h)s","method":"%(m)s","path":"%(U)s","query":"%(q)s",'
    '"status":%(s)s,"bytes":"%(b)s","duration_ms":%(M)s,"request_id":"%({x-request-id}o)s",'
    '"user_agent":"%(a)s","referer":"%(f)s"}'
)


def on_starting(server: Any) -> None:
    """Application logs (root logger) to stdout, before the workers fork."""
    logging.basicConfig(level=loglevel.upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("stripe").setLevel(logging.WARNING)  # it logs every request at INFO
    # The app's own per-request line would repeat gunicorn's access log above.
    logging.getLogger("access").setLevel(logging.WARNING)


def post_worker_init(worker: Any) -> None:
    """Trust X-Forwarded-For from PROXY_FIX_X_FOR proxies (werkzeug's ProxyFix)."""
    if proxy_fix_x_for > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        worker.wsgi = ProxyFix(worker.wsgi, x_for=proxy_fix_x_for)
