"""Expansions under concurrency on PostgreSQL: double clicks, and the renewal
charging the same subscription at the same moment."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import BillingAccount, Order, Renewal, Subscription
from services.checkout.usecases import renewals
from services.common.clock import FixedClock
from tests.e2e.helpers import Buyer
from tests.support import LiveServer, LocalStripe

# A race's loser may be a transaction PostgreSQL cancelled; its connection can then be
# collected a moment later, in whichever test runs next. That is the race the test makes,
# not a leak of the services, so the garbage collector's note about it is not an error here.
pytestmark = [pytest.mark.e2e,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
ACME = 100


def subscribed(stripe_app: Flask, localstripe: LocalStripe, clock: FixedClock, when: datetime) -> Buyer:
    buyer = Buyer(stripe_app.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4242424242424242")
    assert buyer.buy("first", seats=5).status_code == 201
    clock.set(when)
    return buyer


def customer(app: Flask) -> str:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        found = s.scalar(select(BillingAccount.stripe_customer_id))
        assert found is not None
        return found


def test_twenty_identical_concurrent_add_seat_requests_make_one_order_and_one_charge(
        postgres_only: None, live_checkout: LiveServer, stripe_app: Flask, localstripe: LocalStripe,
        clock: FixedClock) -> None:
    buyer = subscribed(stripe_app, localstripe, clock, datetime(2027, 6, 1, 12, tzinfo=UTC))
    body = {"namespace_id": ACME, "kind": "seats", "quantity": 3}
    headers = {**buyer.headers, "Idempotency-Key": "double-click"}

    def fire(_: int) -> tuple[int, Any]:
        r = requests.post(f"{live_checkout.url}/expansions", json=body, headers=headers, timeout=60)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(fire, range(20)))
    assert {status for status, _ in results} == {201}
    assert len({json.dumps(b, sort_keys=True) for _, b in results}) == 1
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        assert s.scalar(select(func.count()).select_from(Order).where(Order.kind == "expansion")) == 1
        assert s.scalar(select(Subscription.seats).where(Subscription.namespace_id == ACME)) == 8
    # One PaymentIntent for the first purchase, one for the seats.
    intents = localstripe.payment_intents(customer(stripe_app))
    assert len(intents) == 2 and intents[0].amount + intents[1].amount == 5 * 34800 + results[0][1]["order"]["total"]


@pytest.mark.parametrize("attempt,sweep_delay", [(0, 0.0), (1, 0.0), (2, 0.05), (3, 0.15), (4, 0.5)])
def test_adding_seats_while_the_renewal_charges_ends_in_one_consistent_state(
        postgres_only: None, live_checkout: LiveServer, stripe_app: Flask, localstripe: LocalStripe,
        clock: FixedClock, attempt: int, sweep_delay: float) -> None:
    """The sweep renews (a due renewal, retried a day before the end) while the owner
    adds seats. Whichever locks the subscription first wins the race; the other
    sees its result: either the renewal charges the new seats, or the expansion,
    priced for a term that has just been renewed, is refunded in full."""
    buyer = subscribed(stripe_app, localstripe, clock, datetime(2027, 11, 20, 12, tzinfo=UTC))
    app = stripe_app.extensions["checkout"]
    with Session(app.ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == ACME))
        assert sub is not None and sub.term_end == date(2027, 11, 21)
        s.add(Renewal(subscription_id=sub.id, renewal_date=sub.term_end, status="due", attempts=0,
                      next_attempt_on=date(2027, 11, 20), manual=True, created_at=clock.now(),
                      updated_at=clock.now()))
        s.commit()
    start = threading.Barrier(2)

    def expand() -> tuple[int, Any]:
        start.wait()
        r = requests.post(f"{live_checkout.url}/expansions", json={"namespace_id": ACME, "kind": "seats",
                                                                   "quantity": 3},
                          headers={**buyer.headers, "Idempotency-Key": f"race-{attempt}"}, timeout=60)
        return r.status_code, r.json()

    def sweep() -> dict[str, int]:
        start.wait()
        time.sleep(sweep_delay)
        return renewals.run_all(app, app.ctx.uow, app.renewal_rules)

    with ThreadPoolExecutor(max_workers=2) as pool:
        grown, swept = pool.submit(expand), pool.submit(sweep)
        (status, body), outcome = grown.result(), swept.result()
    assert outcome["renewed"] >= 1  # acme's (and globex's, long due, on the same account)
    print("race outcome:", status, body.get("code") or body["order"]["status"])
    with Session(app.ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == ACME))
        assert sub is not None
        renewal = s.scalar(select(Renewal).where(Renewal.subscription_id == sub.id))
        assert renewal is not None and renewal.quote is not None
        assert sub.term_end == date(2028, 11, 21)  # renewed once
        order = s.scalar(select(Order).where(Order.kind == "expansion"))
    if status == 201:  # priced and settled before the renewal, or priced for the new term after it
        assert sub.seats == 8
        assert renewal.quote["seats"] == 8 or order is not None and order.term_end == sub.term_end
    else:
        assert sub.seats == 5 and renewal.quote["seats"] == 5
        # Paid for the old term, settled after the renewal moved it on: refunded in full.
        assert (status, body["code"]) == (409, "subscription_changed") and body["refunded"]
        assert order is not None and order.refunded and order.refunded_amount == order.total
    # The renewal charged exactly what it priced, once.
    charged = [pi for pi in localstripe.payment_intents(customer(stripe_app))
               if (pi.metadata.to_dict() if pi.metadata else {}).get("renewal_id") == str(renewal.id)
               and pi.status == "succeeded"]
    assert [pi.amount for pi in charged] == [renewal.amount] and renewal.status == "succeeded"
