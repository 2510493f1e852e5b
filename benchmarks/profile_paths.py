"""Where a hot path's time goes: each path run in-process (Flask's test client,
so no HTTP server or load tool in the picture) against PostgreSQL with the
production settings, a provider's RS256 token and the demo data, under
pyinstrument and cProfile. Text profiles land in benchmarks/results/profiles/,
next to the ceiling results, so the next engineer sees what costs what.

    python -m benchmarks.profile_paths                 # floor, quote and eligibility, 3,000 requests each
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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests
from pyinstrument import Profiler

from benchmarks.bench_identity import BenchProvider
from benchmarks.ceiling import (
    add_server_arguments,
    analyze,
    fresh_databases,
    positive_int,
    production_env,
    provisioning_checkout,
    relay_directory,
    wait_until_up,
)
from benchmarks.floor_app import create_app as floor_app
from loadtests import population, stripejs
from loadtests.knobs import GOOD_CARD
from services.checkout.config import CheckoutSettings
from services.common.config import Settings

PROFILES = Path(__file__).resolve().parent / "results" / "profiles"
PROVIDER_PORT = 18431
STRIPE_PORT = 18421
PURCHASE_WARM = 10


def purchase_timing(timings: list[str]) -> str:
    """The median Server-Timing parts of POST /purchases over the profiled runs."""
    parts: dict[str, list[float]] = {}
    for header in timings:
        for name, ms in re.findall(r"(\w+);dur=([\d.]+)", header):
            parts.setdefault(name, []).append(float(ms))
    ours = [db + app for db, app in zip(parts.get("db", []), parts.get("app", []), strict=False)]
    medians = ", ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in parts.items())
    return (f"\n## POST /purchases Server-Timing, median of {len(timings)} (one at a time, no profiler)"
            f"\n\n{medians}; db + app {statistics.median(ours):.1f} ms\n" if ours else "")


def _paths(checkout: Any, trials: Any, floor: Any, person: dict[str, Any], token: str,
           buyers: list[dict[str, Any]], stripe_url: str, timings: list[str]) -> dict[str, Callable[[], Any]]:
    http = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"namespace_id": person["namespace_id"], "plan": "premium", "seats": 5}
    checkout_client, trials_client, floor_client = checkout.test_client(), trials.test_client(), \
        floor.test_client()

    def floor_quote() -> Any:
        response = floor_client.post("/quotes", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)

    def quote() -> Any:
        response = checkout_client.post("/quotes", json=body, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)

    def eligibility() -> Any:
        response = trials_client.get(f"/namespaces/{person['namespace_id']}/trials/eligibility",
                                     headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)

    def purchase() -> Any:
        """A purchase as a buyer makes it, for a Free group of its own (each can buy once)."""
        buyer = buyers.pop()
        mine = {"Authorization": f"Bearer {buyer['token']}"}
        ok = checkout_client.put("/billing-account", headers=mine, json={
            "company": "Profile Co", "email": buyer["email"], "country": "US", "address_line1": "1 St",
            "city": "San Francisco", "state": "CA", "postal_code": "94105"})
        assert ok.status_code == 200, ok.get_data(as_text=True)
        setup = checkout_client.post("/billing-account/card-setup", headers=mine).get_json()
        assert stripejs.confirm_card_setup(http, stripe_url, setup["client_secret"], GOOD_CARD,
                                           setup["publishable_key"])
        card = checkout_client.post("/billing-account/cards", headers=mine,
                                    json={"setup_intent_id": setup["setup_intent_id"]})
        assert card.status_code == 201, card.get_data(as_text=True)
        bought = checkout_client.post("/purchases", headers={**mine, "Idempotency-Key": str(uuid.uuid4())},
                                      json={"namespace_id": buyer["namespace_id"], "plan": "premium",
                                            "seats": 5})
        assert bought.status_code == 201, bought.get_data(as_text=True)
        timings.append(bought.headers.get("Server-Timing", ""))

    return {"floor": floor_quote, "quote": quote, "eligibility": eligibility, "purchase": purchase}


def profile(name: str, call: Callable[[], Any], requests: int, warm: int = 200) -> str:
    for _ in range(warm):  # pools, caches, first exposures
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
    parser.add_argument("--path", choices=("floor", "quote", "eligibility", "purchase"), action="append")
    parser.add_argument("--requests", type=positive_int, default=3000)
    parser.add_argument("--purchases", type=positive_int, default=60,
                        help="purchases per pass (three passes)")
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=PROFILES)
    args = parser.parse_args(argv)
    from services.checkout.app import create_app as checkout_app
    from services.trials.app import create_app as trials_app

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        urls = fresh_databases(args.database_url, {"checkout": "bench_profile_checkout",
                                                   "trials": "bench_profile_trials"})
        provider = BenchProvider(Path(tmp), PROVIDER_PORT)
        stack.callback(provider.close)
        stripe_url = f"http://127.0.0.1:{STRIPE_PORT}"
        env = {**production_env(urls, stripe_url, args.redis_url), **provider.env()}
        wanted = args.path or ["floor", "quote", "eligibility", "purchase"]
        if "purchase" in wanted:
            binary = shutil.which("localstripe", path=os.path.dirname(sys.executable)) or "localstripe"
            stripe = subprocess.Popen([binary, "--port", str(STRIPE_PORT), "--from-scratch"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stack.callback(stripe.wait)
            stack.callback(stripe.terminate)
            wait_until_up(f"{stripe_url}/v1/customers", stripe)
        os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
        settings = CheckoutSettings.from_env("checkout", env)
        with provisioning_checkout(settings.with_overrides(environment="development")) as url:
            made = population.provision(population.Stack(checkout_url=url, stripe_url="",
                                                         secret=settings.auth_secret),
                                        first_id=population.FIRST_IDS["free"],
                                        count=1 + PURCHASE_WARM + 3 * args.purchases, kind="free")
        relay_directory(urls, env)
        analyze(urls)
        person = made[0].__dict__
        token = provider.token(person["user_id"], person["email"])
        buyers = [{**p.__dict__, "token": provider.token(p.user_id, p.email)} for p in made[1:]]
        timings: list[str] = []
        checkout = checkout_app(settings)
        env["CHECKOUT_URL"] = "http://127.0.0.1:9"  # eligibility must not need checkout
        trials = trials_app(Settings.from_env("trials", env))
        os.environ["FLOOR_DATABASE_URL"] = urls["checkout"]
        floor = floor_app()
        args.out.mkdir(parents=True, exist_ok=True)
        paths = _paths(checkout, trials, floor, person, token, buyers, stripe_url, timings)
        for name in wanted:
            if name == "purchase":
                text = profile(name, paths[name], args.purchases, warm=PURCHASE_WARM)
                # The pass without a profiler: its Server-Timing is the true one.
                text += purchase_timing(timings[PURCHASE_WARM:PURCHASE_WARM + args.purchases])
            else:
                text = profile(name, paths[name], args.requests)
            (args.out / f"{name}.txt").write_text(text)
            print(text.split("\n", 1)[0], flush=True)
        checkout.extensions["checkout"].ctx.close()
        trials.extensions["trials"].ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
