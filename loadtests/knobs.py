"""What the load profiles read from the environment, and the population pools.
Plain Python (no locust import), so the tests can check it; the variables are
documented in loadtests/locustfile.py and docs/loadtests.md."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# `make run`'s ports, and the settings that move them. Load tests are outside
# clients (they import no service code), so they read the same environment
# contract the stack documents (docs/configuration.md) rather than its config module.
STACK_PORTS = {"checkout": 8001, "trials": 8002, "localstripe": 8420}


def local_url(name: str) -> str:
    """Where this machine's stack serves `name`: <NAME>_PORT, else its port + PORT_OFFSET."""
    explicit = os.environ.get(f"{name.upper()}_PORT")
    port = int(explicit) if explicit else STACK_PORTS[name] + int(os.environ.get("PORT_OFFSET") or 0)
    return f"http://127.0.0.1:{port}"


def var_dir() -> Path:
    """Where `make run` keeps its state, and load tests their output: VAR_DIR, else var/."""
    return Path(os.environ.get("VAR_DIR") or ROOT / "var").absolute()


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def share(name: str, default: float) -> float:
    value = float(env(name, str(default)))
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1, not {value}")
    return value


def think_time() -> tuple[float, float]:
    """LOADTEST_WAIT: "1-3" (between 1 and 3 s) or "2" (always 2 s)."""
    low, _, high = env("LOADTEST_WAIT", "1-3").partition("-")
    return float(low), float(high or low)


# `make run`'s, wherever its ports are (see services/common/config.py).
CHECKOUT_URL = env("CHECKOUT_URL", local_url("checkout")).rstrip("/")
TRIALS_URL = env("TRIALS_URL", local_url("trials")).rstrip("/")
STRIPE_URL = env("STRIPE_URL", local_url("localstripe")).rstrip("/")
EXPERIMENTS_URL = os.environ.get("EXPERIMENTS_URL", "").rstrip("/")
POPULATION = Path(env("LOADTEST_POPULATION", str(var_dir() / "loadtest" / "population.json")))
DECLINED_SHARE = share("LOADTEST_DECLINED_SHARE", 0.10)
THREE_DS_SHARE = share("LOADTEST_3DS_SHARE", 0.15)
CODE_SHARE = share("LOADTEST_CODE_SHARE", 0.30)
TRIAL_START_SHARE = share("LOADTEST_TRIAL_START_SHARE", 0.20)
DISCOUNT_CODE = env("LOADTEST_DISCOUNT_CODE", "SMB2026")
WEIGHTS = {"Prospect": int(env("PROSPECT_WEIGHT", "6")), "TrialOwner": int(env("TRIAL_OWNER_WEIGHT", "3")),
           "GrowthAnalyst": int(env("ANALYST_WEIGHT", "1"))}
TRAFFIC = {"X-Traffic-Source": "synthetic"}

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"  # declined when the SetupIntent is confirmed
THREE_DS_CARD = "4000002760003184"  # localstripe asks for 3-D Secure at set-up and at every payment
# Answers of POST /purchases with a code that say "not for you", not "broken".
CODE_REJECTIONS = frozenset({
    "code_exhausted", "already_redeemed", "not_a_new_customer", "too_many_seats", "too_few_seats",
    "plan_not_eligible", "campaign_paused", "campaign_ended", "code_expired", "code_not_started",
    "code_unknown", "card_payment_only", "below_minimum_amount"})


class Pool:
    """Entries of one kind from population.json, each given out once.

    With LOADTEST_PARTITION=i/n (one per locust process), process i takes every
    n-th entry from the i-th, so processes never share one either."""

    def __init__(self, kind: str, path: Path | None = None) -> None:
        self.kind = kind
        self.path = path
        self._items: Iterator[dict[str, Any]] | None = None

    def _load(self) -> Iterator[dict[str, Any]]:
        index, _, total = env("LOADTEST_PARTITION", "0/1").partition("/")
        people = json.loads((self.path or POPULATION).read_text()).get(self.kind, [])
        return iter(people[int(index)::int(total or 1)])

    def take(self) -> dict[str, Any] | None:
        if self._items is None:
            self._items = self._load()
        return next(self._items, None)


PROSPECTS, OWNERS, ANALYSTS = Pool("free"), Pool("premium"), Pool("analyst")


def headers(person: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {person['token']}", **TRAFFIC}


def problem_code(body: Any) -> str | None:
    """The problem code of an answer (ours: {"code"}; Stripe's: {"error": {"code"}})."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    return body.get("code") or (error.get("code") if isinstance(error, dict) else None)


def experiment_keys() -> list[str]:
    """EXPERIMENT_KEYS, or the experiments in experiments/payload.json."""
    if keys := os.environ.get("EXPERIMENT_KEYS"):
        return [k.strip() for k in keys.split(",") if k.strip()]
    payload = json.loads((ROOT / "experiments" / "payload.json").read_text())
    return sorted({rule["key"] for feature in payload.get("features", {}).values()
                   for rule in feature.get("rules", []) if "key" in rule})
