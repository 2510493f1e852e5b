"""A load test with a verdict: provision the population, run locust headless,
check loadtests/thresholds.toml.

    python -m loadtests.run --users 50 --spawn-rate 5 --time 2m
    make loadtest USERS=50 TIME=2m          # against a running `make run`

Population: fresh prospects (Free groups nobody bought yet) and Premium Owners
are made over HTTP (loadtests/population.py: the platform's directory hooks to
checkout, then a purchase for each Premium group), with tokens signed by
AUTH_SECRET (the development secret unless set), carrying the `synthetic` role.
Results: var/loadtest/<run>_stats.csv (and the other locust CSVs),
var/loadtest/<run>.html, var/loadtest/<run>_server_timing.json.
Exit status: 0 when every threshold holds, 1 when one is missed, 2 when the
run itself did not happen.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests

from loadtests import population
from loadtests.knobs import ROOT, local_url, var_dir
from loadtests.thresholds import THRESHOLDS_FILE, check, format_table, load_thresholds, read_stats
from loadtests.tokens import auth_secret

LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
OUT = var_dir() / "loadtest"
PROFILES = ("Prospect", "TrialOwner", "GrowthAnalyst")
# A prospect's funnel takes about this long with the default think time (1-3 s a step).
FUNNEL_SECONDS = 12


def seconds(spec: str) -> int:
    """locust's -t syntax: 90, 90s, 2m, 1h30m; more than zero (locust reads 0 as 'forever')."""
    if spec.isdigit():
        total = int(spec)
    else:
        parts = re.findall(r"(\d+)\s*([hms])", spec)
        if not parts or "".join(n + u for n, u in parts) != spec.replace(" ", ""):
            raise argparse.ArgumentTypeError(f"not a duration: {spec!r} (e.g. 90s, 2m, 1h30m)")
        total = sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if total <= 0:
        raise argparse.ArgumentTypeError(f"the run time must be more than zero, not {spec!r}")
    return total


def positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than zero, not {raw!r}")
        return value
    return parse


def unreachable(args: argparse.Namespace) -> str | None:
    """The first part of the stack that does not answer, before anything is provisioned."""
    checks = [f"{args.checkout_url}/healthz", f"{args.trials_url}/healthz", f"{args.stripe_url}/v1/customers"]
    if args.experiments_url:
        checks.append(f"{args.experiments_url}/healthz")
    for url in checks:
        try:
            if requests.get(url, timeout=5).status_code < 500:
                continue
        except requests.RequestException:
            pass
        return url
    return None


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m loadtests.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=positive(int), default=50)
    parser.add_argument("--spawn-rate", type=positive(float), default=5)
    parser.add_argument("--time", default="2m", help="run time (locust -t syntax: 90s, 2m)")
    parser.add_argument("--checkout-url", default=env("CHECKOUT_URL") or local_url("checkout"))
    parser.add_argument("--trials-url", default=env("TRIALS_URL") or local_url("trials"))
    parser.add_argument("--stripe-url", default=env("STRIPE_URL") or local_url("localstripe"))
    parser.add_argument("--experiments-url", default=env("EXPERIMENTS_URL", ""),
                        help="growth dashboard (GrowthAnalyst); empty: that profile is off")
    parser.add_argument("--profiles", nargs="+", choices=PROFILES, help="user classes (default: all)")
    parser.add_argument("--prospects", type=int, help="fresh Free groups to provision "
                        f"(default: users x run time / {FUNNEL_SECONDS} s, plus margin)")
    parser.add_argument("--owners", type=int, help="Premium Owners (default: users)")
    parser.add_argument("--thresholds", type=Path, default=THRESHOLDS_FILE)
    parser.add_argument("--name", help="run name for the result files (default: run-<UTC time>)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--locust-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for locust (repeatable), e.g. --locust-arg=--loglevel=WARNING")
    return parser


def provision_population(stack: population.Stack, path: Path, *, prospects: int, owners: int,
                         analysts: int) -> None:
    fresh = population.prospects(stack, prospects)
    premium = population.provision(stack, first_id=population.FIRST_IDS["premium"], count=owners,
                                   kind="premium")
    readers = population.analysts(stack, analysts)
    population.await_trials(stack, premium)
    population.write(path, {"free": fresh, "premium": premium, "analyst": readers}, role="synthetic")
    print(f"population: {len(fresh)} fresh prospects, {len(premium)} Premium Owners, "
          f"{len(readers)} analysts -> {path}")


def locust_command(args: argparse.Namespace, profiles: list[str], csv_prefix: Path, html: Path) -> list[str]:
    binary = Path(sys.executable).with_name("locust")
    return [str(binary if binary.exists() else "locust"), "-f", str(LOCUSTFILE), "--headless",
            "--users", str(args.users), "--spawn-rate", str(args.spawn_rate), "--run-time", args.time,
            "--stop-timeout", "10", "--csv", str(csv_prefix), "--html", str(html), "--only-summary",
            *args.locust_arg, *profiles]


def locust_env(args: argparse.Namespace, population_file: Path, timing_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CHECKOUT_URL=args.checkout_url, TRIALS_URL=args.trials_url, STRIPE_URL=args.stripe_url,
               EXPERIMENTS_URL=args.experiments_url, LOADTEST_POPULATION=str(population_file),
               LOADTEST_SERVER_TIMING_OUT=str(timing_file), PYTHONPATH=str(ROOT))
    return env


def server_timing_table(path: Path) -> str:
    if not path.exists():
        return "(no Server-Timing collected: start the services with SERVER_TIMING=on)"
    data = json.loads(path.read_text())
    lines = [f"{'endpoint (mean ms)':<50} {'db':>8} {'stripe':>8} {'app':>8} {'total':>8}"]
    for name, t in sorted(data.items()):
        if name.split(" ", 1)[1].startswith("stripe "):
            continue
        lines.append(f"{name:<50} {t.get('db', 0):>8.1f} {t.get('stripe', 0):>8.1f} "
                     f"{t.get('app', 0):>8.1f} {t.get('total', 0):>8.1f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run_seconds = seconds(args.time)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    name = args.name or datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    # GrowthAnalyst runs only with a dashboard to read (the locustfile makes it abstract otherwise).
    if args.profiles and "GrowthAnalyst" in args.profiles and not args.experiments_url:
        parser.error("GrowthAnalyst reads the growth dashboard: give --experiments-url (or EXPERIMENTS_URL)")
    profiles = [p for p in (args.profiles or PROFILES) if p != "GrowthAnalyst" or args.experiments_url]
    if down := unreachable(args):
        print(f"error: {down} does not answer; start the stack (`make run`) or point the URLs at it",
              file=sys.stderr)
        return 2
    prospects = args.prospects
    if prospects is None:  # each funnel uses up one Free group
        wanted = args.users * (math.ceil(run_seconds / FUNNEL_SECONDS) + 2)
        prospects = wanted if "Prospect" in profiles else 0
    owners = args.owners if args.owners is not None else (args.users if "TrialOwner" in profiles else 0)
    analysts = args.users if "GrowthAnalyst" in profiles else 0
    population_file = args.out / "population.json"
    url = {name: getattr(args, f"{name}_url").rstrip("/") for name in ("checkout", "trials", "stripe")}
    stack = population.Stack(checkout_url=url["checkout"], trials_url=url["trials"], stripe_url=url["stripe"],
                             secret=auth_secret())
    try:
        provision_population(stack, population_file, prospects=prospects, owners=owners, analysts=analysts)
    except (population.PopulationError, requests.RequestException) as exc:
        print(f"error: can not make the population through checkout's API: {exc}", file=sys.stderr)
        return 2

    csv_prefix, html = args.out / name, args.out / f"{name}.html"
    timing_file = args.out / f"{name}_server_timing.json"
    command = locust_command(args, profiles if args.profiles else [], csv_prefix, html)
    print("running:", " ".join(command), flush=True)
    completed = subprocess.run(command, env=locust_env(args, population_file, timing_file), cwd=ROOT,
                               check=False)
    stats_file = Path(f"{csv_prefix}_stats.csv")
    if not stats_file.exists():
        print(f"locust exited {completed.returncode} without {stats_file}", file=sys.stderr)
        return 2
    verdicts = check(read_stats(stats_file), load_thresholds(args.thresholds), set(profiles))
    print()
    print(format_table(verdicts))
    print()
    print(server_timing_table(timing_file))
    print(f"\nreport: {html}\nstats:  {stats_file}")
    missed = [v for v in verdicts if not v.ok]
    print(f"\n{'MISSED' if missed else 'OK'}: {len(verdicts) - len(missed)} of {len(verdicts)} within "
          f"{args.thresholds.relative_to(ROOT) if args.thresholds.is_relative_to(ROOT) else args.thresholds}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
