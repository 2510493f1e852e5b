"""The container's entrypoint: one subcommand per role the image can play.

    serve {checkout,trials,notifications}   gunicorn + deploy/gunicorn.conf.py, the service's create_app()
    dashboard                               gunicorn + deploy/gunicorn.conf.py, the growth dashboard
                                            (experiments.dashboard:create_app(), port 8004)
    worker [job ...]                        outbox relays, trial expiry, renewal sweeps, and the
                                            experiments collector (jobs: checkout, trials, experiments;
                                            default all): one job runs its own worker (e.g.
                                            services.trials.worker), several run in one loop (deploy.worker)
    deliver                                 send due mail through SMTP (services.notifications.deliver)
    sweep {trials,renewals}                 one pass of a sweep, then exit (for CronJobs)
    migrate [target ...]                    Alembic upgrade to head of the services' databases and
                                            the experiments' event store (deploy.migrate; default all)

`plan(argv)` turns the arguments into the command line to run and does nothing
else, so tests can call it; `main()` replaces this process with that command
(os.execvp), so signals reach gunicorn or the worker directly (PID 1 in a
container) and its exit status is the container's. Bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from services.common.config import DEFAULT_PORTS

GUNICORN_CONFIG = Path(__file__).resolve().with_name("gunicorn.conf.py")
# The jobs `python -m deploy.worker` runs, each its own worker module, and the targets
# `deploy.migrate` accepts (tests/deploy checks these against the modules, which are heavier to import).
WORKERS = {"checkout": "services.checkout.worker", "trials": "services.trials.worker",
           "experiments": "experiments.collector"}
WORKER_SERVICES = tuple(WORKERS)
MIGRATE_SERVICES = ("checkout", "trials", "notifications", "experiments")
# The growth dashboard (experiments.cli.DEFAULT_PORT).
DASHBOARD_PORT = 8004
DASHBOARD_APP = "experiments.dashboard:create_app()"
SWEEPS = {
    "trials": ["-m", "services.trials.sweep"],
    "renewals": ["-m", "services.checkout.sweep"],
}


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.entrypoint", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    roles = parser.add_subparsers(dest="role", required=True, metavar="role")

    serve = roles.add_parser("serve", help="serve one service's HTTP API with gunicorn")
    serve.add_argument("service", choices=sorted(DEFAULT_PORTS, key=DEFAULT_PORTS.__getitem__))

    roles.add_parser("dashboard", help="serve the growth dashboard with gunicorn")

    worker = roles.add_parser("worker", help="relay outboxes, run the sweeps, collect funnel events")
    worker.add_argument("services", nargs="*", metavar="job",
                        help=f"any of {', '.join(WORKER_SERVICES)} (default: all)")
    worker.add_argument("--interval", type=_positive_float, help="seconds between passes")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")

    deliver = roles.add_parser("deliver", help="send due notifications through SMTP")
    deliver.add_argument("--interval", type=_positive_float, help="seconds between passes")
    deliver.add_argument("--batch", type=_positive_int, help="messages claimed per pass")
    deliver.add_argument("--once", action="store_true", help="send everything due now, then exit")

    sweep = roles.add_parser("sweep", help="one pass of a sweep, then exit")
    sweep.add_argument("sweep", choices=sorted(SWEEPS))

    migrate = roles.add_parser("migrate", help="upgrade databases to the newest migration")
    migrate.add_argument("services", nargs="*", metavar="target",
                         help=f"any of {', '.join(MIGRATE_SERVICES)} (default: all)")
    return parser


def _check_services(parser: argparse.ArgumentParser, given: list[str], allowed: Sequence[str]) -> None:
    # argparse's `choices` refuses an empty `nargs="*"` list, so check here.
    unknown = [name for name in given if name not in allowed]
    if unknown:
        parser.error(f"unknown service {unknown[0]!r} (choose from {', '.join(allowed)})")


def _port(parser: argparse.ArgumentParser, default: int, environ: Mapping[str, str]) -> int:
    text = environ.get("PORT") or str(default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        parser.error(f"PORT must be a TCP port number, not {text!r}")
    return int(text)


def plan(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """The command line (argv list) a role runs; exits 2 with argparse's message on bad arguments."""
    env = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(list(argv))
    python = sys.executable or "python"
    if args.role == "serve":
        port = _port(parser, DEFAULT_PORTS[args.service], env)
        return [python, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG),
                "--bind", f"0.0.0.0:{port}", f"services.{args.service}.app:create_app()"]
    if args.role == "dashboard":
        port = _port(parser, DASHBOARD_PORT, env)
        return [python, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG),
                "--bind", f"0.0.0.0:{port}", DASHBOARD_APP]
    if args.role == "worker":
        _check_services(parser, args.services, WORKER_SERVICES)
        jobs = list(dict.fromkeys(args.services))
        command = ([python, "-m", WORKERS[jobs[0]]] if len(jobs) == 1
                   else [python, "-m", "deploy.worker", *jobs])
        if args.interval is not None:
            command += ["--interval", str(args.interval)]
        return command + (["--once"] if args.once else [])
    if args.role == "deliver":
        command = [python, "-m", "services.notifications.deliver"]
        if args.interval is not None:
            command += ["--interval", str(args.interval)]
        if args.batch is not None:
            command += ["--batch", str(args.batch)]
        return command + (["--once"] if args.once else [])
    if args.role == "sweep":
        return [python, *SWEEPS[args.sweep]]
    if args.role == "migrate":
        _check_services(parser, args.services, MIGRATE_SERVICES)
        return [python, "-m", "deploy.migrate", *args.services]
    raise AssertionError(f"unhandled role {args.role}")  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> NoReturn:
    command = plan(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
