"""The synthetic population: idempotent, in its own id range, tokens with the role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loadtests import population
from services.checkout.adapters.models import BillingAccount, Membership, Namespace, Subscription, User
from services.common.auth import verify_token
from services.common.config import Settings
from services.common.db import make_engine
from tests.conftest import make_settings
from tests.support import TEST_SECRET

FIRST = population.FIRST_IDS["free"]


@pytest.fixture
def settings(checkout_db_url: str) -> Settings:
    return make_settings("checkout", checkout_db_url)


def counts(settings: Settings) -> dict[str, int]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        result = {model.__name__: s.scalar(select(func.count()).select_from(model)) or 0
                  for model in (User, Namespace, Membership, BillingAccount, Subscription)}
    engine.dispose()
    return result


def test_provisioning_twice_adds_nothing_and_tokens_carry_the_role(settings: Settings) -> None:
    first = population.provision(settings, first_id=FIRST, count=5, kind="free")
    after_first = counts(settings)
    again = population.provision(settings, first_id=FIRST, count=5, kind="free")
    assert counts(settings) == after_first
    assert [u.user_id for u in first] == [u.user_id for u in again] == list(range(FIRST, FIRST + 5))
    assert after_first["User"] == after_first["Namespace"] == after_first["Membership"] == 5
    for user in first:
        principal = verify_token(TEST_SECRET, user.token)
        assert principal.user_id == user.user_id == user.namespace_id
        assert principal.roles == frozenset({"synthetic"})
    # A longer range adds only what is missing.
    population.provision(settings, first_id=FIRST, count=7, kind="free")
    assert counts(settings)["Namespace"] == 7


def test_premium_owners_have_an_active_subscription_and_the_role_is_a_parameter(settings: Settings) -> None:
    first = population.FIRST_IDS["premium"]
    owners = population.provision(settings, first_id=first, count=3, kind="premium", role="demo")
    population.provision(settings, first_id=first, count=3, kind="premium", role="demo")
    assert {verify_token(TEST_SECRET, o.token).roles for o in owners} == {frozenset({"demo"})}
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        subs = s.scalars(select(Subscription).where(Subscription.namespace_id >= first)).all()
        namespaces = s.scalars(select(Namespace).where(Namespace.id >= first)).all()
        roles = s.scalars(select(Membership.role).where(Membership.namespace_id >= first)).all()
    engine.dispose()
    assert len(subs) == 3 and {(x.plan, x.status) for x in subs} == {("premium", "active")}
    assert {n.plan for n in namespaces} == {"premium"} and all(n.parent_id is None for n in namespaces)
    assert roles == ["owner"] * 3


def test_prospects_are_only_groups_nobody_bought_yet(settings: Settings) -> None:
    population.provision(settings, first_id=FIRST, count=4, kind="free")
    engine = make_engine(settings.database_url)
    with Session(engine) as s:  # as if a load test had bought the second one
        s.get(Namespace, FIRST + 1).plan = "premium"  # type: ignore[union-attr]
        s.commit()
    engine.dispose()
    fresh = population.prospects(settings, 4)
    assert [p.namespace_id for p in fresh] == [FIRST, FIRST + 2, FIRST + 3, FIRST + 4]


def test_the_command_writes_population_json(settings: Settings, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AUTH_SECRET", TEST_SECRET)
    out = tmp_path / "population.json"
    assert population.main(["--count", "3", "--kind", "free", "--out", str(out)]) == 0
    assert population.main(["--count", "2", "--kind", "premium", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [u["user_id"] for u in data["free"]] == [FIRST, FIRST + 1, FIRST + 2]
    assert len(data["premium"]) == 2 and data["meta"]["role"] == "synthetic"
    assert verify_token(TEST_SECRET, data["premium"][0]["token"]).roles == frozenset({"synthetic"})


def test_analysts_are_tokens_with_the_growth_role(settings: Settings) -> None:
    before = counts(settings)
    readers = population.analysts(settings, 2)
    assert counts(settings) == before  # nothing written: the dashboard reads tokens only
    assert [verify_token(TEST_SECRET, a.token).roles for a in readers] == [
        frozenset({"synthetic", "growth"})] * 2
    assert readers[0].user_id == population.FIRST_IDS["analyst"]
