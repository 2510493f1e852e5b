"""LOADTEST_STAGES for the ramping shape in loadtests/locustfile.py, parsed
outside the locustfile so it can be tested without importing locust (which
monkey-patches the process with gevent)."""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_stages(spec: str) -> list[tuple[float, int]]:
    """"1m:10,2m:50,30s:0" -> [(60, 10), (120, 50), (30, 0)]: (seconds, users at the stage's end)."""
    stages = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        duration, _, users = part.partition(":")
        match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", duration.strip())
        if not match or not users.strip().isdigit() or float(match[1]) <= 0:
            raise ValueError(f"bad stage {part!r}: write <duration>:<users>, e.g. 2m:50")
        stages.append((float(match[1]) * UNITS[match[2] or "s"], int(users)))
    return stages


def target(stages: list[tuple[float, int]], elapsed: float) -> tuple[int, float] | None:
    """(users, spawn rate) at `elapsed` seconds into the run; None once every stage is done.
    Each stage moves from the previous stage's users to its own over its duration."""
    before = 0
    for duration, users in stages:
        if elapsed < duration:
            return users, max(1.0, abs(users - before) / duration)
        elapsed -= duration
        before = users
    return None
