"""Demo traffic: people walking the funnel against a running `make run`, so the
experiments have data to show.

    python -m loadtests.traffic --prospects 300 --owners 120

Every request is real HTTP through the services (and localstripe for cards),
marked `X-Traffic-Source: demo` with demo-role tokens: demo traffic counts in
the analysis (synthetic load-test traffic does not) and can be told apart from
real buyers. The people are new Owners made for the run through checkout's
directory hooks (loadtests/population.py); the Premium groups of the trial
Owners are bought first, as synthetic traffic that no analysis sees.
CHECKOUT_URL, TRIALS_URL, STRIPE_URL and AUTH_SECRET say where the stack is
(`make run`'s by default).

How the simulated people behave is made up, and said here so nobody mistakes
it for a finding: a prospect shown the SMB prompt uses the code more often,
and a discount makes buying more likely; a bigger default seat count makes it
a little less likely; a 30-day trial converts a little more often than a
60-day one; an offered Duo Pro trial is started by some. The report should
find roughly these effects, and nothing where there is none.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from loadtests.knobs import DECLINED_CARD, GOOD_CARD
from loadtests.platform import TRAFFIC_HEADER
from loadtests.population import PopulationError, Stack, SyntheticUser, await_trials, fresh, prospects
from loadtests.stripejs import confirm_card_setup

DEMO = "demo"  # the role and traffic source of demo people
DEMO_FIRST_IDS = {"free": 3_000_000, "premium": 4_000_000}
ACCOUNT = {"company": "Demo Co", "email": "billing@demo.invalid", "country": "US",
           "address_line1": "1 Demo Street", "city": "Springfield", "state": "IL", "postal_code": "62701"}


@dataclass(frozen=True)
class Behaviour:
    """The made-up chances behind the demo (see the module's docstring)."""

    quote: float = 0.75
    ultimate_share: float = 0.2
    code_when_prompted: float = 0.6
    code_unprompted: float = 0.1
    buy: float = 0.35
    buy_with_discount: float = 0.5
    buy_with_headroom_factor: float = 0.9
    declined_first_card: float = 0.1
    start_trial: float = 0.7
    start_offered_duo: float = 0.4
    convert_60_days: float = 0.2
    convert_30_days: float = 0.26


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1


class Person:
    """One demo Owner's HTTP session, marked as demo traffic."""

    def __init__(self, user: SyntheticUser, urls: dict[str, str], stripe_base: str) -> None:
        self.user = user
        self.urls = urls
        self.stripe_base = stripe_base
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {user.token}", TRAFFIC_HEADER: DEMO})
        self.browser = requests.Session()  # what talks to Stripe: never our token

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.urls[service]}{path}", timeout=30, **kwargs)

    def add_card(self, number: str) -> bool:
        setup = self.call("POST", "checkout", "/billing-account/card-setup")
        if setup.status_code != 201:
            return False
        body = setup.json()
        if not confirm_card_setup(self.browser, self.stripe_base, body["client_secret"], number):
            return False
        # As the checkout page does: the card typed at checkout is the one that pays.
        recorded = self.call("POST", "checkout", "/billing-account/cards",
                             json={"setup_intent_id": body["setup_intent_id"], "make_default": True})
        return recorded.status_code in (200, 201)

    def buy(self, plan: str, seats: int, code: str | None) -> bool:
        body: dict[str, Any] = {"namespace_id": self.user.namespace_id, "plan": plan, "seats": seats}
        if code:
            body["discount_code"] = code
        response = self.call("POST", "checkout", "/purchases", json=body,
                             headers={"Idempotency-Key": str(uuid.uuid4())})
        return response.status_code in (200, 201) and response.json().get("status") == "completed"


def prospect(person: Person, rng: random.Random, odds: Behaviour, tally: Tally) -> None:
    ns = person.user.namespace_id
    offer = person.call("GET", "checkout", f"/namespaces/{ns}/checkout-offer")
    if offer.status_code != 200:
        tally.add(f"offer failed {offer.status_code}")
        return
    shown = offer.json()
    tally.add("offers seen")
    if rng.random() > odds.quote:
        return
    plan = "ultimate" if rng.random() < odds.ultimate_share else "premium"
    seats = shown["default_seats"]
    prompt = shown["smb_prompt"]
    wants_code = rng.random() < (odds.code_when_prompted if prompt else odds.code_unprompted)
    code = prompt["code"] if prompt else "SMB2026"
    quote = person.call("POST", "checkout", "/quotes", json={
        "namespace_id": ns, "plan": plan, "seats": seats, "discount_code": code if wants_code else None})
    if quote.status_code != 200:
        tally.add(f"quote failed {quote.status_code}")
        return
    applied = bool((quote.json().get("code_result") or {}).get("applied"))
    chance = odds.buy_with_discount if applied else odds.buy
    if seats > shown["minimum_seats"]:
        chance *= odds.buy_with_headroom_factor
    if rng.random() > chance:
        return
    person.call("PUT", "checkout", "/billing-account", json=ACCOUNT)
    if rng.random() < odds.declined_first_card and not person.add_card(DECLINED_CARD):
        tally.add("cards declined")
        if rng.random() < 0.5:
            return
    if not person.add_card(GOOD_CARD):
        tally.add("card failed")
        return
    tally.add("purchases" if person.buy(plan, seats, code if applied else None) else "purchase failed")


def trial_owner(person: Person, rng: random.Random, odds: Behaviour, tally: Tally) -> None:
    ns = person.user.namespace_id
    verdicts = person.call("GET", "trials", f"/namespaces/{ns}/trials/eligibility")
    if verdicts.status_code != 200:
        tally.add(f"eligibility failed {verdicts.status_code}")
        return
    ultimate = next(v for v in verdicts.json() if v["kind"] == "ultimate")
    if not ultimate["eligible"] or rng.random() > odds.start_trial:
        return
    started = person.call("POST", "trials", f"/namespaces/{ns}/trials", json={"kind": "ultimate"})
    if started.status_code != 201:
        tally.add(f"trial start failed {started.status_code}")
        return
    tally.add("ultimate trials")
    offer = started.json().get("upsell")
    if offer and rng.random() < odds.start_offered_duo:
        duo = person.call("POST", "trials", f"/namespaces/{ns}/trials", json={"kind": offer["kind"]})
        tally.add("duo pro trials" if duo.status_code == 201 else f"duo start failed {duo.status_code}")
    convert = odds.convert_30_days if ultimate["duration_days"] <= 30 else odds.convert_60_days
    if rng.random() < convert and person.add_card(GOOD_CARD):
        tally.add("upgrades" if person.buy("ultimate", 5, None) else "upgrade failed")


def run(stack: Stack, prospect_count: int, owner_count: int, workers: int = 6,
        seed: int = 7) -> Counter[str]:
    """Make the people in `stack` and walk them through its services."""
    urls = {"checkout": stack.checkout_url, "trials": stack.trials_url}
    stripe_base = stack.stripe_url
    buyers = prospects(stack, prospect_count, role=DEMO, first_id=DEMO_FIRST_IDS["free"])
    # Premium Owners who have not started a trial: each run takes the ids after the last run's.
    owners = fresh(stack, owner_count, kind="premium", role=DEMO, first_id=DEMO_FIRST_IDS["premium"])
    await_trials(stack, owners, role=DEMO)
    odds, tally = Behaviour(), Tally()
    jobs = [(prospect, user) for user in buyers] + [(trial_owner, user) for user in owners]
    random.Random(seed).shuffle(jobs)

    def one(index: int) -> None:
        walk, user = jobs[index]
        try:
            walk(Person(user, urls, stripe_base), random.Random(seed * 1_000_003 + index), odds, tally)
        except requests.RequestException as exc:
            tally.add(f"unreachable: {type(exc).__name__}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(len(jobs))))
    return tally.counts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.traffic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prospects", type=int, default=300, help="Free-group Owners who may buy")
    parser.add_argument("--owners", type=int, default=120, help="Premium Owners who may start trials")
    parser.add_argument("--workers", type=int, default=6, help="people walking at once")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        counts = run(Stack.from_env(), args.prospects, args.owners, args.workers, args.seed)
    except requests.RequestException as exc:
        print(f"traffic: the stack is not reachable ({exc}); start it with `make run`", file=sys.stderr)
        return 1
    except PopulationError as exc:
        print(f"traffic: could not make the demo people: {exc}", file=sys.stderr)
        return 1
    for what, n in sorted(counts.items()):
        print(f"  {what:<28} {n}")
    print("The worker copies the events to the experiments' store within seconds; then "
          "`make report KEY=smb-discount-prompt` or the dashboard.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
