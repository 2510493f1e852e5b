"""`python -m services.trials.worker [--interval S] [--once]`: the trials service's background work.

Ends the trials whose time is up (services/trials/sweep.py) and relays the
trials outbox to the services routed its topics (messaging/routing.py),
every pass. SIGTERM finishes the current pass first.
"""

from __future__ import annotations

import sys

from messaging import jobs
from services.common.config import Settings
from services.trials.app import build_trials
from services.trials.usecases.trials import expire_due


def build() -> jobs.Jobs:
    trials = build_trials(Settings.from_env("trials"))

    def sweep() -> str:
        ended = expire_due(trials, trials.ctx.uow)
        return f"trials: expired {len(ended)}" if ended else ""

    return [jobs.Guarded("trials sweeps", sweep), *jobs.relay_jobs(trials.ctx)], [trials.ctx.close]


if __name__ == "__main__":
    raise SystemExit(jobs.main(__doc__ or "", build, sys.argv[1:]))
