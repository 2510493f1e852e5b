"""`python -m services.trials.sweep`: end the trials whose time is up (once each).

The worker runs this on a schedule; running it by hand, twice, or in two
places at once is safe.
"""

from __future__ import annotations

from services.common.config import Settings
from services.trials.app import build_trials
from services.trials.usecases.trials import expire_due


def main() -> int:
    app = build_trials(Settings.from_env("trials"))
    try:
        ended = expire_due(app, app.ctx.uow)
        print(f"trials: {len(ended)} expired")
    finally:
        app.ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
