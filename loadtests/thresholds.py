"""Checking a locust run's stats CSV against loadtests/thresholds.toml.

Each request name locust reports (`<METHOD> <name>`, e.g. `POST /purchases`)
gets the limits of its `[endpoint."..."]` table, or `[default]`; the
`Aggregated` row is checked against `[total]`. An endpoint the run never
called is missed too when it is `required = true`, or `required_by` a profile
(user class) that was part of the run.
"""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THRESHOLDS_FILE = Path(__file__).resolve().with_name("thresholds.toml")
TOTAL = "Aggregated"


@dataclass(frozen=True)
class Limit:
    max_failure_ratio: float
    p95_ms: float | None
    required: bool = False
    required_by: str | None = None  # a profile: required when it runs


@dataclass(frozen=True)
class Thresholds:
    default: Limit
    total: Limit
    endpoints: dict[str, Limit]

    def for_endpoint(self, key: str) -> Limit:
        return self.total if key == TOTAL else self.endpoints.get(key, self.default)


@dataclass(frozen=True)
class Stat:
    key: str  # "POST /purchases", or "Aggregated"
    requests: int
    failures: int
    p95_ms: float | None  # None when locust reports N/A (no requests)

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Verdict:
    stat: Stat
    limit: Limit
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _limit(table: dict[str, Any], base: Limit) -> Limit:
    p95 = table.get("p95_ms", base.p95_ms)
    return Limit(max_failure_ratio=float(table.get("max_failure_ratio", base.max_failure_ratio)),
                 p95_ms=None if p95 is None else float(p95), required=bool(table.get("required", False)),
                 required_by=table.get("required_by"))


def load_thresholds(path: Path = THRESHOLDS_FILE) -> Thresholds:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    default = _limit(data.get("default", {}), Limit(max_failure_ratio=0.0, p95_ms=None))
    return Thresholds(
        default=default,
        total=_limit(data.get("total", {}), Limit(default.max_failure_ratio, None)),
        endpoints={key: _limit(table, default) for key, table in data.get("endpoint", {}).items()})


def _number(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return None if math.isnan(value) else value


def read_stats(path: Path) -> list[Stat]:
    """Rows of locust's `<prefix>_stats.csv` (Type, Name, Request Count, Failure Count, ..., 95%, ...)."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    stats = []
    for row in rows:
        name = row["Name"]
        key = TOTAL if name == TOTAL and not row.get("Type") else f"{row['Type']} {name}"
        stats.append(Stat(key=key, requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                          p95_ms=_number(row.get("95%"))))
    return stats


def check(stats: list[Stat], thresholds: Thresholds, profiles: set[str] | None = None) -> list[Verdict]:
    """A verdict per row; `profiles`: the user classes that ran (None: all of them)."""
    verdicts = []
    for stat in stats:
        limit = thresholds.for_endpoint(stat.key)
        problems = []
        if stat.failure_ratio > limit.max_failure_ratio:
            problems.append(f"failures {stat.failure_ratio:.2%} > {limit.max_failure_ratio:.2%}")
        if limit.p95_ms is not None and stat.requests and (stat.p95_ms or 0) > limit.p95_ms:
            problems.append(f"p95 {stat.p95_ms:.0f} ms > {limit.p95_ms:.0f} ms")
        verdicts.append(Verdict(stat, limit, tuple(problems)))
    seen = {s.key for s in stats if s.requests}
    for key, limit in thresholds.endpoints.items():
        expected = limit.required or (limit.required_by is not None
                                      and (profiles is None or limit.required_by in profiles))
        if expected and key not in seen:
            verdicts.append(Verdict(Stat(key, 0, 0, None), limit, ("required but never called",)))
    # Endpoints first in name order, the total last.
    return sorted(verdicts, key=lambda v: (v.stat.key == TOTAL, v.stat.key))


def format_table(verdicts: list[Verdict]) -> str:
    header = ("endpoint", "requests", "failures", "p95 ms", "limit", "result")
    rows = [header]
    for v in verdicts:
        s, lim = v.stat, v.limit
        limit = f"<={lim.max_failure_ratio:.1%} fail" + (f", p95<={lim.p95_ms:.0f}" if lim.p95_ms else "")
        rows.append((s.key, str(s.requests), f"{s.failures} ({s.failure_ratio:.1%})",
                     "-" if s.p95_ms is None else f"{s.p95_ms:.0f}", limit,
                     "OK" if v.ok else "MISSED: " + "; ".join(v.problems)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
             for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
