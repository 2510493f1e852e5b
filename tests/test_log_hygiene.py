"""Runs last (see conftest): scans everything the suite logged for secrets."""

from __future__ import annotations

from services.common.logs import find_secrets
from tests.conftest import RUN_LOG


def test_no_secrets_in_the_logs_of_this_test_run() -> None:
    text = RUN_LOG.read_text(encoding="utf-8")
    assert text, "the run log is empty: the capture is broken"
    leaks = [line for line in text.splitlines() if find_secrets(line)]
    assert leaks == [], f"{len(leaks)} log lines carry secrets, e.g. {leaks[:3]}"


def test_the_scanner_finds_what_it_must_and_ignores_timestamps() -> None:
    assert find_secrets("charging 4000 0000 0000 0341 now")
    assert find_secrets("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijklmnop")
    assert find_secrets("using sk_live_abc123") and find_secrets("whsec_x1")
    assert not find_secrets("at 1795249219123 the order 1234567890123 was saved")
