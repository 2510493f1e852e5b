"""Gunicorn settings for `entrypoint serve <service>` and `entrypoint dashboard`;
every value can be changed from the environment, so one image fits compose,
staging and production.

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

View-only funnel rows (a quote's) wait up to FUNNEL_BATCH_MS in each worker
before one INSERT writes them; worker_exit writes what is waiting when a worker
stops gracefully, so only a SIGKILL loses any (at most FUNNEL_BATCH_MAX_ROWS).

Logs and metrics. The app's JSON logs (services/common/logs.py) go to stderr,
gunicorn's access log (one JSON-ish line per request) to stdout. Each worker
process counts its own requests; PROMETHEUS_MULTIPROC_DIR (default
/tmp/prometheus-multiproc, emptied at start) lets /metrics add them up.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import tempfile
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
# all restarting at once. Not often: a new worker re-imports the app (about
# 0.85 s of CPU) and starts with cold pools; at 1,000 requests that cost a third
# of a quote's throughput under load (benchmarks/results/ceiling.md).
max_requests = _int("GUNICORN_MAX_REQUESTS", 20000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 2000)

# X-Forwarded-Proto is trusted only from these addresses (comma separated, CIDR
# allowed; "*" when only the ingress can reach the pods).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# PROXY_FIX_X_FOR (how many proxies append to X-Forwarded-For) is applied by the
# app factory itself (services/common/web.py), so it holds under any server.

# The heartbeat file lives in memory, not on a (possibly read-only) disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn >= 25.1 opens a control socket under $HOME; the image has no writable home.
control_socket_disable = True

loglevel = os.environ.get("LOG_LEVEL", "info").lower()
errorlog = "-"
# One JSON object per request on stdout (values are escaped for quotes only, hence
# "JSON-ish"); GUNICORN_ACCESS_LOG=off leaves request logging to the app's own
# JSON "access" logger instead. No query strings and no referer: the sign-in
# callback carries an authorisation code in its query, and logs must never hold one.
accesslog = None if os.environ.get("GUNICORN_ACCESS_LOG", "on").lower() == "off" else "-"
access_log_format = (
    '{"time":"%(t)s","remote_addr":"%(h)s","method":"%(m)s","path":"%(U)s",'
    '"status":%(s)s,"bytes":"%(b)s","duration_ms":%(M)s,"request_id":"%({x-request-id}o)s",'
    '"user_agent":"%(a)s"}'
)


def service_name(server: Any) -> str:
    """checkout, trials, notifications or experiments (the growth dashboard), from
    the app URI the entrypoint passes."""
    uri = getattr(getattr(server, "app", None), "app_uri", None) or ""
    if match := re.match(r"services\.(\w+)\.app:", uri):
        return match.group(1)
    return "experiments" if uri.startswith("experiments.dashboard:") else "gunicorn"


def metrics_dir() -> str:
    """Where the worker processes keep their Prometheus samples, so that /metrics
    adds them up (services/common/metrics.py); emptied at every start."""
    path = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                 os.path.join(tempfile.gettempdir(), "prometheus-multiproc"))
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    return path


def on_starting(server: Any) -> None:
    """In the master, before the workers fork (they inherit all of it)."""
    from services.common.logs import configure_logging

    level = getattr(logging, loglevel.upper(), logging.INFO)
    configure_logging(service_name(server), level)  # the app's JSON logs, on stderr
    if accesslog:
        # The app's own per-request line would repeat gunicorn's access log.
        logging.getLogger("access").setLevel(logging.WARNING)
    metrics_dir()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the Prometheus samples."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """In a worker leaving gracefully (SIGTERM, max_requests recycling): write the
    view-only funnel rows still waiting (funnel/batch.py)."""
    from funnel.batch import close_all

    close_all()
