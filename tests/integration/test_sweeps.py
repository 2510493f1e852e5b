"""One bad item never blocks a sweep: the items after it are done, its failure
is recorded with its reason and a backoff, /metrics and the log show it once
per attempt (never a traceback every pass), and it is tried again alone when
its backoff is over. The renewal charges are in tests/e2e/test_renewals.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import (
    BillingAccount,
    Membership,
    Namespace,
    OutboxMessage,
    PaymentMethod,
    RenewalNotice,
    Subscription,
    SweepFailure,
    User,
)
from services.checkout.domain.pricing import add_months
from services.checkout.runtime import Checkout
from services.checkout.usecases import renewals
from services.common.clock import FixedClock
from services.common.service import ServiceUnitOfWork
from services.trials.adapters import models as trial_models
from services.trials.usecases.trials import TRIAL_EXPIRY, expire_due

FIRST_OWNER = 3000


class FailsFor:
    """Publishing the event of one item raises: a bug that hits that item alone."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, key: str, value: int) -> None:
        self.broken = True
        original = ServiceUnitOfWork.publish

        def publish(uow: ServiceUnitOfWork, topic: str, payload: dict[str, Any]) -> str:
            if self.broken and payload.get(key) == value:
                raise RuntimeError("injected fault")
            return original(uow, topic, payload)

        monkeypatch.setattr(ServiceUnitOfWork, "publish", publish)


def owners(app: Flask, clock: FixedClock, *, days_left: int, card_expires: tuple[int, int] = (12, 2034),
           count: int = 3) -> list[Subscription]:
    """Owners of Premium namespaces with a card on file (never charged here)."""
    now = clock.now()
    end = now.date() + timedelta(days=days_left)
    subs = []
    with Session(app.extensions["checkout"].ctx.engine, expire_on_commit=False) as s:
        for i in range(FIRST_OWNER, FIRST_OWNER + count):
            s.add(User(id=i, email=f"owner{i}@test", name=f"Owner {i}"))
            s.add(Namespace(id=i, path=f"group-{i}", name=f"Group {i}", kind="group", plan="premium",
                            created_at=now))
            s.flush()
            s.add(Membership(namespace_id=i, user_id=i, role="owner", billable=True))
            account = BillingAccount(user_id=i, company=f"Co {i}", email=f"owner{i}@test", country="US",
                                     address_line1="1 St", city="X", postal_code="1",
                                     stripe_customer_id=f"cus_{i}", created_at=now, updated_at=now)
            s.add(account)
            s.flush()
            s.add(PaymentMethod(billing_account_id=account.id, stripe_payment_method_id=f"pm_{i}",
                                brand="visa", last4="4242", exp_month=card_expires[0],
                                exp_year=card_expires[1], is_default=True, created_at=now))
            sub = Subscription(namespace_id=i, billing_account_id=account.id, plan="premium", seats=3,
                               term_start=add_months(end, -12), term_end=end, auto_renew=True,
                               status="active", created_at=now, updated_at=now)
            s.add(sub)
            subs.append(sub)
        s.commit()
    return subs


@dataclass(frozen=True)
class Case:
    sweep: str
    run: Callable[[Checkout], int]
    topic: str
    key: str  # the payload field naming the item's owner
    setup: dict[str, Any]
    item: Callable[[Session, Subscription], int]  # the id its failure is recorded under
    subject: Callable[[Subscription], int]  # the value of `key` in the item's event


CASES = [
    Case(renewals.REMINDERS, lambda c: renewals.announce_renewals(c, c.ctx.uow, c.renewal_rules),
         "subscription.renewal_upcoming", "subscription_id", {"days_left": 30},
         lambda s, sub: s.scalars(select(RenewalNotice.id).where(RenewalNotice.subscription_id == sub.id)).one(),
         lambda sub: sub.id),
    Case(renewals.EXPIRY, lambda c: renewals.expire_lapsed(c.ctx.uow, c.renewal_rules),
         "subscription.expired", "subscription_id", {"days_left": -14},
         lambda s, sub: sub.id, lambda sub: sub.id),
    Case(renewals.CARD_NOTICES, lambda c: renewals.announce_expiring_cards(c.ctx.uow),
         "card.expiring", "billing_account_id", {"days_left": 100, "card_expires": (11, 2026)},
         lambda s, sub: s.scalars(select(PaymentMethod.id)
                                  .where(PaymentMethod.billing_account_id == sub.billing_account_id)).one(),
         lambda sub: sub.billing_account_id),
]


def published(app: Flask, topic: str, key: str) -> list[int]:
    """Whose events of `topic` were published (ours: the demo data's owners are not counted)."""
    with Session(app.extensions["checkout"].ctx.engine) as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic))
        return sorted(m.payload[key] for m in rows if m.payload["email"].startswith("owner"))


def failure(engine: Any, model: Any, sweep: str, item_id: int) -> Any:
    with Session(engine) as s:
        return s.get(model, (sweep, item_id))


def lines(caplog: pytest.LogCaptureFixture, sweep: str, item_id: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "sweep", None) == sweep
            and getattr(r, "item_id", None) == item_id and r.levelno >= logging.WARNING]


def failing_metric(service: str, sweep: str, reason: str = "RuntimeError") -> str:
    return f'sweep_items_failing{{reason="{reason}",service="{service}",sweep="{sweep}"}} 1.0'


@pytest.mark.parametrize("case", CASES, ids=[c.sweep for c in CASES])
def test_one_bad_item_never_blocks_a_checkout_sweep(app: Flask, clock: FixedClock, case: Case,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    checkout: Checkout = app.extensions["checkout"]
    engine = checkout.ctx.engine
    case.run(checkout)  # whatever the demo data has due
    subs = owners(app, clock, **case.setup)
    bad = subs[0]  # the lowest id: taken first, it used to stop every item after it
    fault = FailsFor(monkeypatch, case.key, case.subject(bad))
    caplog.set_level(logging.INFO, logger="services.common.sweeps")

    assert case.run(checkout) == 2
    with Session(engine) as s:
        item = case.item(s, bad)
    assert published(app, case.topic, case.key) == sorted(case.subject(sub) for sub in subs[1:])
    recorded = failure(engine, SweepFailure, case.sweep, item)
    assert (recorded.failures, recorded.reason, recorded.last_error) == (
        1, "RuntimeError", "RuntimeError: injected fault")
    assert recorded.retry_at == clock.now() + timedelta(minutes=1)
    assert failing_metric("checkout", case.sweep) in app.test_client().get("/metrics").get_data(as_text=True)
    [line] = lines(caplog, case.sweep, item)
    assert line.levelno == logging.ERROR and line.exc_info  # the traceback, once

    assert case.run(checkout) == 0  # not again before its backoff
    assert len(lines(caplog, case.sweep, item)) == 1
    clock.advance(timedelta(minutes=1))
    assert case.run(checkout) == 0  # tried again alone, failing again: one more line, no traceback
    assert failure(engine, SweepFailure, case.sweep, item).failures == 2
    assert [(r.levelno, bool(r.exc_info)) for r in lines(caplog, case.sweep, item)] == [
        (logging.ERROR, True), (logging.WARNING, False)]

    fault.broken = False
    clock.advance(timedelta(minutes=2))
    assert case.run(checkout) == 1
    assert published(app, case.topic, case.key) == sorted(case.subject(sub) for sub in subs)
    assert failure(engine, SweepFailure, case.sweep, item) is None
    assert "sweep_items_failing{" not in app.test_client().get("/metrics").get_data(as_text=True)
    assert case.run(checkout) == 0  # each item once


def test_one_bad_trial_never_blocks_the_expiry_sweep(trials_app: Flask, clock: FixedClock,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    trials = trials_app.extensions["trials"]
    engine = trials.ctx.engine
    with Session(engine) as s:
        for ns in range(5000, 5003):
            s.add(trial_models.Trial(namespace_id=ns, namespace_path=f"g{ns}", kind="ultimate", status="active",
                                     plan_before="free", started_by=1, started_by_email="a@b.c",
                                     started_at=clock.now() - timedelta(days=31),
                                     ends_at=clock.now() - timedelta(minutes=1)))
        s.commit()
        first, *others = s.scalars(select(trial_models.Trial.id).order_by(trial_models.Trial.id)).all()
    fault = FailsFor(monkeypatch, "trial_id", first)
    caplog.set_level(logging.INFO, logger="services.common.sweeps")

    assert expire_due(trials, trials.ctx.uow) == others
    recorded = failure(engine, trial_models.SweepFailure, TRIAL_EXPIRY, first)
    assert (recorded.failures, recorded.reason) == (1, "RuntimeError")
    assert failing_metric("trials", TRIAL_EXPIRY) in trials_app.test_client().get("/metrics").get_data(as_text=True)
    assert len(lines(caplog, TRIAL_EXPIRY, first)) == 1
    assert expire_due(trials, trials.ctx.uow) == []

    fault.broken = False
    clock.advance(timedelta(minutes=1))
    assert expire_due(trials, trials.ctx.uow) == [first]
    assert failure(engine, trial_models.SweepFailure, TRIAL_EXPIRY, first) is None
    with Session(engine) as s:
        assert {t.status for t in s.scalars(select(trial_models.Trial))} == {"expired"}


def test_a_failing_item_that_is_no_longer_due_is_forgotten(app: Flask, clock: FixedClock,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    checkout: Checkout = app.extensions["checkout"]
    [sub] = owners(app, clock, days_left=-14, count=1)
    FailsFor(monkeypatch, "subscription_id", sub.id)
    assert renewals.expire_lapsed(checkout.ctx.uow, checkout.renewal_rules) == 0
    with Session(checkout.ctx.engine) as s:  # renewed by hand meanwhile: nothing left to expire
        s.get(Subscription, sub.id).term_end = add_months(sub.term_end, 12)
        s.commit()
    clock.advance(timedelta(minutes=1))
    assert renewals.expire_lapsed(checkout.ctx.uow, checkout.renewal_rules) == 0
    assert failure(checkout.ctx.engine, SweepFailure, renewals.EXPIRY, sub.id) is None

