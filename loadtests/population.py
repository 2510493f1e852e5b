"""Synthetic users and namespaces for load tests (and, with role `demo`, for demo traffic).

    python -m loadtests.population --count 500 --kind free      # prospects: Owners of Free groups
    python -m loadtests.population --count 50 --kind premium    # trial Owners: Premium groups
    python -m loadtests.population --count 5 --kind analyst     # growth dashboard readers (tokens only)

Rows are written straight into checkout's database (`Settings.from_env("checkout")`,
so the same database `make run` uses unless CHECKOUT_DATABASE_URL says otherwise),
in an id range far from the demo data. User id and namespace id are the same
number. Provisioning is idempotent: ids that exist are left alone, so running
it twice with the same range adds nothing. Tokens carry `role` so the services
honour `X-Traffic-Source: <role>`.

The result goes to var/loadtest/population.json (one list per kind, with a
signed token each). A Free namespace is used up once a prospect bought it, so
the file lists only prospects that can still buy.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import (
    BillingAccount,
    Membership,
    Namespace,
    Order,
    Subscription,
    User,
)
from services.checkout.domain.pricing import add_months
from services.common.auth import issue_token
from services.common.clock import Clock, SystemClock
from services.common.config import Settings, var_dir
from services.common.db import make_engine

Kind = Literal["free", "premium"]
KINDS: tuple[Kind, ...] = ("free", "premium")
# Far from the demo data (ids < 1000) and from the tests' buyers (1000+).
FIRST_IDS: dict[str, int] = {"free": 1_000_000, "premium": 2_000_000, "analyst": 5_000_000}
# The growth dashboard (experiments/dashboard.py) admits tokens with this role.
GROWTH_ROLE = "growth"
RANGE_SIZE = 1_000_000
POPULATION_FILE = var_dir() / "loadtest" / "population.json"
PREMIUM_SEATS = 5
BATCH = 1000


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


def provision(settings: Settings, *, first_id: int, count: int, kind: Kind, role: str = "synthetic",
              clock: Clock | None = None, token_ttl: timedelta = timedelta(days=2)) -> list[SyntheticUser]:
    """Owners of `count` groups with ids first_id..first_id+count-1 in checkout's
    database (Free groups, or Premium ones with an active subscription and a
    billing account), and a token per Owner carrying `role`. Existing ids are
    left as they are."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if count < 0 or first_id < 1:
        raise ValueError("count must be >= 0 and first_id >= 1")
    now = (clock or SystemClock()).now()
    ids = range(first_id, first_id + count)
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            for start in range(0, count, BATCH):
                _provision_batch(session, ids[start:start + BATCH], kind, role, now)
                session.commit()
    finally:
        engine.dispose()
    return [SyntheticUser(user_id=i, email=_email(role, i), namespace_id=i, kind=kind,
                          token=issue_token(settings.auth_secret, i, _email(role, i), (role,), now=now,
                                            ttl=token_ttl))
            for i in ids]


def _provision_batch(session: Session, ids: range, kind: Kind, role: str, now: datetime) -> None:
    existing = set(session.scalars(select(User.id).where(User.id.in_(ids))))
    taken = set(session.scalars(select(Namespace.id).where(Namespace.id.in_(ids))))
    clash = existing ^ taken
    if clash:  # half-provisioned ids would be a different population; say so, never guess
        raise RuntimeError(f"ids {sorted(clash)[:5]} have a user or a namespace but not both")
    new = [i for i in ids if i not in existing]
    if not new:
        return
    plan = "premium" if kind == "premium" else "free"
    session.add_all(User(id=i, email=_email(role, i), name=f"{role} owner {i}") for i in new)
    session.add_all(Namespace(id=i, path=f"{role}-{kind}-{i}", name=f"{role} group {i}", kind="group",
                              plan=plan, created_at=now) for i in new)
    session.flush()
    session.add_all(Membership(namespace_id=i, user_id=i, role="owner", billable=True) for i in new)
    if kind == "free":
        return
    # As services/checkout/seed.py seeds globex: an account and a term that started a while ago.
    accounts = [BillingAccount(user_id=i, company=f"{role} co {i}", email=_email(role, i), country="US",
                               address_line1="1 Load Street", city="San Francisco", state="CA",
                               postal_code="94105", created_at=now, updated_at=now) for i in new]
    session.add_all(accounts)
    session.flush()
    start = (now - timedelta(days=30)).date()
    session.add_all(Subscription(namespace_id=a.user_id, billing_account_id=a.id, plan="premium",
                                 seats=PREMIUM_SEATS, term_start=start, term_end=add_months(start, 12),
                                 auto_renew=True, status="active", created_at=now, updated_at=now)
                    for a in accounts)


def analysts(settings: Settings, count: int, *, role: str = "synthetic",
             first_id: int = FIRST_IDS["analyst"], token_ttl: timedelta = timedelta(days=2)
             ) -> list[SyntheticUser]:
    """Growth analysts: tokens only (the dashboard reads no user rows), with the
    growth role besides `role`."""
    now = SystemClock().now()
    return [SyntheticUser(user_id=i, email=_email(role, i), namespace_id=0, kind="analyst",
                          token=issue_token(settings.auth_secret, i, _email(role, i), (role, GROWTH_ROLE),
                                            now=now, ttl=token_ttl))
            for i in range(first_id, first_id + count)]


def still_free(settings: Settings, ids: Iterable[int]) -> set[int]:
    """The Free namespaces among `ids` that no purchase has touched yet (a prospect can buy them)."""
    wanted = list(ids)
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            free: set[int] = set()
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start:start + BATCH]
                ordered = select(Order.namespace_id).where(Order.namespace_id.in_(chunk))
                free.update(session.scalars(select(Namespace.id).where(
                    Namespace.id.in_(chunk), Namespace.plan == "free", Namespace.id.not_in(ordered))))
            return free
    finally:
        engine.dispose()


def used_count(settings: Settings, kind: Kind, first_id: int | None = None) -> int:
    """How many namespaces of this kind's range are no longer usable by a prospect."""
    first = FIRST_IDS[kind] if first_id is None else first_id
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            last = first + RANGE_SIZE - 1
            in_range = Namespace.id.between(first, last)
            touched = select(Order.namespace_id).where(Order.namespace_id.between(first, last))
            return session.scalar(select(func.count()).select_from(Namespace).where(
                in_range, (Namespace.plan != "free") | Namespace.id.in_(touched))) or 0
    finally:
        engine.dispose()


def prospects(settings: Settings, count: int, *, role: str = "synthetic",
              first_id: int = FIRST_IDS["free"]) -> list[SyntheticUser]:
    """`count` Free-group Owners that can still buy: provisions past the ones
    earlier runs used up, so every run starts from fresh prospects."""
    used = used_count(settings, "free", first_id)
    people = provision(settings, first_id=first_id, count=used + count, kind="free", role=role)
    usable = still_free(settings, (p.namespace_id for p in people))
    return [p for p in people if p.namespace_id in usable][:count]


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
    parser.add_argument("--count", type=int, required=True, help="how many Owners and namespaces")
    parser.add_argument("--kind", choices=(*KINDS, "analyst"), required=True,
                        help="analyst: growth-dashboard tokens only, no rows")
    parser.add_argument("--first-id", type=int,
                        help="first id (default: 1,000,000 free, 2,000,000 premium, 5,000,000 analyst)")
    parser.add_argument("--role", default="synthetic", help="role the tokens carry (synthetic, demo)")
    parser.add_argument("--out", type=Path, default=POPULATION_FILE)
    args = parser.parse_args(argv)
    settings = Settings.from_env("checkout")
    first_id = args.first_id or FIRST_IDS[args.kind]
    if args.kind == "free":
        users = prospects(settings, args.count, role=args.role, first_id=first_id)
    elif args.kind == "analyst":
        users = analysts(settings, args.count, role=args.role, first_id=first_id)
    else:
        users = provision(settings, first_id=first_id, count=args.count, kind="premium", role=args.role)
    current: dict[str, list[SyntheticUser]] = {}
    if args.out.exists():  # keep the other kind's list
        current = {k: [SyntheticUser(**u) for u in v] for k, v in read(args.out).items()}
    current[args.kind] = users
    write(args.out, current, role=args.role, database=_safe_url(settings.database_url))
    print(f"{len(users)} {args.kind} Owners (ids {users[0].user_id if users else '-'}..."
          f"{users[-1].user_id if users else '-'}) with role {args.role!r} -> {args.out}")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
