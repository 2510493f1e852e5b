"""Synthetic people and groups for load tests (and, with role `demo`, for demo
traffic), made the way an outside tester makes them: over HTTP.

    python -m loadtests.population --count 500 --kind free      # prospects: Owners of Free groups
    python -m loadtests.population --count 50 --kind premium    # trial Owners: Premium groups
    python -m loadtests.population --count 5 --kind analyst     # growth dashboard readers (tokens only)

Each group and its Owner reach checkout as the platform's system hooks
(loadtests/platform.py: group_create, user_add_to_group); a Premium group is
then bought the way a buyer buys it (billing account, a card at localstripe,
POST /purchases), as synthetic traffic. User id and group id are the same
number, far from the demo data. Provisioning is idempotent: a hook sent again
is a duplicate and a Premium group is not bought twice. Tokens are signed with
AUTH_SECRET (the development secret unless set) and carry `role`, so the
services honour `X-Traffic-Source: <role>`.

CHECKOUT_URL and STRIPE_URL (or --checkout-url, --stripe-url) say where the
stack is; the defaults are `make run`'s. The result goes to
var/loadtest/population.json (one list per kind, with a token each). Prospects
are always groups nobody had yet (made after the last one an earlier run
made), so each can still buy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import requests

from loadtests import platform, stripejs
from loadtests.knobs import GOOD_CARD, local_url, var_dir
from loadtests.tokens import auth_secret, platform_token, sign

Kind = Literal["free", "premium"]
KINDS: tuple[Kind, ...] = ("free", "premium")
# Far from the demo data (ids < 1000) and from the tests' buyers (1000+).
FIRST_IDS: dict[str, int] = {"free": 1_000_000, "premium": 2_000_000, "analyst": 5_000_000}
# The growth dashboard (experiments/dashboard.py) admits tokens with this role.
GROWTH_ROLE = "growth"
# Provisioning purchases are synthetic whatever the population's role: they are
# the set-up, not what demo traffic wants the experiments to see.
SETUP_ROLE = "synthetic"
RANGE_SIZE = 1_000_000
POPULATION_FILE = var_dir() / "loadtest" / "population.json"
PREMIUM_SEATS = 5
WORKERS = 8  # groups provisioned at once


class PopulationError(RuntimeError):
    """The stack refused to make a group, a member or a purchase."""


@dataclass(frozen=True)
class Stack:
    """The running services a population is made in, and the secret its tokens are signed with."""

    checkout_url: str
    stripe_url: str
    secret: str
    trials_url: str = "http://127.0.0.1:8002"

    @classmethod
    def from_env(cls) -> Stack:
        env = os.environ.get
        stripe = env("STRIPE_URL") or env("STRIPE_API_BASE") or local_url("localstripe")
        return cls(checkout_url=(env("CHECKOUT_URL") or local_url("checkout")).rstrip("/"),
                   stripe_url=stripe.rstrip("/"), secret=auth_secret(),
                   trials_url=(env("TRIALS_URL") or local_url("trials")).rstrip("/"))


@dataclass(frozen=True)
class SyntheticUser:
    """An Owner of one top-level group (user id and namespace id are the same
    number), or a growth analyst (kind "analyst", namespace_id 0: a token only)."""

    user_id: int
    email: str
    namespace_id: int
    kind: str
    token: str


def _email(role: str, user_id: int) -> str:
    return f"{role}-{user_id}@loadtest.invalid"


def provision(stack: Stack, *, first_id: int, count: int, kind: Kind, role: str = "synthetic",
              token_ttl: timedelta = timedelta(days=2)) -> list[SyntheticUser]:
    """Owners of `count` groups with ids first_id..first_id+count-1 (Free groups,
    or Premium ones with an active subscription), and a token per Owner carrying
    `role`. Groups that exist are left as they are."""
    return [user for user, _ in _provision(stack, range(first_id, first_id + count), kind, role, token_ttl)]


def fresh(stack: Stack, count: int, *, kind: Kind, role: str = "synthetic", first_id: int | None = None,
          token_ttl: timedelta = timedelta(days=2)) -> list[SyntheticUser]:
    """`count` Owners of groups nobody had before: made after the last group an
    earlier run made, so none was bought or has a trial yet."""
    first = FIRST_IDS[kind] if first_id is None else first_id
    start, people = _first_unused(stack, first), list[SyntheticUser]()
    while len(people) < count:
        ids = range(start, start + count - len(people))
        if ids.stop > first + RANGE_SIZE:
            raise PopulationError(f"the id range from {first} is used up")
        people += [user for user, new in _provision(stack, ids, kind, role, token_ttl) if new]
        start = ids.stop
    return people


def await_trials(stack: Stack, owners: list[SyntheticUser], *, role: str = "synthetic",
                 timeout: float = 30.0) -> None:
    """Wait until trials has heard of each Owner made (a Premium one as Premium):
    trials answers eligibility from its own read model of checkout's namespaces,
    which checkout's worker relays to it within seconds (docs/services/trials.md)."""
    deadline = time.monotonic() + timeout
    for owner in owners:
        headers = {"Authorization": f"Bearer {owner.token}", platform.TRAFFIC_HEADER: role}
        while True:
            response = _http().get(f"{stack.trials_url}/namespaces/{owner.namespace_id}/trials/eligibility",
                                   headers=headers, timeout=10)
            verdicts = {v["kind"]: v for v in response.json()} if response.status_code == 200 else {}
            if (owner.kind != "premium" and verdicts) or verdicts.get("duo_pro", {}).get("eligible"):
                break
            if time.monotonic() > deadline:
                raise PopulationError(f"trials has not heard of namespace {owner.namespace_id} after "
                                      f"{timeout:.0f} s: is checkout's worker relaying its events?")
            time.sleep(0.1)


def prospects(stack: Stack, count: int, *, role: str = "synthetic",
              first_id: int = FIRST_IDS["free"]) -> list[SyntheticUser]:
    """`count` Free-group Owners that can still buy."""
    return fresh(stack, count, kind="free", role=role, first_id=first_id)


def analysts(stack: Stack, count: int, *, role: str = "synthetic", first_id: int = FIRST_IDS["analyst"],
             token_ttl: timedelta = timedelta(days=2)) -> list[SyntheticUser]:
    """Growth analysts: tokens only (the dashboard reads no user rows), with the
    growth role besides `role`."""
    return [SyntheticUser(user_id=i, email=_email(role, i), namespace_id=0, kind="analyst",
                          token=sign(stack.secret, i, _email(role, i), (role, GROWTH_ROLE), token_ttl))
            for i in range(first_id, first_id + count)]


# --- one group each ------------------------------------------------------------------
_local = threading.local()


def _http() -> requests.Session:
    """One connection pool per provisioning thread (a Session is not shared across threads)."""
    if not hasattr(_local, "http"):
        _local.http = requests.Session()
    return _local.http  # type: ignore[no-any-return]


def _provision(stack: Stack, ids: range, kind: Kind, role: str,
               token_ttl: timedelta) -> list[tuple[SyntheticUser, bool]]:
    """(Owner, whether the group is new) for each id, WORKERS at a time."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if len(ids) and ids.start < 1:
        raise ValueError("ids start at 1")
    hooks_token = platform_token(stack.secret, role)

    def one(user_id: int) -> tuple[SyntheticUser, bool]:
        new = _group_with_owner(stack, hooks_token, role, user_id)
        if kind == "premium":
            _buy_premium(stack, role, user_id)
        email = _email(role, user_id)
        return SyntheticUser(user_id=user_id, email=email, namespace_id=user_id, kind=kind,
                             token=sign(stack.secret, user_id, email, (role,), token_ttl)), new

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(one, ids))


def _group_with_owner(stack: Stack, token: str, role: str, user_id: int) -> bool:
    """The platform's hooks for a new top-level group and its Owner; whether the group is new."""
    path, email = f"{role}-group-{user_id}", _email(role, user_id)
    hooks = [(platform.group_create(user_id, path, f"{role} group {user_id}"), "group_create"),
             (platform.user_add_to_group(user_id, path, user_id, email, f"{role} owner {user_id}"),
              "user_add_to_group")]
    answers = []
    for hook, event in hooks:
        try:
            answers.append(platform.send(_http(), stack.checkout_url, token, role, hook,
                                         platform.hook_id(role, event, user_id)))
        except platform.HookRefused as exc:
            raise PopulationError(f"checkout refused {exc}{_hint(exc.status)}") from exc
    return "directory.group_created" in answers[0]["events"]


def _buy_premium(stack: Stack, role: str, user_id: int) -> None:
    """Premium for the group, bought as a buyer buys it: billing account, a card
    set up at (local)Stripe, then the purchase. Nothing if it has a paid plan."""
    http, email = _http(), _email(role, user_id)
    token = sign(stack.secret, user_id, email, (SETUP_ROLE,), timedelta(minutes=10))
    headers = {"Authorization": f"Bearer {token}", platform.TRAFFIC_HEADER: SETUP_ROLE}

    def call(method: str, path: str, ok: tuple[int, ...], **kwargs: Any) -> dict[str, Any]:
        response = http.request(method, f"{stack.checkout_url}{path}", headers={**headers, **kwargs.pop(
            "headers", {})}, timeout=60, **kwargs)
        if response.status_code not in ok:
            status = response.status_code
            raise PopulationError(f"buying Premium for group {user_id}: {method} {path} answered HTTP "
                                  f"{status} {response.text[:200]}{_hint(status)}")
        return response.json()  # type: ignore[no-any-return]

    if call("GET", f"/namespaces/{user_id}", (200,))["plan"] != "free":
        return
    call("PUT", "/billing-account", (200,), json={
        "company": f"{role} co {user_id}", "email": email, "country": "US", "address_line1": "1 Load Street",
        "city": "San Francisco", "state": "CA", "postal_code": "94105"})
    setup = call("POST", "/billing-account/card-setup", (201,))
    if not stripejs.confirm_card_setup(http, stack.stripe_url, setup["client_secret"], GOOD_CARD,
                                       setup["publishable_key"]):
        raise PopulationError(f"localstripe did not set up the card for group {user_id}")
    call("POST", "/billing-account/cards", (200, 201), json={"setup_intent_id": setup["setup_intent_id"]})
    bought = call("POST", "/purchases", (201,), headers={"Idempotency-Key": str(uuid.uuid4())},
                  json={"namespace_id": user_id, "plan": "premium", "seats": PREMIUM_SEATS})
    if bought.get("status") != "completed":
        raise PopulationError(f"Premium for group {user_id}: {bought.get('status')}")


def _first_unused(stack: Stack, first_id: int) -> int:
    """The first id from `first_id` that has no group yet. Groups are made in runs
    of consecutive ids, so doubling, then halving, finds it in a few requests."""
    http = _http()

    def exists(group_id: int) -> bool:
        token = sign(stack.secret, group_id, f"probe-{group_id}@loadtest.invalid", (), timedelta(minutes=5))
        response = http.get(f"{stack.checkout_url}/namespaces/{group_id}", timeout=30,
                            headers={"Authorization": f"Bearer {token}"})
        if response.status_code not in (200, 404):
            raise PopulationError(f"GET /namespaces/{group_id} answered HTTP {response.status_code}"
                                  + _hint(response.status_code))
        return response.status_code == 200

    if not exists(first_id):
        return first_id
    low, step = first_id, 1  # low has a group
    while exists(low + step):
        low += step
        step *= 2
        if step > RANGE_SIZE:
            raise PopulationError(f"the id range from {first_id} is used up")
    high = low + step  # high has none
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if exists(middle) else (low, middle)
    return high


def _hint(status: int) -> str:
    return "; is AUTH_SECRET the stack's?" if status == 401 else ""


# --- population.json -----------------------------------------------------------------
def write(path: Path, population: dict[str, list[SyntheticUser]], **meta: Any) -> None:
    """Write population.json: {"meta": ..., "free": [...], "premium": [...], "analyst": [...]}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"meta": meta, **{kind: [asdict(u) for u in users] for kind, users in population.items()}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1))
    tmp.replace(path)


def read(path: Path = POPULATION_FILE) -> dict[str, list[dict[str, Any]]]:
    data = json.loads(path.read_text())
    return {kind: list(data.get(kind, [])) for kind in (*KINDS, "analyst") if kind in data}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.population", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, required=True, help="how many Owners and groups")
    parser.add_argument("--kind", choices=(*KINDS, "analyst"), required=True,
                        help="analyst: growth-dashboard tokens only, no groups")
    parser.add_argument("--first-id", type=int,
                        help="first id (default: 1,000,000 free, 2,000,000 premium, 5,000,000 analyst)")
    parser.add_argument("--role", default="synthetic", help="role the tokens carry (synthetic, demo)")
    parser.add_argument("--checkout-url", help="default: CHECKOUT_URL or http://127.0.0.1:8001")
    parser.add_argument("--stripe-url", help="default: STRIPE_URL or http://127.0.0.1:8420")
    parser.add_argument("--out", type=Path, default=POPULATION_FILE)
    args = parser.parse_args(argv)
    stack = Stack.from_env()
    stack = Stack(checkout_url=(args.checkout_url or stack.checkout_url).rstrip("/"),
                  stripe_url=(args.stripe_url or stack.stripe_url).rstrip("/"), secret=stack.secret)
    first_id = args.first_id or FIRST_IDS[args.kind]
    try:
        if args.kind == "free":
            users = prospects(stack, args.count, role=args.role, first_id=first_id)
        elif args.kind == "analyst":
            users = analysts(stack, args.count, role=args.role, first_id=first_id)
        else:
            users = provision(stack, first_id=first_id, count=args.count, kind="premium", role=args.role)
    except (PopulationError, requests.RequestException) as exc:
        print(f"population: {exc}", file=sys.stderr)
        return 2
    current: dict[str, list[SyntheticUser]] = {}
    if args.out.exists():  # keep the other kinds' lists
        current = {k: [SyntheticUser(**u) for u in v] for k, v in read(args.out).items()}
    current[args.kind] = users
    write(args.out, current, role=args.role, checkout=stack.checkout_url)
    print(f"{len(users)} {args.kind} Owners (ids {users[0].user_id if users else '-'}..."
          f"{users[-1].user_id if users else '-'}) with role {args.role!r} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
