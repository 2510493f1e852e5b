"""`python -m deploy.worker [job ...] [--interval S] [--once]`: several workers in one process.

Each service owns its background work (services/checkout/worker.py,
services/trials/worker.py, experiments/collector.py); a container that should
run more than one of them (`entrypoint worker`, compose's worker) runs them
here, in one loop. No job named: all of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from messaging import jobs
from services.common.logs import configure_logging

# The experiments collector reads every service's database and writes the event store.
EXPERIMENTS = "experiments"
WORKERS = {"checkout": "services.checkout.worker", "trials": "services.trials.worker",
           EXPERIMENTS: "experiments.collector"}
JOBS = tuple(WORKERS)


def builder(job: str) -> Callable[[], jobs.Jobs]:
    return importlib.import_module(WORKERS[job]).build  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("services", nargs="*", metavar="job", help=f"any of {', '.join(JOBS)} (default: all)")
    jobs.add_loop_arguments(parser)
    args = parser.parse_args(argv)
    unknown = set(args.services) - set(JOBS)
    if unknown:
        parser.error(f"unknown services: {', '.join(sorted(unknown))}")
    configure_logging("worker")
    return jobs.run_built([builder(job) for job in args.services or JOBS], args.interval, args.once)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
