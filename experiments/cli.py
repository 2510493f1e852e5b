"""`python -m experiments migrate | collect | list | report <key> [--format text|json|html|csv] | serve`.

Exit codes: 0 ok, 1 the store, payload or metrics can not be read, 2 usage
(an unknown experiment included)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from experiments import formatting, store
from experiments.catalog import Catalog, UnknownExperiment
from experiments.definitions import PayloadUnreadable
from experiments.metrics import MetricsError
from experiments.render import FORMATS, render
from persistence.db import make_engine
from services.common.config import STACK_PORTS, port_for
from services.common.logs import configure_logging

DEFAULT_PORT = STACK_PORTS["experiments"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except UnknownExperiment as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (MetricsError, PayloadUnreadable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        url = make_url(store.store_url_from_env()).render_as_string(hide_password=True)
        print(f"error: can not read the event store at {url} ({type(exc).__name__}); "
              "run `python -m experiments migrate` (and `collect`) first", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments",
                                     description="The experiment event store, reports and dashboard.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the event store (EXPERIMENTS_DATABASE_URL)"
                        ).set_defaults(run=_migrate)
    commands.add_parser("collect", help="copy new funnel events from the three services into the store"
                        ).set_defaults(run=_collect)
    commands.add_parser("list", help="the experiments: status, sample ratio, progress against the plan, "
                        "days running and exposures").set_defaults(run=_list)
    report = commands.add_parser("report", help="one experiment's results")
    report.add_argument("key", help="the experiment key, e.g. smb-discount-prompt")
    report.add_argument("--format", choices=FORMATS, default="text")
    report.add_argument("--output", type=Path, help="write to this file instead of standard output")
    report.set_defaults(run=_report)
    serve = commands.add_parser("serve", help="the growth dashboard")
    serve.add_argument("--port", type=int,
                       help=f"default EXPERIMENTS_PORT, else {DEFAULT_PORT} (+ PORT_OFFSET)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.set_defaults(run=_serve)
    return parser


def _migrate(_: argparse.Namespace) -> int:
    store.upgrade(store.store_url_from_env())
    print("experiments: migrated")
    return 0


def _collect(_: argparse.Namespace) -> int:
    failed: list[str] = []

    def report_failure(source: str, error: Exception) -> None:
        failed.append(source)
        said = (str(error).splitlines() or [""])[0]
        print(f"error: can not collect from {source}: {type(error).__name__}: {said}", file=sys.stderr)

    engine = make_engine(store.store_url_from_env())
    try:
        copied = store.collect_once(engine, store.source_urls_from_env(), max_batches=None,
                                    on_failure=report_failure)
    finally:
        engine.dispose()
    print(f"collected {copied} events" + (f"; {', '.join(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _list(_: argparse.Namespace) -> int:
    catalog = Catalog.load()
    engine = make_engine(store.store_url_from_env())
    try:
        summaries = catalog.summaries(engine)
    finally:
        engine.dispose()
    width = max(len(s.key) for s in summaries) + 2
    for summary in summaries:
        exposed = ", ".join(f"{name} {units:,}" for name, units in summary.exposures)
        srm = f"SRM p={summary.srm_p_value:.2g}!" if summary.srm_warning else "split ok"
        progress = ("no plan" if summary.progress is None
                    else f"{formatting.percent(summary.progress, 0)} of plan")
        days = "-" if summary.days_running is None else f"{summary.days_running}d"
        print(f"{summary.key.ljust(width)}{summary.status.ljust(9)}{summary.unit.ljust(11)}{srm.ljust(14)}"
              f"{progress.ljust(13)}{days.ljust(6)}{exposed}")
    for problem in catalog.problems():
        print(f"note: {problem}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    catalog = Catalog.load()
    catalog.get(args.key)  # an unknown key fails before the store is touched
    engine = make_engine(store.store_url_from_env())
    try:
        text = render(catalog.report(engine, args.key), args.format)
    finally:
        engine.dispose()
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"error: can not write {args.output} ({exc.strerror})", file=sys.stderr)
            return 1
        print(f"written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from experiments.dashboard import create_app

    port = args.port
    if port is None:
        try:
            port = port_for("experiments")
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    configure_logging("experiments")
    run_simple(args.host, port, create_app(), threaded=True, use_reloader=False)
    return 0
