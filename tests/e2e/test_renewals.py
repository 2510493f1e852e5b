"""A year of a subscription in a minute: reminders, auto-renewal against
localstripe, dunning, grace and expiry, manual renewal."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import (
    BillingAccount,
    FunnelEventRow,
    Membership,
    Namespace,
    OutboxMessage,
    PaymentMethod,
    Renewal,
    Subscription,
    SweepFailure,
    User,
)
from services.checkout.domain.pricing import add_months
from services.checkout.runtime import Checkout
from services.checkout.usecases import renewals
from services.common.clock import FixedClock
from services.notifications.domain import messages as M
from services.notifications.domain.rendering import render
from services.notifications.domain.schedule import Schedule, as_sent
from tests.e2e.helpers import Buyer, provision_buyers
from tests.support import LocalStripe, auth

pytestmark = pytest.mark.e2e


def checkout_of(app: Flask) -> Checkout:
    return app.extensions["checkout"]


def sweep(app: Flask) -> dict[str, int]:
    c = checkout_of(app)
    return renewals.run_all(c, c.ctx.uow, c.renewal_rules)


def events(app: Flask, topic: str, namespace_id: int | None = None) -> list[dict[str, Any]]:
    with Session(checkout_of(app).ctx.engine) as s:
        payloads = [m.payload for m in s.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic)
                                                 .order_by(OutboxMessage.occurred_at))]
    return [p for p in payloads if namespace_id is None or p.get("namespace_id") == namespace_id]


def at(clock: FixedClock, day: Any) -> None:
    clock.set(datetime(day.year, day.month, day.day, 0, 5, tzinfo=UTC))


def subscribe(app: Flask, user_id: int, seats: int = 3, days_left: int = 100) -> Subscription:
    """A subscription bought a while ago by a provisioned buyer (namespace id = user id)."""
    clock = checkout_of(app).ctx.clock
    end = clock.now().date() + timedelta(days=days_left)
    with Session(checkout_of(app).ctx.engine, expire_on_commit=False) as s:
        account = s.scalar(select(BillingAccount).where(BillingAccount.user_id == user_id))
        s.get(Namespace, user_id).plan = "premium"
        sub = Subscription(namespace_id=user_id, billing_account_id=account.id, plan="premium", seats=seats,
                           term_start=add_months(end, -12), term_end=end, auto_renew=True, status="active",
                           created_at=clock.now(), updated_at=clock.now())
        s.add(sub)
        s.commit()
        return sub


def test_reminders_then_renewal_at_list_price_with_seats_raised(stripe_app: Flask, localstripe: LocalStripe,
                                                                clock: FixedClock) -> None:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4242424242424242")
    bought = buyer.buy("smb", seats=5, discount_code="SMB2026").json
    assert bought["order"]["total"] == 5 * 1900 * 12
    end = datetime.fromisoformat(bought["subscription"]["term_end"]).date()
    for days in (90, 45, 30, 15):
        at(clock, end - timedelta(days=days))
        sweep(stripe_app)
        assert len(events(stripe_app, "subscription.renewal_upcoming", 100)) == [90, 45, 30, 15].index(days) + 1
        sweep(stripe_app)  # a second sweep the same day sends nothing more
    reminders = events(stripe_app, "subscription.renewal_upcoming", 100)
    assert [r["days_before"] for r in reminders] == [90, 45, 30, 15]
    # The first-term SMB price is gone: list price, stated in every reminder.
    assert {r["quote"]["total"] for r in reminders} == {5 * 34800}
    assert reminders[-1]["card"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034,
                                     "expired": False, "expires_before_renewal": False}
    assert reminders[0]["email"] == "billing@acme.test"
    with Session(checkout_of(stripe_app).ctx.engine) as s:  # four people join after the reminders: 6 billable
        for uid in range(77, 81):
            s.add(User(id=uid, email=f"new{uid}@acme.test", name="New"))
            s.flush()
            s.add(Membership(namespace_id=100, user_id=uid, role="developer", billable=True))
        s.commit()
    at(clock, end)
    sweep(stripe_app)
    [renewed] = events(stripe_app, "subscription.renewed", 100)
    assert renewed["amount"] == 6 * 34800 and renewed["seats"] == 6
    assert renewed["term_start"] == end.isoformat() and renewed["term_end"] == add_months(end, 12).isoformat()
    assert renewed["changes"] and "from 5 to 6" in renewed["changes"][0]
    with Session(checkout_of(stripe_app).ctx.engine) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == 1))
    mine = [pi for pi in localstripe.payment_intents(customer) if pi.amount != 5 * 34800]  # not globex's
    assert sorted(pi.amount for pi in mine) == [5 * 1900 * 12, 6 * 34800]
    before = len(localstripe.payment_intents(customer))
    sweep(stripe_app)
    assert len(localstripe.payment_intents(customer)) == before


def test_failed_card_is_retried_and_a_new_card_renews(stripe_app: Flask, localstripe: LocalStripe,
                                                      clock: FixedClock) -> None:
    [user] = provision_buyers(stripe_app, localstripe.url, 1, card="4000000000000341")
    sub = subscribe(stripe_app, user, days_left=1)
    at(clock, sub.term_end)
    sweep(stripe_app)
    at(clock, sub.term_end + timedelta(days=1))
    sweep(stripe_app)
    failures = events(stripe_app, "subscription.renewal_failed", user)
    assert [(f["attempt"], f["next_attempt_at"], f["final"]) for f in failures] == [
        (1, (sub.term_end + timedelta(days=1)).isoformat(), False),
        (2, (sub.term_end + timedelta(days=3)).isoformat(), False)]
    assert failures[0]["update_card_url"].endswith(f"/billing/{user}")  # the Billing page, not the JSON API
    # The owner adds a good card; the next retry renews normally.
    good = localstripe.sdk.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 1, "exp_year": 2035, "cvc": "123"}})
    with Session(checkout_of(stripe_app).ctx.engine) as s:
        account = s.scalar(select(BillingAccount).where(BillingAccount.user_id == user))
        localstripe.sdk.v1.payment_methods.attach(good.id, params={"customer": account.stripe_customer_id})
        s.execute(PaymentMethod.__table__.update().values(is_default=False))
        s.add(PaymentMethod(billing_account_id=account.id, stripe_payment_method_id=good.id, brand="visa",
                            last4="4242", exp_month=1, exp_year=2035, is_default=True, created_at=clock.now()))
        s.commit()
    at(clock, sub.term_end + timedelta(days=2))
    sweep(stripe_app)
    assert events(stripe_app, "subscription.renewed", user) == []  # not a dunning day
    at(clock, sub.term_end + timedelta(days=3))
    sweep(stripe_app)
    assert len(events(stripe_app, "subscription.renewed", user)) == 1


def test_dunning_runs_out_and_the_namespace_returns_to_free(stripe_app: Flask, localstripe: LocalStripe,
                                                            clock: FixedClock) -> None:
    [user] = provision_buyers(stripe_app, localstripe.url, 1, card="4000000000000341")
    sub = subscribe(stripe_app, user, days_left=1)
    for day in range(15):
        at(clock, sub.term_end + timedelta(days=day))
        sweep(stripe_app)
    failures = events(stripe_app, "subscription.renewal_failed", user)
    assert [f["attempt"] for f in failures] == [1, 2, 3, 4, 5, 6, 7]  # the day itself, then 1,3,5,7,10,14
    assert failures[-1]["final"] is True and failures[-1]["next_attempt_at"] is None
    [expired] = events(stripe_app, "subscription.expired", user)
    assert expired["subscription_id"] == sub.id
    with Session(checkout_of(stripe_app).ctx.engine) as s:
        assert s.get(Subscription, sub.id).status == "expired"
        assert s.get(Namespace, user).plan == "free"
    at(clock, sub.term_end + timedelta(days=20))
    sweep(stripe_app)
    assert len(events(stripe_app, "subscription.renewal_failed", user)) == 7
    assert len(events(stripe_app, "subscription.expired", user)) == 1


def test_auto_renew_off_means_no_charge_and_expiry_after_grace(stripe_app: Flask, localstripe: LocalStripe,
                                                               clock: FixedClock) -> None:
    [user] = provision_buyers(stripe_app, localstripe.url, 1)
    sub = subscribe(stripe_app, user, days_left=20)
    client = stripe_app.test_client()
    off = client.put(f"/namespaces/{user}/subscription/auto-renew", json={"enabled": False, "reason": "not_using"},
                     headers=auth(user))
    assert off.status_code == 200 and off.json["auto_renew"] is False and off.json["next_renewal_date"] is None
    with Session(checkout_of(stripe_app).ctx.engine) as s:  # the experiments' guardrail
        [turned_off] = s.scalars(select(FunnelEventRow).where(FunnelEventRow.step == "auto_renew_off"))
        assert (turned_off.namespace_id, turned_off.properties["subscription_id"]) == (user, sub.id)
    at(clock, sub.term_end - timedelta(days=30))
    sweep(stripe_app)
    at(clock, sub.term_end - timedelta(days=15))
    sweep(stripe_app)  # no "upcoming auto-renewal" notice: it will not auto-renew
    assert [r["days_before"] for r in events(stripe_app, "subscription.renewal_upcoming", user)] == [30]
    at(clock, sub.term_end)
    sweep(stripe_app)
    assert events(stripe_app, "subscription.renewed", user) == []
    assert events(stripe_app, "subscription.renewal_failed", user) == []
    at(clock, sub.term_end + timedelta(days=13))
    sweep(stripe_app)
    assert events(stripe_app, "subscription.expired", user) == []  # paid features through the grace period
    at(clock, sub.term_end + timedelta(days=14))
    sweep(stripe_app)
    assert len(events(stripe_app, "subscription.expired", user)) == 1


def test_a_subscription_found_65_days_before_its_renewal_is_told_65_days_not_90(
        stripe_app: Flask, localstripe: LocalStripe, clock: FixedClock) -> None:
    """`make run`'s seeded subscription: its first reminder goes at stack start, late."""
    [user] = provision_buyers(stripe_app, localstripe.url, 1)
    sub = subscribe(stripe_app, user, days_left=65)
    sweep(stripe_app)
    [first] = events(stripe_app, "subscription.renewal_upcoming", user)
    assert (first["days_before"], first["next_days_before"]) == (90, 45)
    schedule = Schedule.load()  # what notifications makes of the event, sent now
    plan = M.renewal_upcoming(first, clock.now(), schedule)
    context = as_sent(plan.template, plan.context, clock.now(), schedule)
    assert isinstance(context, dict)
    said = render(plan.template, context).text
    assert f"renews automatically on {sub.term_end:%B %-d, %Y} ({sub.term_end.isoformat()}), in 65 days." in said
    at(clock, sub.term_end - timedelta(days=46))
    sweep(stripe_app)
    at(clock, sub.term_end - timedelta(days=45))
    sweep(stripe_app)
    assert [(r["days_before"], r["next_days_before"])
            for r in events(stripe_app, "subscription.renewal_upcoming", user)] == [(90, 45), (45, 30)]


def test_manual_renewal_from_thirty_days_before(stripe_app: Flask, localstripe: LocalStripe,
                                                clock: FixedClock) -> None:
    [user] = provision_buyers(stripe_app, localstripe.url, 1)
    sub = subscribe(stripe_app, user, days_left=45)
    client = stripe_app.test_client()
    early = client.post(f"/namespaces/{user}/subscription/renewal", headers=auth(user))
    assert early.status_code == 409 and early.json["code"] == "renewal_not_open"
    preview = client.get(f"/namespaces/{user}/subscription/renewal", headers=auth(user)).json
    assert preview["quote"]["total"] == 3 * 34800 and preview["grace_ends"]
    at(clock, sub.term_end - timedelta(days=30))
    done = client.post(f"/namespaces/{user}/subscription/renewal", headers=auth(user))
    assert done.status_code == 201, done.json
    assert done.json["amount"] == preview["quote"]["total"]
    assert done.json["subscription"]["term_end"] == add_months(sub.term_end, 12).isoformat()
    at(clock, sub.term_end)
    sweep(stripe_app)
    assert len(events(stripe_app, "subscription.renewed", user)) == 1


def test_members_who_are_not_owners_see_whether_the_card_will_do_not_the_card(
        stripe_app: Flask, localstripe: LocalStripe) -> None:
    [user] = provision_buyers(stripe_app, localstripe.url, 1)
    subscribe(stripe_app, user, days_left=45)
    developer = 9_001
    with Session(checkout_of(stripe_app).ctx.engine) as s:
        s.add(User(id=developer, email="dev@test", name="Dev"))
        s.flush()
        s.add(Membership(namespace_id=user, user_id=developer, role="developer", billable=True))
        s.commit()
    client = stripe_app.test_client()
    path = f"/namespaces/{user}/subscription/renewal"
    owner_view = client.get(path, headers=auth(user)).json["card"]
    assert owner_view == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034,
                          "expired": False, "expires_before_renewal": False}
    member = client.get(path, headers=auth(developer))
    assert member.status_code == 200
    assert member.json["card"] == {"expired": False, "expires_before_renewal": False}
    assert member.json["quote"]["total"] == 3 * 34800  # the plan and seats stay readable


def test_renew_now_never_charges_a_term_already_renewed(stripe_app: Flask, localstripe: LocalStripe,
                                                        clock: FixedClock) -> None:
    """The sweep renewed this term while the owner's click waited for the renewal's
    lock, with the subscription read from before: the click charges nothing."""
    [user] = provision_buyers(stripe_app, localstripe.url, 1)
    sub = subscribe(stripe_app, user, days_left=20)
    with Session(checkout_of(stripe_app).ctx.engine) as s:
        s.add(Renewal(subscription_id=sub.id, renewal_date=sub.term_end, status="succeeded", attempts=1,
                      amount=3 * 34800, created_at=clock.now(), updated_at=clock.now()))
        s.commit()
        customer = s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == user))
    answer = stripe_app.test_client().post(f"/namespaces/{user}/subscription/renewal", headers=auth(user))
    assert answer.status_code == 409 and answer.json["code"] == "already_renewed"
    assert localstripe.payment_intents(customer) == []


def test_parallel_sweeps_charge_each_renewal_once(postgres_only: None, stripe_app: Flask,
                                                  localstripe: LocalStripe, clock: FixedClock) -> None:
    users = provision_buyers(stripe_app, localstripe.url, 20)
    subs = [subscribe(stripe_app, u, days_left=1) for u in users]
    at(clock, subs[0].term_end)
    c = checkout_of(stripe_app)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: renewals.charge_due(c, c.ctx.uow, c.renewal_rules), range(3)))
    assert sum(renewed for renewed, _ in results) == 20
    with Session(c.ctx.engine) as s:
        assert s.scalar(select(func.count()).select_from(Renewal).where(Renewal.status == "succeeded")) == 20
        customers = list(s.scalars(select(BillingAccount.stripe_customer_id)
                                   .where(BillingAccount.user_id.in_(users))))
    assert len(localstripe.payment_intents(*customers)) == 20


# --- one bad renewal never blocks the others ---------------------------------------------
class BrokenFor:
    """The real gateway, except that charging one customer raises (a bug, bad data)."""

    def __init__(self, real: Any, customer_id: str) -> None:
        self.real, self.customer_id, self.broken = real, customer_id, True
        self.keys: list[str] = []  # idempotency keys of the charges that raised

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def charge(self, **kwargs: Any) -> Any:
        if self.broken and kwargs["customer_id"] == self.customer_id:
            self.keys.append(kwargs["idempotency_key"])
            raise RuntimeError("injected fault")
        return self.real.charge(**kwargs)


def renewal_of(app: Flask, sub: Subscription) -> Renewal:
    with Session(checkout_of(app).ctx.engine) as s:
        return s.scalars(select(Renewal).where(Renewal.subscription_id == sub.id)).one()


def failure_of(app: Flask, sweep_name: str, item_id: int) -> SweepFailure | None:
    with Session(checkout_of(app).ctx.engine) as s:
        return s.get(SweepFailure, (sweep_name, item_id))


def metrics(app: Flask) -> str:
    return app.test_client().get("/metrics").get_data(as_text=True)


def break_charges_for(app: Flask, user: int, monkeypatch: pytest.MonkeyPatch) -> BrokenFor:
    c = checkout_of(app)
    with Session(c.ctx.engine) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == user))
    broken = BrokenFor(c.payments, customer)
    monkeypatch.setattr(c, "payments", broken)
    return broken


def lines_about(caplog: pytest.LogCaptureFixture, item_id: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "item_id", None) == item_id]


def test_one_bad_renewal_never_blocks_the_others(stripe_app: Flask, localstripe: LocalStripe,
                                                 clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    users = provision_buyers(stripe_app, localstripe.url, 50)
    subs = [subscribe(stripe_app, u, days_left=1) for u in users]
    first, tenth = subs[0], subs[9]
    with Session(checkout_of(stripe_app).ctx.engine) as s:  # the first owner's card is gone at Stripe
        card = s.scalar(select(PaymentMethod).join(BillingAccount).where(BillingAccount.user_id == users[0]))
        card.stripe_payment_method_id = "pm_deleted_at_stripe"
        s.commit()
    broken = break_charges_for(stripe_app, users[9], monkeypatch)
    caplog.set_level(logging.INFO, logger="services.common.sweeps")

    at(clock, first.term_end)
    done = sweep(stripe_app)

    assert (done["renewed"], done["failed_charges"]) == (48, 1)
    renewed = {e["subscription_id"] for e in events(stripe_app, "subscription.renewed")}
    assert renewed == {s.id for s in subs} - {first.id, tenth.id}
    # Stripe refused the vanished card: the dunning path, as for a declined card.
    [declined] = events(stripe_app, "subscription.renewal_failed")
    assert (declined["subscription_id"], declined["attempt"], declined["reason"]) == (first.id, 1, "payment_method_missing")
    assert declined["next_attempt_at"] == (first.term_end + timedelta(days=1)).isoformat()
    assert renewal_of(stripe_app, first).status == "retrying"
    assert failure_of(stripe_app, renewals.CHARGES, renewal_of(stripe_app, first).id) is None
    # The error: recorded on that renewal with its reason and a backoff; it stays due.
    bad = renewal_of(stripe_app, tenth)
    assert (bad.status, bad.attempts) == ("due", 0)
    failure = failure_of(stripe_app, renewals.CHARGES, bad.id)
    assert failure is not None
    assert (failure.failures, failure.reason, failure.last_error) == (1, "RuntimeError", "RuntimeError: injected fault")
    assert failure.retry_at == clock.now() + timedelta(minutes=1)
    assert 'sweep_items_failing{reason="RuntimeError",service="checkout",sweep="renewal_charges"} 1.0' \
        in metrics(stripe_app)
    [line] = lines_about(caplog, bad.id)  # one line, with the traceback the first time
    assert line.levelno == logging.ERROR and line.exc_info and "injected fault" in line.getMessage()

    clock.advance(timedelta(seconds=50))
    assert sweep(stripe_app)["renewed"] == 0  # not before its backoff
    assert len(broken.keys) == 1 and len(lines_about(caplog, bad.id)) == 1

    clock.advance(timedelta(seconds=10))
    sweep(stripe_app)  # tried again, on the same idempotency key (a charge is never made twice)
    assert len(set(broken.keys)) == 1 and len(broken.keys) == 2
    failure = failure_of(stripe_app, renewals.CHARGES, bad.id)
    assert failure is not None and failure.failures == 2
    assert failure.retry_at == clock.now() + timedelta(minutes=2)
    line = lines_about(caplog, bad.id)[-1]
    assert len(lines_about(caplog, bad.id)) == 2 and line.levelno == logging.WARNING and not line.exc_info

    broken.broken = False  # the fault is fixed: the next try renews it
    clock.advance(timedelta(minutes=2))
    assert sweep(stripe_app)["renewed"] == 1
    assert renewal_of(stripe_app, tenth).status == "succeeded"
    assert failure_of(stripe_app, renewals.CHARGES, bad.id) is None
    assert "sweep_items_failing{" not in metrics(stripe_app)

    at(clock, first.term_end + timedelta(days=1))  # the vanished card: the next dunning day
    sweep(stripe_app)
    retried = events(stripe_app, "subscription.renewal_failed")[-1]
    assert (retried["subscription_id"], retried["attempt"]) == (first.id, 2)
    assert len(events(stripe_app, "subscription.renewed")) == 49


def test_a_renewal_failing_for_a_day_waits_for_a_person(stripe_app: Flask, localstripe: LocalStripe,
                                                        clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    [user] = provision_buyers(stripe_app, localstripe.url, 1)
    sub = subscribe(stripe_app, user, days_left=1)
    broken = break_charges_for(stripe_app, user, monkeypatch)
    at(clock, sub.term_end)
    sweep(stripe_app)
    renewal_id = renewal_of(stripe_app, sub).id
    # Stripe keeps an idempotency key for a day: past 23 hours a retry could charge twice.
    clock.advance(timedelta(hours=23))
    sweep(stripe_app)
    failure = failure_of(stripe_app, renewals.CHARGES, renewal_id)
    assert failure is not None and (failure.failures, failure.retry_at) == (2, None)
    assert "needs a person" in lines_about(caplog, renewal_id)[-1].getMessage()
    assert 'sweep_items_given_up{service="checkout",sweep="renewal_charges"} 1.0' in metrics(stripe_app)
    clock.advance(timedelta(days=1))
    sweep(stripe_app)
    assert len(broken.keys) == 2  # no more automatic tries
    # The owner renews by hand (once the fault is fixed): the renewal is no longer failing.
    broken.broken = False
    done = stripe_app.test_client().post(f"/namespaces/{user}/subscription/renewal", headers=auth(user))
    assert done.status_code == 201, done.json
    assert failure_of(stripe_app, renewals.CHARGES, renewal_id) is None
    assert "sweep_items_given_up{" not in metrics(stripe_app)
