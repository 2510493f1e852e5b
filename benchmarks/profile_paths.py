"""Where a hot path's time goes: each path run in-process (Flask's test client,
so no HTTP server or load tool in the picture) against PostgreSQL with the
production settings, a provider's RS256 token and the demo data, under
pyinstrument and cProfile. Text profiles land in benchmarks/results/profiles/,
next to the ceiling results, so the next engineer sees what costs what.

    python -m benchmarks.profile_paths                 # quote and eligibility, 3,000 requests each
    python -m benchmarks.profile_paths --path quote --requests 500

Needs PostgreSQL (BENCH_DATABASE_URL, default the local server) and Redis
(BENCH_REDIS_URL) as benchmarks/ceiling.py does; its databases are
bench_profile_checkout and bench_profile_trials (dropped first).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pyinstrument import Profiler

from benchmarks.bench_identity import BenchProvider
from benchmarks.ceiling import fresh_databases, production_env, provisioning_checkout, relay_directory
from loadtests import population
from services.common.config import Settings

PROFILES = Path(__file__).resolve().parent / "results" / "profiles"
PROVIDER_PORT = 18431


def _paths(checkout: Any, trials: Any, person: dict[str, Any], token: str) -> dict[str, Callable[[], Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"namespace_id": person["namespace_id"], "plan": "premium", "seats": 5}
    checkout_client, trials_client = checkout.test_client(), trials.test_client()

    def quote() -> Any:
        response = checkout_client.post("/quotes", json=body, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)

    def eligibility() -> Any:
        response = trials_client.get(f"/namespaces/{person['namespace_id']}/trials/eligibility",
                                     headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)

    return {"quote": quote, "eligibility": eligibility}


def profile(name: str, call: Callable[[], Any], requests: int) -> str:
    for _ in range(200):  # warm: pools, caches, first exposures
        call()
    started = time.perf_counter()
    for _ in range(requests):
        call()
    plain = (time.perf_counter() - started) / requests * 1e3
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(requests):
        call()
    profiler.stop()
    stats = cProfile.Profile()
    stats.enable()
    for _ in range(requests):
        call()
    stats.disable()
    table = io.StringIO()
    pstats.Stats(stats, stream=table).sort_stats("tottime").print_stats(35)
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    return (f"# {name}: {requests} requests in-process, {plain:.2f} ms each without a profiler "
            f"(one thread, no HTTP server)\n\n## pyinstrument (wall time, call tree)\n\n{tree}\n"
            f"## cProfile (own time, top 35)\n\n{table.getvalue()}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_paths", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", choices=("quote", "eligibility"), action="append")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--out", type=Path, default=PROFILES)
    args = parser.parse_args(argv)
    from services.checkout.app import create_app as checkout_app
    from services.trials.app import create_app as trials_app

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        urls = fresh_databases(args.database_url, {"checkout": "bench_profile_checkout",
                                                   "trials": "bench_profile_trials"})
        provider = BenchProvider(Path(tmp), PROVIDER_PORT)
        stack.callback(provider.close)
        env = {**production_env(urls, "http://127.0.0.1:9", args.redis_url), **provider.env()}
        os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
        settings = Settings.from_env("checkout", env)
        with provisioning_checkout(settings.with_overrides(environment="development")) as url:
            made = population.provision(population.Stack(checkout_url=url, stripe_url="",
                                                         secret=settings.auth_secret),
                                        first_id=population.FIRST_IDS["free"], count=1, kind="free")
        relay_directory(urls, env)
        person = made[0].__dict__
        token = provider.token(person["user_id"], person["email"])
        checkout = checkout_app(settings)
        env["CHECKOUT_URL"] = "http://127.0.0.1:9"  # eligibility must not need checkout
        trials = trials_app(Settings.from_env("trials", env))
        args.out.mkdir(parents=True, exist_ok=True)
        for name in args.path or ["quote", "eligibility"]:
            text = profile(name, _paths(checkout, trials, person, token)[name], args.requests)
            (args.out / f"{name}.txt").write_text(text)
            print(text.split("\n", 1)[0], flush=True)
        checkout.extensions["checkout"].ctx.close()
        trials.extensions["trials"].ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
