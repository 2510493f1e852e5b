"""A year of 1,000 subscriptions, day by day, against localstripe: every
reminder's stated amount must equal what the renewal then charges, unless the
renewal names what changed in between. Some subscriptions grow mid-term (seats,
a Duo add-on, storage) through the real expansion purchase: its receipt states
the renewal's new price, and the renewal charges exactly that. Prints the figure."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from identity.auth import Principal
from services.checkout.adapters.models import (
    BillingAccount,
    Membership,
    Namespace,
    Order,
    Renewal,
    Subscription,
    SubscriptionAddOn,
    User,
)
from services.checkout.api.purchases import settled_response
from services.checkout.app import create_app
from services.checkout.domain.expansions import Expansion, Kind
from services.checkout.domain.pricing import add_months
from services.checkout.seed import seed
from services.checkout.usecases import idempotency, purchases, renewals
from services.checkout.usecases.expansions import ExpansionRequest
from services.checkout.usecases.settlement import PurchaseRefused
from services.common.clock import FixedClock
from services.common.errors import DomainError
from tests.conftest import make_settings
from tests.e2e.helpers import provision_buyers
from tests.support import LocalStripe

pytestmark = pytest.mark.e2e
# CI simulates 1,000 (RENEWAL_SIM_COUNT=1000, about 5 minutes: every charge goes
# through localstripe); a developer's `make test` 400, for speed.
COUNT = int(os.environ.get("RENEWAL_SIM_COUNT", "400"))


@pytest.fixture
def own_localstripe() -> Iterator[LocalStripe]:
    """A localstripe of its own: thousands of objects would slow and crowd the shared one."""
    server = LocalStripe()
    yield server
    server.stop()


def test_a_year_of_renewals_charges_what_the_reminders_said(backend: str, checkout_db_url: str,
                                                            own_localstripe: LocalStripe, clock: FixedClock) -> None:
    if backend != "sqlite":
        pytest.skip("one simulated year is enough: it runs on SQLite")
    localstripe = own_localstripe
    stripe_app = create_app(make_settings("checkout", checkout_db_url, localstripe.url), clock)
    seed(stripe_app.extensions["checkout"].ctx)
    rng = random.Random(20261121)
    app = stripe_app.extensions["checkout"]
    today = clock.now().date()
    good = provision_buyers(stripe_app, localstripe.url, int(COUNT * 0.9), first_id=10_000)
    failing = provision_buyers(stripe_app, localstripe.url, COUNT - len(good), first_id=20_000,
                               card="4000000000000341")
    growth: dict[date, list[int]] = {}
    expansions_due: dict[date, list[tuple[int, Expansion]]] = {}
    with Session(app.ctx.engine) as s:
        for user in good + failing:
            plan = rng.choice(["premium", "premium", "ultimate"])
            seats = rng.randint(1, 20)
            end = today + timedelta(days=rng.randint(1, 365))
            account_id = s.scalar(select(BillingAccount.id).where(BillingAccount.user_id == user))
            s.get(Namespace, user).plan = plan
            # Some bought with a first-term discount: the renewal must be at list price regardless.
            s.add(Order(billing_account_id=account_id, namespace_id=user, user_id=user, plan=plan, seats=seats,
                        currency="usd", subtotal=1, discount_total=rng.choice([0, 0, 1]), total=1, lines=[],
                        catalog_version="x", term_start=add_months(end, -12), term_end=end, status="completed",
                        discount_code=rng.choice([None, None, "SMB2026"]), created_at=clock.now()))
            sub = Subscription(namespace_id=user, billing_account_id=account_id, plan=plan, seats=seats,
                               term_start=add_months(end, -12), term_end=end, status="active",
                               auto_renew=rng.random() < 0.9, created_at=clock.now(), updated_at=clock.now())
            s.add(sub)
            s.flush()
            if rng.random() < 0.3:
                s.add(SubscriptionAddOn(subscription_id=sub.id, sku="duo_pro", seats=rng.randint(1, seats)))
            if rng.random() < 0.25:  # the team grows past its seats some time before renewal
                growth.setdefault(end - timedelta(days=rng.randint(1, 100)), []).append(user)
            if rng.random() < 0.3 and end > today + timedelta(days=2):  # the owner buys more mid-term
                kind = rng.choice([Kind.SEATS, Kind.SEATS, Kind.ADDON, Kind.STORAGE])
                sku = ("duo_enterprise" if plan == "ultimate" and rng.random() < 0.5 else "duo_pro") \
                    if kind is Kind.ADDON else None
                on = today + timedelta(days=rng.randint(1, (end - today).days - 1))
                expansions_due.setdefault(on, []).append((user, Expansion(kind, rng.randint(1, 3), sku)))
        s.commit()
    next_user = 90_000
    grown: Counter[str] = Counter()
    for day in range(367):
        now = today + timedelta(days=day)
        clock.set(datetime(now.year, now.month, now.day, 0, 10, tzinfo=UTC))
        with Session(app.ctx.engine) as s:
            for user in growth.get(now, []):
                for _ in range(rng.randint(21, 25)):  # beyond any seat count
                    s.add(User(id=next_user, email=f"u{next_user}@t", name="x"))
                    s.flush()
                    s.add(Membership(namespace_id=user, user_id=next_user, role="developer", billable=True))
                    next_user += 1
            s.commit()
        for user, expansion in expansions_due.get(now, []):
            grown[_expand(app, user, expansion)] += 1
        renewals.run_all(app, app.ctx.uow, app.renewal_rules)

    tally: Counter[str] = Counter()
    with Session(app.ctx.engine) as s:
        expanded = {sub_id for sub_id, in s.execute(select(Order.subscription_id).where(
            Order.kind == "expansion", Order.status == "completed"))}
        namespace_of = {sid: ns for sid, ns in s.execute(select(Subscription.id, Subscription.namespace_id))}
        team_grew = {user for users in growth.values() for user in users}
        for r in s.scalars(select(Renewal).where(Renewal.status.in_(("succeeded", "failed", "retrying")))):
            # What the owner was told last: the last reminder, or an expansion's receipt after it.
            statement = renewals.last_statement(s, r.subscription_id, r.renewal_date)
            said = statement["total"] if statement else None
            if r.subscription_id in expanded and namespace_of[r.subscription_id] not in team_grew:
                tally["(grew mid-term)"] += 1
                if said == r.amount:
                    tally["(grew mid-term, charged exactly the stated amount)"] += 1
            if said is None:
                tally["no reminder (renewal date within days of the start)"] += 1
            elif said == r.amount:
                tally["charged exactly the stated amount"] += 1
            elif r.changes:
                tally["differed, and the receipt names the change"] += 1
            else:
                tally["UNEXPLAINED DIFFERENCE"] += 1
            tally[f"renewal {r.status}"] += 1
    print("\nrenewal accuracy over a simulated year:")
    for what, n in sorted(tally.items()):
        print(f"  {n:5d}  {what}")
    print("expansions bought mid-term:", dict(sorted(grown.items())))
    assert tally["UNEXPLAINED DIFFERENCE"] == 0
    assert grown["completed"] > COUNT * 0.1 and tally["(grew mid-term)"] > COUNT * 0.1
    # Grown by an expansion (and not by new members): charged exactly what the owner was told.
    assert tally["(grew mid-term, charged exactly the stated amount)"] == tally["(grew mid-term)"]
    assert tally["charged exactly the stated amount"] > COUNT * 0.5
    # Every auto-renewing subscription (about 90%) was renewed or tried.
    assert sum(n for k, n in tally.items() if not k.startswith("renewal ")) >= COUNT * 0.85
    assert tally["differed, and the receipt names the change"] > 0
    assert tally["renewal failed"] > 0 and tally["renewal succeeded"] > COUNT * 0.6
    app.ctx.close()


def _expand(app: Any, user: int, expansion: Expansion) -> str:
    """The owner buys through the real use case (key, lock, charge, settle): its outcome."""
    request = ExpansionRequest(user, expansion)
    try:
        result = purchases.purchase(app, app.ctx.uow, Principal(user, f"owner{user}@test"), request,
                                    f"grow-{user}-{expansion.kind}", f"{user}-{expansion}", settled_response)
    except DomainError as refused:
        return refused.code  # e.g. more Duo seats than the subscription has
    if isinstance(result, PurchaseRefused):
        return result.error.code  # the failing cards decline
    assert not isinstance(result, idempotency.Replay)
    return str(result.status)
