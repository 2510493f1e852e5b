"""What benchmarks/ceiling.py measured, as data (JSON, to compare runs) and as
benchmarks/results/ceiling.md with a verdict per target."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TOTAL = "Aggregated"
# The targets of issue #19, as ratios within one run (never timed tests).
TARGET_OF_FLOOR = 0.8  # quote and eligibility, of the floor endpoint's req/s
TARGET_OF_BARE = 0.5  # quote, of the bare endpoint's req/s
TARGET_P99_MS = 50.0  # quote and eligibility at --users closed-loop users
TARGET_PURCHASE_PROJECT_MS = 25.0  # database + application share of POST /purchases, p50
TARGET_TELEMETRY_COST = 0.05
TARGET_FLAG_US = 20.0
TARGET_RSS_MB = 150.0
RSS_GROWTH_TOLERANCE = 0.03  # between the two readings: allocator noise, not a leak
TELEMETRY_OFF, TELEMETRY_FULL = "FUNNEL_TELEMETRY=off", "on + PostHog (unreachable)"
NOTES = Path(__file__).resolve().parent / "results" / "ceiling_notes.md"


@dataclass(frozen=True)
class Result:
    label: str
    requests: int
    failures: int
    rps: float
    p50: float
    p99: float
    size: float
    timing: dict[str, float]  # mean Server-Timing parts, ms
    background: float = 0.0  # cores busy just before the run, with our servers idle: other work


@dataclass
class Run:
    """Everything one benchmark run produced."""

    started: str
    info: dict[str, str]
    options: dict[str, Any]
    runs: dict[str, Result] = field(default_factory=dict)  # bare, quote, eligibility, lookup
    steady: dict[str, Result] = field(default_factory=dict)  # the same, workers never recycled
    funnel: dict[str, Result] = field(default_factory=dict)  # request key -> result
    funnel_alone: dict[str, Result] = field(default_factory=dict)  # the same, one buyer at a time
    telemetry: dict[str, list[Result]] = field(default_factory=dict)
    flags: dict[str, float] = field(default_factory=dict)
    prospects: dict[str, Result] = field(default_factory=dict)
    # service -> requests served -> resident MB of each gunicorn worker
    memory: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> Run:
        data = json.loads(path.read_text())

        def results(d: dict[str, Any]) -> dict[str, Result]:
            return {k: Result(**v) for k, v in d.items()}

        return cls(started=data["started"], info=data["info"], options=data["options"],
                   runs=results(data["runs"]), steady=results(data["steady"]), funnel=results(data["funnel"]),
                   funnel_alone=results(data.get("funnel_alone", {})),
                   telemetry={k: [Result(**r) for r in v] for k, v in data["telemetry"].items()},
                   flags=data["flags"], prospects=results(data["prospects"]), memory=data.get("memory", {}))


ROWS = {
    "bare": "bare Flask `POST /quotes` (benchmarks/bare_app.py)",
    "floor": "floor: bare Flask + SELECT + INSERT in one transaction (benchmarks/floor_app.py)",
    "floor_relaxed": "floor, its commit not waiting for the disk (`FLOOR_SYNCHRONOUS_COMMIT=off`)",
    "quote": "checkout `POST /quotes`",
    "eligibility": "trials `GET /namespaces/{id}/trials/eligibility`",
    "lookup": "checkout `GET /namespaces/{id}`",
}


def timing_text(result: Result) -> str:
    t = result.timing
    if not t:
        return "-"
    return f"db {t.get('db', 0):.1f} / stripe {t.get('stripe', 0):.1f} / app {t.get('app', 0):.1f}"


def _table(runs: dict[str, Result], baseline: dict[str, Result] | None) -> list[str]:
    bare = runs["bare"]
    floor = runs.get("floor")
    head = ("| endpoint | req/s | p50 ms | p99 ms | of bare | of floor | requests / failed "
            "| Server-Timing mean ms | busy before |")
    lines = [head + (" before: req/s (of bare) |" if baseline else ""),
             "|---" * (9 + bool(baseline)) + "|"]
    for key, name in ROWS.items():
        if key not in runs:
            continue
        r = runs[key]
        of_floor = f"{r.rps / floor.rps:.0%}" if floor else "-"
        line = (f"| {name} | {r.rps:.0f} | {r.p50:.0f} | {r.p99:.0f} | {r.rps / bare.rps:.0%} | {of_floor} | "
                f"{r.requests} / {r.failures} | {timing_text(r)} | {r.background:.2f} cores |")
        if baseline and key in baseline:
            b = baseline[key]
            line += f" {b.rps:.0f} ({b.rps / baseline['bare'].rps:.0%}) |"
        lines.append(line)
    return lines


def _verdict(met: bool, detail: str) -> str:
    return f"**{'MET' if met else 'MISSED'}**: {detail}"


def _clean(*results: Result) -> bool:
    """A throughput only counts when requests were answered and none failed."""
    return all(r.requests > 0 and r.failures == 0 for r in results)


def _ratio(name: str, result: Result, of: Result, target: float) -> tuple[bool, str]:
    ratio = result.rps / of.rps
    met = ratio >= target and _clean(result, of)
    short = "" if met else f", {(target - ratio) * of.rps:.0f} req/s short"
    failed = "" if _clean(result, of) else f" (not clean: {result.failures + of.failures} failed)"
    return met, f"{ratio:.0%} of {name} ({result.rps:.0f} of {of.rps:.0f} req/s){short}{failed}"


def targets(run: Run) -> list[str]:
    runs = run.runs
    bare, floor, quote, elig = (runs[k] for k in ("bare", "floor", "quote", "eligibility"))
    users = run.options["users"]
    lines = []
    q_floor, q_bare, e_floor = (_ratio("floor", quote, floor, TARGET_OF_FLOOR),
                                _ratio("bare", quote, bare, TARGET_OF_BARE),
                                _ratio("floor", elig, floor, TARGET_OF_FLOOR))
    relaxed = runs.get("floor_relaxed")

    def stricter(result: Result) -> str:
        """The same ratio against the floor that, like our view-only steps, does not wait for the disk."""
        return (f" Against the floor whose commit does not wait for the disk: {result.rps / relaxed.rps:.0%}"
                f" ({relaxed.rps:.0f} req/s)." if relaxed else "")

    lines.append(f"- Quote ≥ {TARGET_OF_FLOOR:.0%} of floor: " + _verdict(*q_floor) + "." + stricter(quote))
    lines.append(f"- Quote ≥ {TARGET_OF_BARE:.0%} of bare: " + _verdict(*q_bare) + ".")
    lines.append(f"- Trial eligibility ≥ {TARGET_OF_FLOOR:.0%} of floor: " + _verdict(*e_floor) + "."
                 + stricter(elig))
    for key, label in (("quote", "Quote"), ("eligibility", "Trial eligibility")):
        r = runs[key]
        lines.append(f"- {label} p99 ≤ {TARGET_P99_MS:.0f} ms at {users} closed-loop users: " + _verdict(
            r.p99 <= TARGET_P99_MS and _clean(r), f"{r.p99:.0f} ms (p50 {r.p50:.0f} ms)."))
    for funnel, how in ((run.funnel, f"{users} buyers at once"), (run.funnel_alone, "one buyer at a time")):
        purchase = funnel.get("POST /purchases")
        if purchase is None or "project_p50" not in purchase.timing:
            continue
        project = purchase.timing["project_p50"]
        met = project <= TARGET_PURCHASE_PROJECT_MS
        lines.append(f"- Purchase, {how}: our share (db + app) ≤ {TARGET_PURCHASE_PROJECT_MS:.0f} ms at p50: "
                     + _verdict(met and _clean(purchase), f"{project:.1f} ms; localstripe's own time apart: "
                                f"{purchase.timing.get('stripe', 0):.1f} ms mean."))
    means = {k: statistics.mean(r.rps for r in v) for k, v in run.telemetry.items() if v}
    if TELEMETRY_OFF in means and TELEMETRY_FULL in means:
        off, full = means[TELEMETRY_OFF], means[TELEMETRY_FULL]
        cost = 1 - full / off
        met = cost <= TARGET_TELEMETRY_COST and _clean(*(r for v in run.telemetry.values() for r in v))
        lines.append(f"- Funnel telemetry with PostHog forwarding on and unreachable costs ≤ "
                     f"{TARGET_TELEMETRY_COST:.0%} of quote throughput: " + _verdict(
                         met, f"{cost:.1%} ({off:.0f} → {full:.0f} req/s, mean of {run.options['rounds']} "
                         "interleaved runs each)."))
    for service, readings in run.memory.items():
        (first, early), (last, late) = list(readings.items())[0], list(readings.items())[-1]
        worst, grown = max(late + early), max(b / a - 1 for a, b in zip(early, late, strict=False))
        met = worst <= TARGET_RSS_MB and grown <= RSS_GROWTH_TOLERANCE
        lines.append(f"- {service} worker memory ≤ {TARGET_RSS_MB:.0f} MB and not growing from "
                     f"{int(first):,} to {int(last):,} requests: " + _verdict(
                         met, f"{', '.join(f'{mb:.0f}' for mb in early)} MB → "
                         f"{', '.join(f'{mb:.0f}' for mb in late)} MB per worker ({grown:+.1%} at most; "
                         f"growth under {RSS_GROWTH_TOLERANCE:.0%} counts as allocator noise)."))
    if run.flags:
        worst = max(run.flags.values())
        lines.append(f"- Flag evaluation ≤ {TARGET_FLAG_US:.0f} µs/call cached: " + _verdict(
            worst <= TARGET_FLAG_US, f"worst feature {worst:.1f} µs, mean "
            f"{statistics.mean(run.flags.values()):.1f} µs per `Flags.evaluate` (timeit, best of 5)."))
    if pros := run.prospects.get(TOTAL):
        opts = run.options
        lines.append(f"- Zero failed requests at {opts['prospect_users']} concurrent prospects for "
                     f"{opts['prospect_time']} s: " + _verdict(
                         _clean(pros), f"{pros.failures} failed of {pros.requests} requests."))
    return lines


def render(run: Run, baseline: Run | None = None) -> str:
    opts = run.options
    lines = [
        "# Ceiling benchmark: checkout and trials against a bare and a floor endpoint",
        "",
        f"`make bench` (benchmarks/ceiling.py), {run.started} UTC. Closed loop: {opts['users']} locust "
        f"users (FastHttpUser, no think time), {opts['duration']} s per run after a {opts['warmup']} s "
        "warm-up. Everything runs on this one machine (load generator, gunicorn, PostgreSQL, "
        "localstripe), so every number includes the load tool's own CPU. \"Busy before\" is how much "
        "CPU other work used just before the run (the machine is shared): above ~0.2 cores, "
        "read that row's numbers as low.",
        "",
        "## Machine", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in run.info.items()], "",
        "Servers: `APP_ENV=production` with long random secrets; gunicorn with deploy/gunicorn.conf.py "
        "(as `entrypoint serve`, bound to 127.0.0.1), its workers recycled after about 20,000 requests "
        "as in production; PostgreSQL databases `bench_checkout` / `bench_trials` migrated and seeded, "
        "checkout's events of the population relayed to trials as the worker does; Redis "
        "for the discount-code limits (per-client limit raised for the run: every simulated prospect "
        "comes from 127.0.0.1); localstripe from scratch with checkout's webhook registered. People "
        "sign in with RS256 tokens of the benchmark's identity provider (benchmarks/bench_identity.py: "
        "discovery and JWKS over https), verified as in production; such tokens carry no traffic role, "
        "so every step counts as real traffic and is forwarded to PostHog when forwarding is on.",
        "",
        "The **bare** endpoint parses the JSON and answers. The **floor** is bare Flask plus what any "
        "database-backed request pays: one parameterised SELECT and one INSERT in one transaction on the "
        "same PostgreSQL, same driver and pool (benchmarks/floor_app.py).",
        "",
        "## Targets", "", *targets(run), "",
        "## Throughput and latency", "", *_table(run.runs, baseline.runs if baseline else None), "",
    ]
    if baseline:
        lines += [f"\"before\": the same harness on {baseline.info.get('code served', 'the code before')}, "
                  f"{baseline.started} UTC.", ""]
    if run.steady:
        lines += ["Same suite with gunicorn workers never recycled (`GUNICORN_MAX_REQUESTS=0`): what the "
                  "application costs without the periodic re-import of a worker.", "",
                  *_table(run.steady, baseline.steady if baseline else None), ""]
    if purchase := run.funnel.get("POST /purchases"):
        total = run.funnel[TOTAL]
        lines += ["## Purchase against localstripe", "",
                  "Billing account, card set-up, the Stripe.js confirmation at localstripe, the card, the "
                  f"purchase; back to back with a good card: {purchase.rps:.1f} purchases/s "
                  f"({purchase.rps / run.runs['bare'].rps:.1%} of bare), `POST /purchases` p50 "
                  f"{purchase.p50:.0f} ms, p99 {purchase.p99:.0f} ms ({timing_text(purchase)} ms; "
                  f"db + app at p50 {purchase.timing.get('project_p50', float('nan')):.1f} ms); "
                  f"{total.rps:.0f} requests/s in all, {total.failures} failed of {total.requests}.", ""]
        if alone := run.funnel_alone.get("POST /purchases"):
            lines += ["One buyer at a time (1 user, closed loop): "
                      f"{alone.rps:.1f} purchases/s, `POST /purchases` p50 {alone.p50:.0f} ms, "
                      f"p99 {alone.p99:.0f} ms "
                      f"({timing_text(alone)} ms; db + app at p50 "
                      f"{alone.timing.get('project_p50', float('nan')):.1f} ms).", ""]
    if run.telemetry:
        off = statistics.mean(r.rps for r in run.telemetry[TELEMETRY_OFF])
        lines += ["## Funnel telemetry on `POST /quotes`", "",
                  "Real traffic (signed-in people, so every step is forwarded to PostHog when "
                  "forwarding is on), settings interleaved.", "",
                  "| setting | runs, req/s | mean req/s | vs off |", "|---|---|---|---|"]
        for name, results in run.telemetry.items():
            mean = statistics.mean(r.rps for r in results)
            lines.append(f"| {name} | {', '.join(f'{r.rps:.0f}' for r in results)} | {mean:.0f} | "
                         f"{mean / off - 1:+.1%} |")
        lines.append("")
    if run.memory:
        lines += ["## Memory per gunicorn worker", "",
                  "Resident set size (VmRSS) of each worker after the hot path's requests, workers never "
                  "recycled (`GUNICORN_MAX_REQUESTS=0`, so recycling can not hide growth).", "",
                  "| service | requests | MB per worker |", "|---|---|---|"]
        for service, readings in run.memory.items():
            lines += [f"| {service} | {int(n):,} | {', '.join(f'{mb:.1f}' for mb in mbs)} |"
                      for n, mbs in readings.items()]
        lines.append("")
    if run.flags:
        lines += ["## Feature flags", "", "`flags.client.Flags.evaluate(feature, attributes)` with the "
                  "payload cached, attributes `{\"id\": \"1\", \"namespace_id\": \"100\", "
                  "\"plan\": \"premium\", \"new_customer\": true}`.", "",
                  "| feature | µs per call |", "|---|---|",
                  *[f"| {k} | {v:.1f} |" for k, v in run.flags.items()], ""]
    if pros := run.prospects.get(TOTAL):
        lines += [f"## {opts['prospect_users']} concurrent prospects, {opts['prospect_time']} s", "",
                  "loadtests/locustfile.py `Prospect` with its defaults (think time 1-3 s, 10% declined "
                  "cards, 15% 3-D Secure, 30% try SMB2026): "
                  f"{pros.requests} requests, {pros.failures} failed, {pros.rps:.1f} req/s.", "",
                  "| request | count | failed | p50 ms | p99 ms |", "|---|---|---|---|---|",
                  *[f"| {k} | {r.requests} | {r.failures} | {r.p50:.0f} | {r.p99:.0f} |"
                    for k, r in sorted(run.prospects.items()) if k != TOTAL], ""]
    if NOTES.exists():
        lines += [NOTES.read_text().rstrip(), ""]
    return "\n".join(lines)
