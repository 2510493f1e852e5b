"""Seed checkout's demo data: the platform's groups and members (through the
directory use case, as the platform's system hooks bring them), a billing
account, a Premium subscription and discount campaigns.

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
    ExposureRow,
    FunnelEventRow,
    Namespace,
    OutboxMessage,
    Subscription,
)
from services.checkout.domain.directory import ACCESS_LEVELS, GROUP_CREATE, MEMBER_ADD
from services.checkout.domain.pricing import add_months
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.usecases import directory, snapshot
from services.checkout.usecases.campaigns import unique_codes
from services.common.clock import SystemClock
from services.common.config import Settings
from services.common.service import ServiceContext, build_context

DEMO_FILE = Path(__file__).resolve().parent / "data" / "demo.toml"


def load_demo(path: Path = DEMO_FILE) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def demo_hooks(data: dict[str, Any], at: datetime) -> list[dict[str, Any]]:
    """The demo's groups and members as the platform's system hooks say them."""
    users = {u["id"]: u for u in data["users"]}
    hooks: list[dict[str, Any]] = []
    for ns in data["namespaces"]:
        hooks.append({"event_name": GROUP_CREATE, "created_at": at, "updated_at": at, "group_id": ns["id"],
                      "name": ns["name"], "path": ns["path"].rsplit("/", 1)[-1], "full_path": ns["path"],
                      "parent_id": ns.get("parent")})
        hooks += [{"event_name": MEMBER_ADD, "created_at": at, "updated_at": at, "group_id": ns["id"],
                   "group_name": ns["name"], "group_path": ns["path"], "user_id": m["user"],
                   "user_name": users[m["user"]]["name"], "user_email": users[m["user"]]["email"],
                   "group_access": ACCESS_LEVELS[m["role"]]} for m in ns["members"]]
    return hooks


def seed(ctx: ServiceContext, data: dict[str, Any] | None = None) -> None:
    data = data or load_demo()
    now = ctx.clock.now()
    for hook in demo_hooks(data, now):
        # The id leaves the time out: seeding again is a duplicate, not a newer change.
        directory.receive(ctx.uow(), directory.hook_id({k: v for k, v in hook.items()
                                                        if k not in ("created_at", "updated_at")}), hook)
    with ctx.uow() as uow:
        _seed_billing(uow.session, data, now)
        for campaign in data.get("campaigns", []):
            _seed_campaign(uow.session, campaign, now)
        # The seeded plans are set with no purchase (no subscription.* event): the
        # namespaces' facts go out as snapshots, for trials' read model.
        snapshot.publish(uow)
        uow.commit()


def seed_database(url: str) -> None:
    """Seed the demo data into checkout's database at `url` (idempotent)."""
    settings = Settings.from_env("checkout").with_overrides(database_url=url)
    ctx = build_context("checkout", settings, SystemClock(), OutboxMessage, FunnelEventRow, ExposureRow)
    try:
        seed(ctx)
    finally:
        ctx.close()


def _seed_billing(session: Session, data: dict[str, Any], now: datetime) -> None:
    """A billing account, and the subscriptions it pays for (bought before the demo starts)."""
    account_data = data.get("billing_account")
    if not account_data:
        return
    account = session.query(BillingAccount).filter_by(user_id=account_data["user"]).one_or_none()
    if account is None:
        fields = {k: v for k, v in account_data.items() if k != "user"}
        account = BillingAccount(user_id=account_data["user"], created_at=now, updated_at=now, **fields)
        session.add(account)
        session.flush()
    for ns in data["namespaces"]:
        sub = ns.get("subscription")
        if not sub or session.query(Subscription).filter_by(namespace_id=ns["id"]).first() is not None:
            continue
        start = (now - timedelta(days=sub["started_days_ago"])).date()
        session.add(Subscription(
            namespace_id=ns["id"], billing_account_id=account.id, plan=sub["plan"],
            seats=sub["seats"], term_start=start, term_end=add_months(start, 12), auto_renew=True,
            status=SubscriptionStatus.ACTIVE, created_at=now, updated_at=now))
        namespace = session.get(Namespace, ns["id"])
        assert namespace is not None, f"demo namespace {ns['id']} was not created"
        namespace.plan = sub["plan"]  # as a completed purchase sets it


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
