"""Benchmark: how close checkout and trials get to a bare Flask endpoint (a
script that prints numbers, not a test).

    make bench                                                        # about 12 minutes
    python -m benchmarks.ceiling --duration 20 --prospect-time 60     # quicker, noisier

One run, one machine, one load tool (locust with FastHttpUser, headless, as a
subprocess), every server under gunicorn with deploy/gunicorn.conf.py and
APP_ENV=production:

1. fresh PostgreSQL databases bench_checkout and bench_trials (dropped first),
   migrated and seeded; localstripe from scratch with checkout's webhook; a
   synthetic population (loadtests/population.py, over HTTP: the directory
   hooks and the Premium purchases go to a checkout of this copy of the code,
   in-process, since the served copy may predate them);
2. closed-loop runs (no think time, --users at once) of the bare endpoint
   (benchmarks/bare_app.py), POST /quotes, trial eligibility, checkout's
   GET /namespaces/{id} (what eligibility asked checkout for before trials kept
   its read model, which checkout's relay feeds before the runs; starting a
   trial still asks it) and the purchase funnel against localstripe:
   requests/s, p50, p99, and the ratio to bare;
   the first four again with gunicorn workers never recycled;
3. POST /quotes with FUNNEL_TELEMETRY=off, on, and on with PostHog forwarding
   to an unreachable host (demo traffic, which is forwarded; synthetic never
   is), interleaved, --rounds times each;
4. feature flag evaluation per call with the payload cached (flags/client.py);
5. 50 concurrent prospects for 2 minutes (loadtests/locustfile.py Prospect,
   with think time): zero failed requests.

Results: benchmarks/results/ceiling.md (benchmarks/ceiling_report.py); --json
keeps the raw numbers, --baseline adds an earlier run's as "before", and
--code-root serves the services from another copy of the repository (the same
harness before and after a change). Needs PostgreSQL (BENCH_DATABASE_URL,
default postgresql://postgres@127.0.0.1:5432/postgres: the server to create
the databases on) and Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/15)
for the discount-code and card limits the gunicorn workers share. The
per-client code and card limits are raised for the run
(CODE_ATTEMPTS_PER_CLIENT, CARD_ATTEMPTS_PER_CLIENT): every simulated prospect
comes from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from benchmarks.bench_identity import BenchProvider
from benchmarks.ceiling_report import TOTAL, Result, Run, render
from deploy.entrypoint import GUNICORN_CONFIG, plan
from devtools.devstack import register_webhook
from flags.client import Flags
from identity.auth import generate_service_key, public_key_pem
from loadtests import population
from services.checkout.app import create_app
from services.checkout.config import CheckoutSettings
from services.checkout.seed import seed_database
from services.common.config import ROOT, Settings, normalise_database_url
from services.common.migrate import upgrade

RESULTS = Path(__file__).resolve().parent / "results" / "ceiling.md"
BENCHFILE = ROOT / "loadtests" / "bench.py"
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
DATABASES = {"checkout": "bench_checkout", "trials": "bench_trials"}
PORTS = {"bare": 18000, "checkout": 18001, "trials": 18002, "floor": 18003, "localstripe": 18420,
         "provider": 18430}
MEMORY_READINGS = (20_000, 100_000)  # requests served when resident memory is read
MEMORY_CHUNK_SECONDS = 20
FLAG_ATTRIBUTES = {"id": "1", "namespace_id": "100", "plan": "premium", "new_customer": True}


# --- processes -----------------------------------------------------------------
@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode} before answering")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # gunicorn: graceful stop of its workers
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stack:
    """The processes of one benchmark run; everything is stopped on exit."""

    def __init__(self, workdir: Path, env: dict[str, str], code_root: Path = ROOT) -> None:
        self.workdir = workdir
        self.env = env
        self.code_root = code_root  # where the services' code is served from
        self.servers: dict[str, Server] = {}

    def start(self, name: str, command: list[str], health: str, extra_env: dict[str, str] | None = None
              ) -> Server:
        root = ROOT if name in ("bare", "floor", "localstripe") else self.code_root
        env = {**self.env, **(extra_env or {}), "PYTHONPATH": str(root)}
        # Each gunicorn sums its own workers' metrics: one directory each (it is emptied at start).
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.workdir / f"metrics-{name}")
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        url = health.rsplit("/", 1)[0] if health.endswith("/healthz") else health
        server = Server(name, url, proc)
        self.servers[name] = server
        wait_until_up(health, proc)
        return server

    def gunicorn(self, service: str, extra_env: dict[str, str] | None = None) -> Server:
        port = PORTS[service]
        if service in ("bare", "floor"):
            command = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG),
                       "--bind", f"127.0.0.1:{port}", f"benchmarks.{service}_app:create_app()"]
        else:  # exactly what the container runs, bound to loopback
            command = plan(["serve", service], {"PORT": str(port)})
            command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
            command[command.index("--config") + 1] = str(self.code_root / "deploy" / "gunicorn.conf.py")
        return self.start(service, command, f"http://127.0.0.1:{port}/healthz", extra_env)

    def stop(self, name: str) -> None:
        if server := self.servers.pop(name, None):
            _stop(server.proc)

    def close(self) -> None:
        for name in list(self.servers):
            self.stop(name)


# --- databases and population ------------------------------------------------------
def fresh_databases(server_url: str, names: dict[str, str]) -> dict[str, str]:
    """{service: url} of fresh databases (dropped first, kept afterwards for a look), migrated."""
    base = make_url(normalise_database_url(server_url))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as conn:
        for service, name in names.items():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            urls[service] = base.set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    for service, url in urls.items():
        upgrade(service, url)
    return urls


def analyze(urls: dict[str, str]) -> None:
    """Planner statistics for the freshly made population, as a running database
    has them: autovacuum would gather them within minutes, the runs start at once,
    and a plan made on an empty table's statistics is not what production runs."""
    for url in urls.values():
        engine = create_engine(normalise_database_url(url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
        engine.dispose()


def relay_directory(urls: dict[str, str], env: dict[str, str]) -> int:
    """Deliver checkout's outbox (the population's directory and subscription
    events) to trials as the worker's relay does: over HTTP, with checkout's
    service token, to a trials of this copy of the code served in-process.
    Returns how many events were relayed."""
    from identity.auth import service_token
    from messaging.relay import relay_once
    from messaging.routing import subscribers
    from services.checkout.app import create_app as checkout_app
    from services.trials.app import create_app as trials_app

    trials = trials_app(Settings.from_env("trials", env))
    server = make_server("127.0.0.1", 0, trials, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    checkout = checkout_app(Settings.from_env("checkout", env))
    ctx = checkout.extensions["checkout"].ctx
    settings = ctx.settings.with_overrides(
        service_urls={**ctx.settings.service_urls, "trials": f"http://127.0.0.1:{server.server_port}"})
    to_trials = [s for s in subscribers("checkout", settings) if s.name == "trials"]
    relayed = 0
    try:
        while published := relay_once(ctx, to_trials, token=lambda name: service_token(settings, name),
                                      batch=500):
            relayed += published
    finally:
        server.shutdown()
        server.server_close()
        ctx.close()
        trials.extensions["trials"].ctx.close()
    return relayed


@contextmanager
def provisioning_checkout(settings: Settings) -> Iterator[str]:
    """Checkout from this copy of the code on a free port, in this process: where
    the population is made (the copy served by --code-root may have no directory API)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per hook
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        app.extensions["checkout"].ctx.close()


def with_provider_tokens(people: list[population.SyntheticUser], provider: BenchProvider
                         ) -> list[population.SyntheticUser]:
    """The same people with tokens from the benchmark's provider, as production takes them."""
    return [replace(p, token=provider.token(p.user_id, p.email)) for p in people]


# --- load runs -------------------------------------------------------------------
def busy_cores(seconds: float = 1.0) -> float:
    """How many cores the machine keeps busy over `seconds` (from /proc/stat); 0 if unknown."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    if not Path("/proc/stat").exists():
        return 0.0
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    span = (total1 - total0) or 1
    return (span - (idle1 - idle0)) / span * (os.cpu_count() or 1)


def locust_binary() -> str:
    binary = Path(sys.executable).with_name("locust")
    return str(binary) if binary.exists() else "locust"


def run_locust(workdir: Path, label: str, *, locustfile: Path, classes: list[str], users: int,
               seconds: int, env: dict[str, str], spawn_rate: float | None = None,
               reset_stats: bool = True) -> dict[str, Result]:
    """One headless run; {request key: Result} with the 'Aggregated' row too."""
    prefix = workdir / label
    timing_file = workdir / f"{label}_timing.json"
    command = [locust_binary(), "-f", str(locustfile), "--headless", "-u", str(users),
               "-r", str(spawn_rate or users), "-t", f"{seconds}s", "--csv", str(prefix), "--only-summary",
               "--stop-timeout", "5", "--loglevel", "WARNING", *(["--reset-stats"] if reset_stats else []),
               *classes]
    run_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "LOADTEST_SERVER_TIMING_OUT": str(timing_file)}
    background = busy_cores()
    with (workdir / f"{label}.locust.log").open("wb") as log:
        subprocess.run(command, env=run_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    timings = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    results = read_results(Path(f"{prefix}_stats.csv"), label, timings)
    return {key: replace(result, background=background) for key, result in results.items()}


def read_results(path: Path, label: str, timings: dict[str, dict[str, float]]) -> dict[str, Result]:
    import csv

    results = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            key = TOTAL if row["Name"] == TOTAL and not row["Type"] else f"{row['Type']} {row['Name']}"
            results[key] = Result(
                label=label, requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                rps=float(row["Requests/s"]), p50=_ms(row["50%"]), p99=_ms(row["99%"]),
                size=float(row["Average Content Size"] or 0), timing=timings.get(key, {}))
    return results


def _ms(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


# --- flags -------------------------------------------------------------------------
def flag_costs(settings: Settings, loops: int = 20_000) -> dict[str, float]:
    """Microseconds per `flags.evaluate` call per feature, payload cached."""
    flags = Flags.from_settings(settings)
    features = list(json.loads(Path(settings.growthbook_payload_file).read_text())["features"])
    costs = {}
    for feature in features:
        flags.evaluate(feature, dict(FLAG_ATTRIBUTES)).value  # noqa: B018  (warm the cache)
        timer = timeit.Timer(functools.partial(flags.evaluate, feature, FLAG_ATTRIBUTES))
        best = min(timer.repeat(repeat=5, number=loops))
        costs[feature] = best / loops * 1e6
    return costs


# --- the machine -----------------------------------------------------------------
def machine(pg_url: str) -> dict[str, str]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    engine = create_engine(normalise_database_url(pg_url))
    with engine.connect() as conn:
        pg = str(conn.execute(text("SHOW server_version")).scalar())
    engine.dispose()
    # Versions from the metadata: importing locust would monkey-patch this process with gevent.
    from importlib.metadata import version

    return {"CPU": cpu, "cores": str(os.cpu_count()), "RAM": mem, "OS": platform.platform(),
            "Python": platform.python_version(), "PostgreSQL": pg, "gunicorn": version("gunicorn"),
            "gunicorn workers x threads": f"{os.environ.get('WEB_CONCURRENCY', '2')} x "
            f"{os.environ.get('THREADS', '8')} (gthread, deploy/gunicorn.conf.py)",
            "locust": version("locust")}


# --- the run -----------------------------------------------------------------------
def production_env(urls: dict[str, str], stripe_url: str, redis_url: str) -> dict[str, str]:
    """What `entrypoint serve` needs in production, with throwaway secrets and
    service keys (checkout's relay shows trials its own token)."""
    keys = {caller: generate_service_key() for caller in ("checkout", "trials")}
    return {
        "CHECKOUT_SERVICE_KEY": keys["checkout"], "TRIALS_SERVICE_KEY": keys["trials"],
        "SERVICE_PUBLIC_KEYS": json.dumps({caller: public_key_pem(key) for caller, key in keys.items()}),
        "FLOOR_DATABASE_URL": urls["checkout"],
        **os.environ, "APP_ENV": "production", "PYTHONPATH": str(ROOT),
        "AUTH_SECRET": secrets.token_hex(32), "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(16),
        "STRIPE_PUBLISHABLE_KEY": "pk_test_" + secrets.token_hex(16),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24), "STRIPE_API_BASE": stripe_url,
        "CHECKOUT_DATABASE_URL": urls["checkout"], "TRIALS_DATABASE_URL": urls["trials"],
        "CHECKOUT_URL": f"http://127.0.0.1:{PORTS['checkout']}",
        "TRIALS_URL": f"http://127.0.0.1:{PORTS['trials']}",
        "RATELIMIT_STORAGE_URI": redis_url, "CODE_ATTEMPTS_PER_CLIENT": "1000000/minute",
        "CARD_ATTEMPTS_PER_CLIENT": "1000000/minute",
        "FUNNEL_TELEMETRY": "on", "POSTHOG_API_KEY": "", "CLOCK_FILE": "", "SERVER_TIMING": "on",
    }


def positive_int(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {raw!r}")
    return int(raw)


def whole_number(raw: str) -> int:
    if not raw.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, not {raw!r}")
    return int(raw)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the benchmarks find PostgreSQL and Redis (one definition for every bench script)."""
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=positive_int, default=16, help="concurrent closed-loop users per run")
    parser.add_argument("--duration", type=positive_int, default=30, help="seconds measured per run")
    parser.add_argument("--warmup", type=whole_number, default=5,
                        help="seconds of unmeasured load before each")
    parser.add_argument("--rounds", type=positive_int, default=2, help="telemetry settings: runs of each")
    parser.add_argument("--prospect-users", type=positive_int, default=50)
    parser.add_argument("--prospect-time", type=whole_number, default=120, help="0: skip the prospects run")
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (CSVs, logs)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here (for --baseline)")
    parser.add_argument("--baseline", type=Path,
                        help="a --json file of an earlier run: adds a 'before' column")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip resident memory per worker after 20,000 and 100,000 requests")
    parser.add_argument("--no-recycle-check", dest="recycle_check", action="store_false",
                        help="skip the second suite with gunicorn workers never recycled")
    parser.add_argument("--code-root", type=Path, default=ROOT,
                        help="serve checkout and trials from another copy of the repository "
                             "(to compare before and after a change with the same harness)")
    return parser


class Bench:
    """One benchmark run: databases, servers, population, then the measurements."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.args = args
        self.workdir: Path = args.workdir
        self.stripe_url = f"http://127.0.0.1:{PORTS['localstripe']}"
        self.urls = fresh_databases(args.database_url, DATABASES)
        seed_database(self.urls["checkout"])
        self.provider = BenchProvider(self.workdir, PORTS["provider"])
        stack.callback(self.provider.close)
        self.env = {**production_env(self.urls, self.stripe_url, args.redis_url), **self.provider.env()}
        self.servers = Stack(self.workdir, self.env, args.code_root)
        stack.callback(self.servers.close)
        binary = shutil.which("localstripe", path=os.path.dirname(sys.executable)) or "localstripe"
        self.servers.start("localstripe", [binary, "--port", str(PORTS["localstripe"]), "--from-scratch"],
                           f"{self.stripe_url}/v1/customers")
        self.settings = CheckoutSettings.from_env("checkout", self.env)
        self._populate()

    def _populate(self) -> None:
        """Slices of one population: quotes reuse a few Free groups (a quote buys
        nothing); each purchase (warm-up included) and each prospect uses up one."""
        args = self.args
        print("population ...", flush=True)
        quoting, buying = args.users * 2, args.users * 25 * (args.duration + args.warmup) // 10
        # One buyer at a time buys about ten a second at most.
        alone = [quoting + buying, quoting + buying + 12 * args.warmup,
                 quoting + buying + 12 * (args.warmup + args.duration)]
        prospecting = args.prospect_users * (args.prospect_time // 6 + 2)
        # The population is made through a development checkout (the platform's
        # hooks are signed with its development secret); the served stack is production.
        with provisioning_checkout(self.settings.with_overrides(environment="development")) as url:
            stack = population.Stack(checkout_url=url, stripe_url=self.stripe_url,
                                     secret=self.settings.auth_secret)
            free = population.provision(stack, first_id=population.FIRST_IDS["free"],
                                        count=alone[2] + prospecting, kind="free")
            owners = population.provision(stack, first_id=population.FIRST_IDS["premium"],
                                          count=max(args.users, 64), kind="premium")
        print(f"relayed {relay_directory(self.urls, self.env)} events to trials", flush=True)
        analyze(self.urls)
        warm = args.users * 25 * args.warmup // 10
        self.files = {
            "synthetic": self._write("synthetic", free[:quoting], owners),
            "buying-warmup": self._write("buying-warmup", free[quoting:quoting + warm], []),
            "buying": self._write("buying", free[quoting + warm:quoting + buying], []),
            "buying-alone-warmup": self._write("buying-alone-warmup", free[alone[0]:alone[1]], []),
            "buying-alone": self._write("buying-alone", free[alone[1]:alone[2]], []),
            "prospects": self._write("prospects", free[alone[2]:], []),
        }

    def _write(self, name: str, free: list[population.SyntheticUser], premium: list[population.SyntheticUser]
               ) -> str:
        path = self.workdir / f"population-{name}.json"
        population.write(path, {"free": with_provider_tokens(free, self.provider),
                                "premium": with_provider_tokens(premium, self.provider)}, role="synthetic")
        return str(path)

    def measure(self, label: str, cls: str, url: str, population_file: str, *, traffic: str = "synthetic",
                warmup_file: str | None = None, users: int | None = None) -> dict[str, Result]:
        """A warm-up run (not counted), then the measured run, of one closed-loop user class."""
        env = {"BENCH_URL": url, "STRIPE_URL": self.stripe_url, "BENCH_TRAFFIC": traffic}
        users = users or self.args.users
        if self.args.warmup:
            run_locust(self.workdir, f"{label}-warmup", locustfile=BENCHFILE, classes=[cls],
                       users=users, seconds=self.args.warmup,
                       env={**env, "LOADTEST_POPULATION": warmup_file or population_file})
        results = run_locust(self.workdir, label, locustfile=BENCHFILE, classes=[cls], users=users,
                             seconds=self.args.duration, env={**env, "LOADTEST_POPULATION": population_file})
        total = results[TOTAL]
        print(f"{label:<32} {total.rps:8.1f} req/s  p50 {total.p50:5.0f} ms  p99 {total.p99:5.0f} ms  "
              f"failed {total.failures}/{total.requests}", flush=True)
        return results

    def suite(self, extra_env: dict[str, str] | None = None, suffix: str = "") -> dict[str, Result]:
        """Bare, floor, quote, eligibility and checkout's namespace read, servers started with `extra_env`."""
        bare = self.servers.gunicorn("bare", extra_env)
        floor = self.servers.gunicorn("floor", extra_env)
        checkout = self.start_checkout(extra_env)
        trials = self.servers.gunicorn("trials", extra_env)
        synthetic = self.files["synthetic"]
        runs = {
            "bare": self.measure(f"bare{suffix}", "Bare", bare.url, synthetic)[TOTAL],
            "floor": self.measure(f"floor{suffix}", "Bare", floor.url, synthetic)[TOTAL],
            "quote": self.measure(f"quote{suffix}", "Quote", checkout.url, synthetic)["POST /quotes"],
            "eligibility": self.measure(f"eligibility{suffix}", "Eligibility", trials.url, synthetic)[
                "GET /namespaces/[id]/trials/eligibility"],
            "lookup": self.measure(f"lookup{suffix}", "NamespaceLookup", checkout.url, synthetic)[
                "GET /namespaces/[id]"],
        }
        self.servers.stop("floor")
        relaxed = self.servers.gunicorn("floor", {**(extra_env or {}), "FLOOR_SYNCHRONOUS_COMMIT": "off"})
        runs["floor_relaxed"] = self.measure(f"floor-relaxed{suffix}", "Bare", relaxed.url, synthetic)[TOTAL]
        for name in ("bare", "floor", "trials"):
            self.servers.stop(name)
        return runs

    def throughput(self) -> tuple[dict[str, Result], dict[str, Result], dict[str, Result], dict[str, Result]]:
        """The suite as deployed, the purchase funnel (at --users, then one buyer at
        a time), and the suite with workers never recycled."""
        runs = self.suite()
        checkout = self.start_checkout()
        funnel = self.measure("purchase", "Purchase", checkout.url, self.files["buying"],
                              warmup_file=self.files["buying-warmup"])
        alone = self.measure("purchase-alone", "Purchase", checkout.url, self.files["buying-alone"],
                             warmup_file=self.files["buying-alone-warmup"], users=1)
        # gunicorn recycles a worker every ~20,000 requests (max_requests); a new worker
        # imports the app again: the never-recycled suite shows what that costs.
        steady = {}
        if self.args.recycle_check:
            steady = self.suite({"GUNICORN_MAX_REQUESTS": "0"}, "-not-recycled")
        return runs, funnel, alone, steady

    def start_checkout(self, extra_env: dict[str, str] | None = None) -> Server:
        self.servers.stop("checkout")
        checkout = self.servers.gunicorn("checkout", extra_env)
        register_webhook(self.stripe_url, checkout.url, self.env["STRIPE_WEBHOOK_SECRET"])
        return checkout

    def telemetry(self) -> dict[str, list[Result]]:
        """POST /quotes per telemetry setting, interleaved so drift hits each alike."""
        results: dict[str, list[Result]] = {name: [] for name in TELEMETRY_SETTINGS}
        for round_ in range(self.args.rounds):
            for index, (name, extra) in enumerate(TELEMETRY_SETTINGS.items()):
                checkout = self.start_checkout(extra)
                measured = self.measure(f"telemetry-{index}-{round_}", "Quote", checkout.url,
                                        self.files["synthetic"])
                results[name].append(measured["POST /quotes"])
        return results

    def memory(self, readings: tuple[int, ...] = MEMORY_READINGS) -> dict[str, dict[str, list[float]]]:
        """Resident memory (MB) of each gunicorn worker after `readings` requests
        of the service's hot path, workers never recycled (recycling would hide growth)."""
        found: dict[str, dict[str, list[float]]] = {}
        for service, cls in (("checkout", "Quote"), ("trials", "Eligibility")):
            server = (self.start_checkout if service == "checkout" else
                      functools.partial(self.servers.gunicorn, "trials"))({"GUNICORN_MAX_REQUESTS": "0"})
            served, found[service] = 0, {}
            for target in readings:
                while served < target:
                    results = run_locust(self.workdir, f"memory-{service}-{served}", locustfile=BENCHFILE,
                                         classes=[cls], users=self.args.users, seconds=MEMORY_CHUNK_SECONDS,
                                         env={"BENCH_URL": server.url,
                                              "LOADTEST_POPULATION": self.files["synthetic"]})
                    served += results[TOTAL].requests
                found[service][str(target)] = [rss_mb(pid) for pid in worker_pids(server.proc.pid)]
                print(f"memory {service} after {served} requests: {found[service][str(target)]} MB",
                      flush=True)
            self.servers.stop(service)
        return found

    def prospects(self) -> dict[str, Result]:
        """The Prospect profile as a load tester runs it: think time, cards, codes, 3-D Secure."""
        args = self.args
        checkout = self.start_checkout()
        print(f"prospects: {args.prospect_users} users for {args.prospect_time} s ...", flush=True)
        env = {"CHECKOUT_URL": checkout.url, "STRIPE_URL": self.stripe_url,
               "LOADTEST_POPULATION": self.files["prospects"]}
        results = run_locust(self.workdir, "prospects", locustfile=LOCUSTFILE, classes=["Prospect"],
                             users=args.prospect_users, spawn_rate=10, seconds=args.prospect_time,
                             reset_stats=False, env=env)
        print(f"prospects: {results[TOTAL].failures} failed of {results[TOTAL].requests}", flush=True)
        return results


def worker_pids(master: int) -> list[int]:
    """gunicorn's worker processes: the master's children."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.append(int(stat.parent.name))
    return sorted(children)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


TELEMETRY_SETTINGS = {
    "FUNNEL_TELEMETRY=off": {"FUNNEL_TELEMETRY": "off"},
    "on": {"FUNNEL_TELEMETRY": "on"},
    "on + PostHog (unreachable)": {"FUNNEL_TELEMETRY": "on", "POSTHOG_API_KEY": "phc_x",
                                   "POSTHOG_HOST": "http://127.0.0.1:9"},
}


def code_version(root: Path) -> str:
    """The served code's commit, and whether the tree has uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit}{' + uncommitted changes' if git('status', '--porcelain') else ''} ({root})"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.code_root = args.code_root.resolve()
    started = datetime.now(UTC)
    info = {**machine(args.database_url), "code served": code_version(args.code_root)}
    print("machine:", info, flush=True)
    with ExitStack() as stack:
        args.workdir = Path(tempfile.mkdtemp(prefix="bench-ceiling-"))
        if not args.keep:
            stack.callback(shutil.rmtree, args.workdir, True)
        bench = Bench(args, stack)
        runs, funnel, alone, steady = bench.throughput()
        telemetry = bench.telemetry()
        memory = bench.memory() if args.memory else {}
        prospects = bench.prospects() if args.prospect_time else {}
        flags = flag_costs(bench.settings)
        print("flags:", flags, flush=True)
        options = {k: getattr(args, k) for k in ("users", "duration", "warmup", "rounds", "prospect_users",
                                                  "prospect_time")}
        run = Run(started=f"{started:%Y-%m-%d %H:%M}", info=info, options=options, runs=runs, steady=steady,
                  funnel=funnel, funnel_alone=alone, telemetry=telemetry, flags=flags, prospects=prospects,
                  memory=memory)
        if args.json:
            run.save(args.json)
        text = render(run, Run.load(args.baseline) if args.baseline else None)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(text)
        if args.keep:
            print(f"kept: {args.workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
