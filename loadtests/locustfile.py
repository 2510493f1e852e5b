"""Load profiles for the checkout and trial funnel (locust).

    .venv/bin/locust -f loadtests/locustfile.py --headless -u 50 -r 5 -t 2m
    python -m loadtests.run --users 50 --spawn-rate 5 --time 2m     # population + thresholds

Do not pass --host: each profile talks to its own service (URLs below).

User classes (pick some by name on the command line, e.g. `... Prospect`):
  Prospect       the whole purchase funnel on a fresh Free group: plans, quote, maybe a
                 discount code, billing account, card capture at (local)Stripe as Stripe.js
                 does it (some cards declined, some needing 3-D Secure), purchase with an
                 Idempotency-Key, 3-D Secure completed, entitlements. One group per funnel.
  TrialOwner     an Owner of a Premium group: eligibility, sometimes start the Ultimate
                 trial or list the trials.
  GrowthAnalyst  reads the growth dashboard's JSON (EXPERIMENTS_URL, token with the growth
                 role); off when EXPERIMENTS_URL is unset, idle when it does not answer.

Environment (loadtests/knobs.py):
  CHECKOUT_URL                 http://127.0.0.1:8001
  TRIALS_URL                   http://127.0.0.1:8002
  STRIPE_URL                   http://127.0.0.1:8420   (localstripe: the browser's part)
  EXPERIMENTS_URL              unset                   (`python -m experiments serve`, port 8004)
  EXPERIMENT_KEYS              the experiments in experiments/payload.json (comma separated)
  LOADTEST_POPULATION          var/loadtest/population.json (python -m loadtests.population)
  LOADTEST_PARTITION           0/1   (i/n: this process uses every n-th entry from the i-th)
  PROSPECT_WEIGHT, TRIAL_OWNER_WEIGHT, ANALYST_WEIGHT    6, 3, 1
  LOADTEST_WAIT                1-3   (seconds of think time between steps: "min-max" or one number)
  LOADTEST_DECLINED_SHARE      0.10  (first card is declined at set-up; the prospect enters another)
  LOADTEST_3DS_SHARE           0.15  (card needs 3-D Secure at set-up and at payment; completed)
  LOADTEST_CODE_SHARE          0.30  (prospects who try the discount code)
  LOADTEST_DISCOUNT_CODE       SMB2026 (demo data: 500 uses; `code_exhausted` is a valid answer)
  LOADTEST_TRIAL_START_SHARE   0.20  (TrialOwner visits that also start the Ultimate trial)
  LOADTEST_STAGES              unset: -u/-r/-t as usual. "1m:10,2m:50,30s:0": a ramping shape,
                               each stage reaching its user count over its duration; then stop.
  LOADTEST_SERVER_TIMING_OUT   unset: where to write the mean Server-Timing (db, stripe, app)
                               and the median of db + app (the project's own share)
                               per endpoint as JSON when the run ends (loadtests/run.py sets it).

Every request to our services carries `X-Traffic-Source: synthetic` with a token
whose role is `synthetic`, so the events are stored as synthetic, never analysed,
never mailed. Business answers are not failures: a declined card (402 at card
recording), an exhausted or inapplicable discount code (the quote's code_result,
or 422 on purchase, after which the prospect buys at list price), an already
started trial (200 with that trial, or 409 already_trialed / trial_active).
A discount code checked, or a card set up, too often from one address is
`429 rate_limited` (limits per client, CODE_ATTEMPTS_PER_CLIENT and
CARD_ATTEMPTS_PER_CLIENT): that *is* a failure here; run the services with
raised limits for load tests (docs/loadtests.md; `make run` raises both).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import statistics
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from locust import LoadTestShape, between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from loadtests import knobs as K
from loadtests.stages import parse_stages, target

log = logging.getLogger("loadtests")


class Api(FastHttpUser):
    """Shared request helper: business answers are successes, the rest failures."""

    abstract = True
    wait_time = between(*K.think_time())

    def call(self, method: str, path: str, name: str, ok: tuple[int, ...],
             accept: dict[int, frozenset[str]] | None = None, **kwargs: Any) -> tuple[int, Any]:
        """(status, parsed JSON or None). `accept` maps a status to the problem codes
        that are valid business answers for this step."""
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as response:
            status = response.status_code
            try:
                body = response.json()
            except Exception:  # not JSON (or no answer at all): the status says it
                body = None
            code = K.problem_code(body)
            if status in ok or (accept and code in accept.get(status, frozenset())):
                response.success()
            else:
                said = response.text if response.text is not None else getattr(response, "error", "")
                response.failure(f"{status} {code or ''}: {str(said)[:200]}")
            return status, body


def take(pool: K.Pool, what: str) -> dict[str, Any]:
    person = pool.take()
    if person is None:
        log.warning("no %s left in %s; stopping this user (provision more)", what, K.POPULATION)
        raise StopUser()
    return person


class Prospect(Api):
    """A prospect buying Premium for their Free group, start to finish."""

    weight = K.WEIGHTS["Prospect"]
    host = K.CHECKOUT_URL

    @task
    def buy_premium(self) -> None:
        person = take(K.PROSPECTS, "fresh prospects")
        headers = K.headers(person)
        seats = random.randint(1, 40)
        selection = {"namespace_id": person["namespace_id"], "plan": "premium", "seats": seats}
        self.call("GET", "/plans", "/plans", (200,), headers=headers)
        self.wait()
        self.call("POST", "/quotes", "/quotes", (200,), headers=headers, json=selection)
        code = self.try_code(headers, selection) if random.random() < K.CODE_SHARE else None
        self.wait()
        self.call("PUT", "/billing-account", "/billing-account", (200,), headers=headers, json={
            "company": f"Load {person['namespace_id']}", "email": person["email"], "country": "US",
            "address_line1": "1 Load Street", "city": "San Francisco", "state": "CA", "postal_code": "94105"})
        self.wait()
        roll = random.random()
        card = (K.DECLINED_CARD if roll < K.DECLINED_SHARE
                else K.THREE_DS_CARD if roll < K.DECLINED_SHARE + K.THREE_DS_SHARE else K.GOOD_CARD)
        if not self.capture_card(headers, card):
            if card != K.DECLINED_CARD:
                return  # a failure was recorded; this prospect leaves
            self.wait()  # "Your card was declined": they enter another one
            if not self.capture_card(headers, K.GOOD_CARD):
                return
        self.wait()
        if self.purchase(headers, selection, code):
            self.call("GET", f"/namespaces/{person['namespace_id']}/entitlements",
                      "/namespaces/[id]/entitlements", (200,), headers=headers)

    def try_code(self, headers: dict[str, str], selection: dict[str, Any]) -> str | None:
        """A quote always answers 200; code_result says applied, or why not (code_exhausted...)."""
        self.wait()
        _, quote = self.call("POST", "/quotes", "/quotes", (200,), headers=headers,
                             json={**selection, "discount_code": K.DISCOUNT_CODE})
        applied = isinstance(quote, dict) and (quote.get("code_result") or {}).get("applied")
        return K.DISCOUNT_CODE if applied else None

    def capture_card(self, headers: dict[str, str], number: str) -> bool:
        """Card set-up: our server's SetupIntent, the browser's confirmation at
        Stripe (as loadtests/stripejs.py does), then our server records the card."""
        status, setup = self.call("POST", "/billing-account/card-setup", "/billing-account/card-setup",
                                  (201,), headers=headers)
        if status != 201:
            return False
        seti = setup["setup_intent_id"]
        browser = {"key": setup["publishable_key"], "use_stripe_sdk": True,
                   "client_secret": setup["client_secret"]}
        declined = {402: frozenset({"card_declined"})} if number == K.DECLINED_CARD else None
        confirm = f"{K.STRIPE_URL}/v1/setup_intents/{seti}/confirm"
        status, intent = self.call(
            "POST", confirm, "stripe /v1/setup_intents/[id]/confirm", (200,), accept=declined,
            json={**browser, "payment_method_data": {
                "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
                "billing_details": {"address": {"postal_code": "94105"}}}})
        if status == 200 and intent.get("status") == "requires_action":
            self.wait()  # the bank's 3-D Secure page
            self.call("POST", confirm, "stripe /v1/setup_intents/[id]/confirm (3-D Secure)", (200,),
                      json=browser)
        status, _ = self.call("POST", "/billing-account/cards", "/billing-account/cards", (201,),
                              accept=declined, headers=headers, json={"setup_intent_id": seti})
        return status == 201

    def purchase(self, headers: dict[str, str], selection: dict[str, Any], code: str | None) -> bool:
        body = {**selection, "discount_code": code} if code else selection
        status, result = self.call(
            "POST", "/purchases", "/purchases", (201, 202), accept={422: K.CODE_REJECTIONS} if code else None,
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())}, json=body)
        if status == 422 and code:  # the offer ran out meanwhile: buy at list price
            self.wait()
            return self.purchase(headers, selection, None)
        if status == 202:
            return self.three_d_secure(headers, result)
        return status == 201

    def three_d_secure(self, headers: dict[str, str], result: dict[str, Any]) -> bool:
        """What stripe.confirmCardPayment does, then our confirm (devcard --pay)."""
        self.wait()
        secret = result["client_secret"]
        intent = secret.split("_secret_")[0]
        self.call("POST", f"{K.STRIPE_URL}/v1/payment_intents/{intent}/_authenticate?success=true",
                  "stripe /v1/payment_intents/[id]/_authenticate", (200,),
                  json={"key": "pk_test_localstripe", "client_secret": secret})
        status, _ = self.call("POST", f"/orders/{result['order']['id']}/confirm", "/orders/[id]/confirm",
                              (201,), headers=headers)
        return status == 201


class TrialOwner(Api):
    """An Owner of a Premium group looking at trials, now and then starting one."""

    weight = K.WEIGHTS["TrialOwner"]
    host = K.TRIALS_URL

    def on_start(self) -> None:
        person = take(K.OWNERS, "Premium Owners")
        self.headers = K.headers(person)
        self.ns = person["namespace_id"]

    @task
    def visit(self) -> None:
        """The trials page: eligibility first, then maybe start the Ultimate trial or look at the list."""
        self.call("GET", f"/namespaces/{self.ns}/trials/eligibility", "/namespaces/[id]/trials/eligibility",
                  (200,), headers=self.headers)
        roll = random.random()
        if roll < K.TRIAL_START_SHARE:
            self.wait()
            # 201 started; 200: already running, the same trial; 409: used up before.
            self.call("POST", f"/namespaces/{self.ns}/trials", "/namespaces/[id]/trials", (200, 201),
                      accept={409: frozenset({"already_trialed", "trial_active"})}, headers=self.headers,
                      json={"kind": "ultimate"})
        elif roll < K.TRIAL_START_SHARE + 0.3:
            self.wait()
            self.call("GET", f"/namespaces/{self.ns}/trials", "/namespaces/[id]/trials", (200,),
                      headers=self.headers)


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=2):
            return True
    except OSError:
        return False


class GrowthAnalyst(Api):
    """Reads experiment reports from the growth dashboard's JSON."""

    abstract = not K.EXPERIMENTS_URL  # no dashboard configured: this profile does not run
    weight = K.WEIGHTS["GrowthAnalyst"]
    host = K.EXPERIMENTS_URL or "http://127.0.0.1:8004"
    wait_time = between(5, 15)  # a person reading a report

    def on_start(self) -> None:
        self.keys = K.experiment_keys()
        person = K.ANALYSTS.take()  # a token with the growth role
        self.headers = K.headers(person) if person else {}
        self.idle = not (person and self.keys and _reachable(self.host))
        if self.idle:
            log.warning("growth dashboard %s not reachable, or no analyst token in %s: "
                        "this GrowthAnalyst stays idle", self.host, K.POPULATION)

    @task
    def report(self) -> None:
        if not self.idle:
            key = random.choice(self.keys)
            self.call("GET", f"/experiments/{key}.json", "/experiments/[key].json", (200,),
                      headers=self.headers)


# --- a ramping shape, only when asked for -----------------------------------------
if STAGES := parse_stages(os.environ.get("LOADTEST_STAGES", "")):

    class RampingShape(LoadTestShape):
        """LOADTEST_STAGES: each stage moves the user count to its target over its duration."""

        def tick(self) -> tuple[int, float] | None:
            return target(STAGES, self.get_run_time())


@events.test_start.add_listener
def _population_exists(environment: Any, **_: Any) -> None:
    """Plain `locust` without a population: one clear line, not a traceback per task."""
    if not K.POPULATION.exists():
        log.error("no population at %s: run `python -m loadtests.population` (or `make loadtest`) first",
                  K.POPULATION)
        environment.process_exit_code = 2
        if environment.runner is not None:
            environment.runner.quit()


# --- Server-Timing: where each endpoint's time went, averaged --------------------
_timing: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_project: dict[str, list[float]] = defaultdict(list)
_TIMING_PART = re.compile(r"(\w+);dur=([\d.]+)")


@events.request.add_listener
def _collect_server_timing(request_type: str, name: str, response: Any = None, **_: Any) -> None:
    header = response.headers.get("Server-Timing") if response is not None and response.headers else None
    if not header:
        return
    key = f"{request_type} {name}"
    tally = _timing[key]
    tally["count"] += 1
    parts = {part: float(ms) for part, ms in _TIMING_PART.findall(header)}
    for part, ms in parts.items():
        tally[part] += ms
    # The project's own share (database and application, not Stripe's), per request: its median.
    _project[key].append(parts.get("db", 0.0) + parts.get("app", 0.0))


@events.quitting.add_listener
def _write_server_timing(**_: Any) -> None:
    out = os.environ.get("LOADTEST_SERVER_TIMING_OUT")
    if not out:
        return
    means = {name: {k: round(v / t["count"], 2) for k, v in t.items() if k != "count"}
             | {"count": t["count"], "project_p50": round(statistics.median(_project[name]), 2)}
             for name, t in _timing.items() if t["count"]}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(means, indent=1, sort_keys=True))
