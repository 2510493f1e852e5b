"""The worker's loop: a job that fails every pass (its database is down) shows
its traceback once, then one line a pass, and says when it works again."""

from __future__ import annotations

import logging

import pytest

from messaging.jobs import Guarded


def test_a_job_failing_every_pass_logs_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    down = ConnectionError("database is down")
    # None: not the job's turn this pass (proves nothing either way).
    outcomes: list[BaseException | str | None] = [down, None, down, down, "checkout: relayed 2",
                                                  KeyError("bug"), ""]

    def relay() -> str | None:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    job = Guarded("checkout relay", relay)
    caplog.set_level(logging.INFO, logger="worker")
    while outcomes:
        job()  # never raises: the other jobs run

    said = [(r.levelno, bool(r.exc_info), r.getMessage()) for r in caplog.records if r.name == "worker"]
    assert said == [
        (logging.ERROR, True, "worker job checkout relay failed"),
        (logging.ERROR, False, "worker job checkout relay still failing: ConnectionError: database is down"),
        (logging.ERROR, False, "worker job checkout relay still failing: ConnectionError: database is down"),
        (logging.INFO, False, "worker job checkout relay works again"),
        (logging.INFO, False, "checkout: relayed 2"),
        (logging.ERROR, True, "worker job checkout relay failed"),  # another error: its traceback too
        (logging.INFO, False, "worker job checkout relay works again"),
    ]
