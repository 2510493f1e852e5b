"""The synthetic population, made over HTTP as an outside tester makes it:
idempotent, in its own id range, tokens with the role, Premium groups bought."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity.auth import verify_token
from loadtests import population, tokens
from services.checkout.adapters.models import (
    BillingAccount,
    Membership,
    Namespace,
    Order,
    OutboxMessage,
    Subscription,
    User,
)
from services.common.config import DEV_AUTH_SECRET
from tests.support import TEST_SECRET, LiveServer, LocalStripe, auth

FIRST = population.FIRST_IDS["free"]


@pytest.fixture
def stack(live_checkout: LiveServer, localstripe: LocalStripe) -> population.Stack:
    return population.Stack(checkout_url=live_checkout.url, stripe_url=localstripe.url, secret=TEST_SECRET)


def counts(app: Flask) -> dict[str, int]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return {model.__name__: s.scalar(select(func.count()).select_from(model)) or 0
                for model in (User, Namespace, Membership, BillingAccount, Subscription)}


def test_provisioning_twice_adds_nothing_and_tokens_carry_the_role(stack: population.Stack,
                                                                    stripe_app: Flask) -> None:
    before = counts(stripe_app)
    first = population.provision(stack, first_id=FIRST, count=5, kind="free")
    after_first = counts(stripe_app)
    again = population.provision(stack, first_id=FIRST, count=5, kind="free")
    assert counts(stripe_app) == after_first
    assert [u.user_id for u in first] == [u.user_id for u in again] == list(range(FIRST, FIRST + 5))
    assert {k: after_first[k] - before[k] for k in ("User", "Namespace", "Membership")} == {
        "User": 5, "Namespace": 5, "Membership": 5}
    client = stripe_app.test_client()
    for user in first:
        principal = verify_token(TEST_SECRET, user.token)
        assert principal.user_id == user.user_id == user.namespace_id
        assert principal.roles == frozenset({"synthetic"})
        group = client.get(f"/namespaces/{user.namespace_id}", headers=auth(user.user_id)).json
        assert (group["role"], group["plan"], group["parent_id"]) == ("owner", "free", None)
    # The directory's events of a load test are synthetic: no analysis sees them.
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        sent = s.scalars(select(OutboxMessage).where(OutboxMessage.published_at.is_(None))).all()
    assert len(sent) == 10 and {m.payload["traffic"] for m in sent} == {"synthetic"}
    # A longer range adds only what is missing.
    population.provision(stack, first_id=FIRST, count=7, kind="free")
    assert counts(stripe_app)["Namespace"] == after_first["Namespace"] + 2


def test_premium_owners_have_an_active_subscription_and_the_role_is_a_parameter(
        stack: population.Stack, stripe_app: Flask) -> None:
    first = population.FIRST_IDS["premium"]
    owners = population.provision(stack, first_id=first, count=3, kind="premium", role="demo")
    population.provision(stack, first_id=first, count=3, kind="premium", role="demo")  # bought once
    assert {verify_token(TEST_SECRET, o.token).roles for o in owners} == {frozenset({"demo"})}
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        subs = s.scalars(select(Subscription).where(Subscription.namespace_id >= first)).all()
        namespaces = s.scalars(select(Namespace).where(Namespace.id >= first)).all()
        roles = s.scalars(select(Membership.role).where(Membership.namespace_id >= first)).all()
        orders = s.scalars(select(Order).where(Order.namespace_id >= first)).all()
    assert len(subs) == 3 and {(x.plan, x.status, x.seats) for x in subs} == {("premium", "active", 5)}
    assert {n.plan for n in namespaces} == {"premium"} and all(n.parent_id is None for n in namespaces)
    assert roles == ["owner"] * 3
    # Bought as a buyer buys, but as set-up: synthetic, out of the demo's analysis.
    assert [(o.status, o.traffic) for o in orders] == [("completed", "synthetic")] * 3


def test_prospects_are_groups_nobody_had_yet(stack: population.Stack, stripe_app: Flask) -> None:
    population.provision(stack, first_id=FIRST, count=4, kind="free")
    fresh = population.prospects(stack, 4)
    assert [p.namespace_id for p in fresh] == list(range(FIRST + 4, FIRST + 8))
    later = population.prospects(stack, 2)
    assert [p.namespace_id for p in later] == [FIRST + 8, FIRST + 9]
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        assert s.scalars(select(Order).where(Order.namespace_id >= FIRST)).all() == []


def test_the_command_writes_population_json(stack: population.Stack, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_URL", stack.checkout_url)
    monkeypatch.setenv("STRIPE_URL", stack.stripe_url)
    monkeypatch.setenv("AUTH_SECRET", TEST_SECRET)
    out = tmp_path / "population.json"
    assert population.main(["--count", "3", "--kind", "free", "--out", str(out)]) == 0
    assert population.main(["--count", "2", "--kind", "premium", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [u["user_id"] for u in data["free"]] == [FIRST, FIRST + 1, FIRST + 2]
    assert len(data["premium"]) == 2 and data["meta"] == {"role": "synthetic", "checkout": stack.checkout_url}
    assert verify_token(TEST_SECRET, data["premium"][0]["token"]).roles == frozenset({"synthetic"})


def test_a_stack_with_another_secret_refuses_and_the_command_says_so(
        stack: population.Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(population.PopulationError, match="AUTH_SECRET"):
        population.provision(population.Stack(stack.checkout_url, stack.stripe_url, "not-the-stack-secret-but-long-enough-to-sign"),
                             first_id=FIRST, count=1, kind="free")
    monkeypatch.setenv("CHECKOUT_URL", stack.checkout_url)
    monkeypatch.delenv("AUTH_SECRET", raising=False)  # the development secret: not this stack's
    assert population.main(["--count", "1", "--kind", "free", "--out", str(tmp_path / "p.json")]) == 2
    assert "HTTP 401" in capsys.readouterr().err and not (tmp_path / "p.json").exists()


def test_analysts_are_tokens_with_the_growth_role(stack: population.Stack, stripe_app: Flask) -> None:
    before = counts(stripe_app)
    readers = population.analysts(stack, 2)
    assert counts(stripe_app) == before  # nothing made: the dashboard reads tokens only
    assert [verify_token(TEST_SECRET, a.token).roles for a in readers] == [
        frozenset({"synthetic", "growth"})] * 2
    assert readers[0].user_id == population.FIRST_IDS["analyst"]


def test_tokens_are_signed_as_the_services_check_them(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert tokens.DEV_AUTH_SECRET == DEV_AUTH_SECRET  # `make run` needs no AUTH_SECRET
    principal = verify_token(TEST_SECRET, tokens.platform_token(TEST_SECRET, "demo"))
    assert principal.roles == frozenset({"service", "demo"})
    # What the README has an outside tester run.
    monkeypatch.setenv("AUTH_SECRET", TEST_SECRET)
    assert tokens.main(["--service"]) == 0
    assert verify_token(TEST_SECRET, capsys.readouterr().out.strip()).roles == frozenset({"service"})
    assert tokens.main(["--user", "900", "--email", "ida@initech.test"]) == 0
    ida = verify_token(TEST_SECRET, capsys.readouterr().out.strip())
    assert (ida.user_id, ida.email, ida.roles) == (900, "ida@initech.test", frozenset())
