"""Benchmark: what a quote's batched funnel row (funnel/batch.py)
loses when checkout's gunicorn workers are SIGKILLed mid-stream, and that a
graceful stop loses none.

    make bench-funnel-kill          # about a minute; PostgreSQL at TEST_DATABASE_URL's server

Checkout runs as the container runs it (deploy/entrypoint.py, deploy/gunicorn.conf.py:
2 workers x 8 threads) with FUNNEL_BATCH_MS=200 and FUNNEL_BATCH_MAX_ROWS=1000,
production's values, on a fresh, seeded PostgreSQL database, with APP_ENV=production:
the person's token comes from the benchmark's identity provider
(benchmarks/bench_identity.py), verified as in production. Eight
client threads send --quotes POST /quotes, each with its own seat count, so
each answered quote names the funnel row it must have left. Then:

- kill run: every worker SIGKILLed --kills times, at random moments of the
  stream (gunicorn starts new ones; a quote whose connection is cut is not
  answered and is not counted);
- graceful run: every worker SIGTERMed as often (what max_requests recycling and
  a rolling deploy do), then gunicorn itself stopped with SIGTERM.

For each run: quotes answered 200, their rows stored, lost (answered without a
row), and the bound a SIGKILL may lose (FUNNEL_BATCH_MAX_ROWS per killed
worker); the graceful run must lose none. Results: benchmarks/results/funnel_kill.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text

from benchmarks.bench_identity import BenchProvider
from benchmarks.ceiling import Stack, positive_int, production_env
from deploy.entrypoint import plan
from persistence.db import make_engine
from services.checkout.seed import seed_database
from services.common.config import normalise_database_url
from services.common.migrate import upgrade
from tests.support import postgres_database

RESULTS = Path(__file__).resolve().parent / "results" / "funnel_kill.md"
PORT = int(os.environ.get("FUNNEL_KILL_PORT", "22001"))
PROVIDER_PORT = PORT + 429  # the benchmark's identity provider, over https
WORKERS, MAX_ROWS, BATCH_MS = 2, 1000, 200
CLIENTS = 8
FIRST_SEATS = 3  # namespace 100 (the demo's Acme, user 1 its Owner) quotes 3 seats and up


@dataclass
class Run:
    mode: str
    sent: int
    answered: int
    stored: int
    lost: int
    unanswered_stored: int  # rows of quotes whose answer never reached the client
    unanswered: str  # why quotes were not answered 200: status or client error, with counts
    signals: int  # workers signalled
    bound: int
    seconds: float


def workers_of(master: int) -> list[int]:
    """gunicorn's worker processes: the master's children."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def send(url: str, token: str, seats: list[int], answered: list[int], unanswered: Counter[str]) -> None:
    """Quotes one after the other; the seat counts of those answered 200 go to
    `answered`, why the others were not to `unanswered`."""
    http = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    for count in seats:
        try:
            body: dict[str, Any] = {"namespace_id": 100, "plan": "premium", "seats": count}
            response = http.post(f"{url}/quotes", json=body, headers=headers, timeout=10)
        except requests.RequestException as error:
            unanswered[type(error).__name__] += 1
            http = requests.Session()  # the worker went away mid-request: not answered
            continue
        if response.status_code == 200:
            answered.append(count)
        else:
            unanswered[str(response.status_code)] += 1


Disturb = Callable[[Callable[[], bool]], int]  # signals workers while the stream lasts; how many


def stream(url: str, token: str, quotes: int, disturb: Disturb) -> tuple[list[int], Counter[str], int]:
    """Send `quotes` quotes from CLIENTS threads while `disturb` signals workers."""
    answered: list[int] = []
    unanswered: Counter[str] = Counter()
    seats = list(range(FIRST_SEATS, FIRST_SEATS + quotes))
    threads = [threading.Thread(target=send, args=(url, token, seats[i::CLIENTS], answered, unanswered))
               for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    signalled = disturb(lambda: any(t.is_alive() for t in threads))
    for thread in threads:
        thread.join()
    return answered, unanswered, signalled


def disturber(master: int, sig: signal.Signals, times: int, rng: random.Random) -> Disturb:
    def disturb(sending: Callable[[], bool]) -> int:
        signalled = 0
        for _ in range(times):
            time.sleep(rng.uniform(0.8, 1.6))  # the new workers have booted and are taking quotes
            if not sending():
                break
            for pid in workers_of(master):
                os.kill(pid, sig)
                signalled += 1
            _wait_for_workers(master)
        return signalled
    return disturb


def _wait_for_workers(master: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(workers_of(master)) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.05)


def stored_seats(url: str) -> set[int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT properties FROM funnel_events WHERE step = 'plan_chosen'"))
        seats = {int(properties["seats"]) for (properties,) in rows}
    engine.dispose()
    return seats


def run(mode: str, url: str, env: dict[str, str], token: str, quotes: int, kills: int,
        rng: random.Random, keep: bool = False) -> Run:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM funnel_events"))
    engine.dispose()
    folder = Path(tempfile.mkdtemp(prefix="funnel-kill-"))
    if keep:
        print(f"{mode}: gunicorn's log in {folder}", flush=True)
    servers = Stack(folder, env)
    command = plan(["serve", "checkout"], {"PORT": str(PORT)})
    command[command.index("--bind") + 1] = f"127.0.0.1:{PORT}"
    try:
        server = servers.start("checkout", command, f"http://127.0.0.1:{PORT}/healthz")
        _wait_for_workers(server.proc.pid)
        sig = signal.SIGKILL if mode == "SIGKILL" else signal.SIGTERM
        started = time.perf_counter()
        disturb = disturber(server.proc.pid, sig, kills, rng)
        answered, unanswered, signalled = stream(server.url, token, quotes, disturb)
        seconds = time.perf_counter() - started
    finally:
        servers.close()  # SIGTERM to gunicorn: the workers left write what waits
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    stored = stored_seats(url)
    lost = len(set(answered) - stored)
    bound = signalled * MAX_ROWS if mode == "SIGKILL" else 0
    why = ", ".join(f"{reason} x{n}" for reason, n in unanswered.most_common()) or "-"
    return Run(mode, quotes, len(answered), len(answered) - lost, lost, len(stored - set(answered)), why,
               signalled, bound, seconds)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quotes", type=positive_int, default=2500,
                        help="quotes per run (each its own seat count, 3 and up; a total above "
                             "$999,999.99, 2,874 Premium seats, is refused)")
    parser.add_argument("--kills", type=positive_int, default=4,
                        help="times every worker is signalled per run")
    parser.add_argument("--keep", action="store_true", help="keep gunicorn's logs (their folder is printed)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    rng = random.Random()
    with postgres_database("funnelkill") as raw, tempfile.TemporaryDirectory(prefix="funnel-kill-") as tmp:
        provider = BenchProvider(Path(tmp), PROVIDER_PORT)
        url = normalise_database_url(raw)
        upgrade("checkout", url)
        seed_database(url)
        env = {**production_env({"checkout": url, "trials": url}, "http://127.0.0.1:9", "memory://"),
               **provider.env(), "SERVER_TIMING": "off", "GUNICORN_ACCESS_LOG": "off",
               "WEB_CONCURRENCY": str(WORKERS), "THREADS": "8",
               "FUNNEL_BATCH_MS": str(BATCH_MS), "FUNNEL_BATCH_MAX_ROWS": str(MAX_ROWS)}
        token = provider.token(1, "ada@acme.test")
        try:
            runs = [run(mode, url, env, token, args.quotes, args.kills, rng, args.keep)
                    for mode in ("SIGKILL", "SIGTERM")]
        finally:
            provider.close()
    for r in runs:
        print(f"{r.mode}: {r.answered} of {r.sent} quotes answered, {r.stored} rows stored, lost {r.lost} "
              f"(bound {r.bound}), {r.signals} workers signalled, {r.seconds:.1f} s", flush=True)
    lines = ["# Batched funnel rows when checkout's workers are killed", "",
             f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, PostgreSQL. Command: `make bench-funnel-kill`. "
             f"gunicorn {WORKERS} workers x 8 threads, FUNNEL_BATCH_MS={BATCH_MS}, "
             f"FUNNEL_BATCH_MAX_ROWS={MAX_ROWS}; {CLIENTS} clients sending POST /quotes back to back.", "",
             "Lost: quotes answered 200 whose `plan_chosen` row was never stored. The bound a SIGKILL may "
             "lose is FUNNEL_BATCH_MAX_ROWS per killed worker (in practice the rows of its last "
             f"{BATCH_MS} ms); a graceful stop (SIGTERM: recycling, a deploy) must lose none.", "",
             "A quote not answered (its connection cut by the kill, or no answer within the client's "
             "10 s) is not retried and not counted; some of those were served and left a row (last "
             "column).", "",
             "| signal | quotes sent | answered 200 | their rows stored | lost | workers signalled "
             f"| bound | answered/s | ≈ rows per {BATCH_MS} ms | seconds | not answered, why "
             "| rows of unanswered quotes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    lines += [f"| {r.mode} | {r.sent} | {r.answered} | {r.stored} | {r.lost} | {r.signals} | {r.bound} "
              f"| {r.answered / r.seconds:.0f} | {r.answered / r.seconds * BATCH_MS / 1000:.0f} "
              f"| {r.seconds:.1f} | {r.unanswered} | {r.unanswered_stored} |" for r in runs]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")
    kill, graceful = runs
    return 0 if kill.lost <= kill.bound and graceful.lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
