"""Closed-loop locust users for benchmarks/ceiling.py: no think time, one
endpoint each, so requests/s is the server's ceiling at that concurrency.

    BENCH_URL=http://127.0.0.1:18001 locust -f loadtests/bench.py --headless -u 16 -r 16 -t 30s Quote

Environment: BENCH_URL (the service under test), STRIPE_URL (localstripe, for
Purchase), LOADTEST_POPULATION (population.json; tokens decide the traffic
source), BENCH_TRAFFIC (synthetic or demo: the X-Traffic-Source header).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from locust import constant, task
from locust.exception import StopUser

from loadtests.knobs import GOOD_CARD, OWNERS, PROSPECTS, Pool
from loadtests.locustfile import Api

BENCH_URL = os.environ.get("BENCH_URL", "http://127.0.0.1:8001").rstrip("/")
STRIPE_URL = os.environ.get("STRIPE_URL", "http://127.0.0.1:8420").rstrip("/")
TRAFFIC = os.environ.get("BENCH_TRAFFIC", "synthetic")


def _headers(person: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {person['token']}", "X-Traffic-Source": TRAFFIC}


class Bench(Api):
    abstract = True
    host = BENCH_URL
    wait_time = constant(0)

    def take(self, pool: Pool) -> dict[str, Any]:
        person = pool.take()
        if person is None:
            raise StopUser()
        return person


class QuoteBody(Bench):
    """POST /quotes for one Free group per user (a quote changes nothing but the funnel)."""

    abstract = True

    def on_start(self) -> None:
        person = self.take(PROSPECTS)
        self.headers = _headers(person)
        self.body = {"namespace_id": person["namespace_id"], "plan": "premium", "seats": 5}

    @task
    def quote(self) -> None:
        self.call("POST", "/quotes", "/quotes", (200,), headers=self.headers, json=self.body)


class Bare(QuoteBody):
    """The same request to benchmarks/bare_app.py."""


class Quote(QuoteBody):
    """checkout's POST /quotes."""


class Eligibility(Bench):
    def on_start(self) -> None:
        person = self.take(OWNERS)
        self.headers = _headers(person)
        self.path = f"/namespaces/{person['namespace_id']}/trials/eligibility"

    @task
    def eligibility(self) -> None:
        self.call("GET", self.path, "/namespaces/[id]/trials/eligibility", (200,), headers=self.headers)


class NamespaceLookup(Bench):
    """checkout's GET /namespaces/{id}: what each eligibility check asks checkout."""

    def on_start(self) -> None:
        person = self.take(OWNERS)
        self.headers = {"Authorization": f"Bearer {person['token']}"}  # as trials forwards it
        self.path = f"/namespaces/{person['namespace_id']}"

    @task
    def lookup(self) -> None:
        self.call("GET", self.path, "/namespaces/[id]", (200,), headers=self.headers)


class Purchase(Bench):
    """The purchase funnel back to back, one fresh Free group each time, a good card."""

    @task
    def buy(self) -> None:
        person = self.take(PROSPECTS)
        headers = _headers(person)
        self.call("PUT", "/billing-account", "/billing-account", (200,), headers=headers, json={
            "company": "Bench Co", "email": person["email"], "country": "US", "address_line1": "1 St",
            "city": "San Francisco", "state": "CA", "postal_code": "94105"})
        status, setup = self.call("POST", "/billing-account/card-setup", "/billing-account/card-setup",
                                  (201,), headers=headers)
        if status != 201:
            return
        self.call("POST", f"{STRIPE_URL}/v1/setup_intents/{setup['setup_intent_id']}/confirm",
                  "stripe /v1/setup_intents/[id]/confirm", (200,), json={
                      "key": setup["publishable_key"], "use_stripe_sdk": True,
                      "client_secret": setup["client_secret"], "payment_method_data": {
                          "type": "card", "card": {"number": GOOD_CARD, "exp_month": 12, "exp_year": 2034,
                                                   "cvc": "123"}}})
        self.call("POST", "/billing-account/cards", "/billing-account/cards", (201,), headers=headers,
                  json={"setup_intent_id": setup["setup_intent_id"]})
        self.call("POST", "/purchases", "/purchases", (201,),
                  headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                  json={"namespace_id": person["namespace_id"], "plan": "premium", "seats": 5})

