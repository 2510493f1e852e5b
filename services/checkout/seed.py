"""Seed checkout's demo users, namespaces, a Premium subscription and discount campaigns.

Idempotent: running it again changes nothing that exists. The catalog itself
is the versioned data file, not rows.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from services.checkout.adapters.models import (
    BillingAccount,
    DiscountCampaign,
    DiscountCode,
    Membership,
    Namespace,
    Subscription,
    User,
)
from services.checkout.domain.pricing import add_months
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.usecases.campaigns import unique_codes
from services.common.clock import Clock, SystemClock
from services.common.db import make_engine

DEMO_FILE = Path(__file__).resolve().parent / "data" / "demo.toml"


def load_demo(path: Path = DEMO_FILE) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def seed(session: Session, clock: Clock, data: dict[str, Any] | None = None) -> None:
    data = data or load_demo()
    now = clock.now()
    for user in data["users"]:
        if session.get(User, user["id"]) is None:
            session.add(User(id=user["id"], email=user["email"], name=user["name"]))
    session.flush()
    for ns in data["namespaces"]:
        if session.get(Namespace, ns["id"]) is not None:
            continue
        session.add(Namespace(id=ns["id"], path=ns["path"], name=ns["name"], kind=ns["kind"],
                              parent_id=ns.get("parent"), plan=ns["plan"], created_at=now))
        session.flush()
        for member in ns["members"]:
            session.add(Membership(namespace_id=ns["id"], user_id=member["user"],
                                   role=member["role"], billable=member.get("billable", True)))
    session.flush()
    account_data = data.get("billing_account")
    account = None
    if account_data:
        account = session.query(BillingAccount).filter_by(user_id=account_data["user"]).one_or_none()
        if account is None:
            fields = {k: v for k, v in account_data.items() if k != "user"}
            account = BillingAccount(user_id=account_data["user"], created_at=now, updated_at=now,
                                     **fields)
            session.add(account)
            session.flush()
    for ns in data["namespaces"]:
        sub = ns.get("subscription")
        if not sub or account is None:
            continue
        if session.query(Subscription).filter_by(namespace_id=ns["id"]).first() is not None:
            continue
        start = (now - timedelta(days=sub["started_days_ago"])).date()
        session.add(Subscription(
            namespace_id=ns["id"], billing_account_id=account.id, plan=sub["plan"],
            seats=sub["seats"], term_start=start, term_end=add_months(start, 12), auto_renew=True,
            status=SubscriptionStatus.ACTIVE, created_at=now, updated_at=now))
    for campaign in data.get("campaigns", []):
        _seed_campaign(session, campaign, now)
    session.commit()


def seed_database(url: str) -> None:
    """Seed the demo data into checkout's database at `url` (idempotent)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            seed(session, SystemClock())
    finally:
        engine.dispose()


def _seed_campaign(session: Session, spec: dict[str, Any], now: datetime) -> None:
    if session.query(DiscountCampaign).filter_by(name=spec["name"]).first() is not None:
        return
    fields = {k: v for k, v in spec.items() if k not in ("code", "code_count", "code_prefix")}
    campaign = DiscountCampaign(status="active", created_by=0, created_at=now, updated_at=now,
                                redeemed_count=0, **fields)
    session.add(campaign)
    session.flush()
    if spec["kind"] == "shared":
        session.add(DiscountCode(campaign_id=campaign.id, code=spec["code"], redeemed_count=0))
        return
    for code in unique_codes(spec["code_count"], spec.get("code_prefix", "")):
        session.add(DiscountCode(campaign_id=campaign.id, code=code, max_redemptions=1,
                                 redeemed_count=0))
