"""Every trial rule, as pure functions over the rules data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.trials.domain.rules import (
    Namespace,
    PastTrial,
    TrialRules,
    TrialStatus,
    ends_at,
    extension_refusal,
    reactivation_refusal,
    recently_expired,
    trial_seats,
    verdict,
)

RULES = TrialRules.load()
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
FREE = Namespace(id=100, path="acme", kind="group", is_top_level=True, plan="free", role="owner",
                 billable_members=3, addons_purchased=())
PREMIUM = replace(FREE, id=200, path="globex", plan="premium")
ULTIMATE = replace(FREE, id=300, path="initech", plan="ultimate", billable_members=250)


def reason(kind: str, ns: Namespace, history: dict[str, PastTrial] | None = None) -> str | None:
    return verdict(RULES, kind, ns, history or {}).reason


def test_rules_come_from_data() -> None:
    assert RULES.kinds["ultimate"].duration_days == {"free": 30, "premium": 60}
    assert RULES.kinds["duo_enterprise"].max_seats == 100
    assert RULES.recently_expired_days == 10


def test_rules_refuse_durations_for_plans_a_kind_is_not_offered_on() -> None:
    with pytest.raises(ValueError, match="not offered"):
        TrialRules.from_dict({"recently_expired_days": 1, "extension_days": 1, "reactivation_days": 1,
                              "ending_reminder_days": [1], "kinds": {"x": {
                                  "name": "X", "eligible_plans": ["free"],
                                  "duration_days": {"premium": 3}}}})


@pytest.mark.parametrize("ns,days", [(FREE, 30), (PREMIUM, 60)])
def test_ultimate_trial_on_free_and_on_premium(ns: Namespace, days: int) -> None:
    decision = verdict(RULES, "ultimate", ns, {})
    assert decision.eligible and decision.duration_days == days


def test_duration_override_for_experiments() -> None:
    assert verdict(RULES, "ultimate", PREMIUM, {}, duration_override=30).duration_days == 30


@pytest.mark.parametrize("change,expected", [
    ({"role": "maintainer"}, "not_owner"),
    ({"role": None}, "not_owner"),
    ({"kind": "user"}, "not_a_group"),
    ({"is_top_level": False}, "not_top_level"),
    ({"plan": "ultimate"}, "plan_not_eligible"),
])
def test_ultimate_refusals(change: dict, expected: str) -> None:
    assert reason("ultimate", replace(FREE, **change)) == expected


def test_one_ultimate_trial_ever() -> None:
    active = {"ultimate": PastTrial("ultimate", TrialStatus.ACTIVE, NOW + timedelta(days=3))}
    assert reason("ultimate", FREE, active) == "trial_active"
    for status in (TrialStatus.EXPIRED, TrialStatus.CONVERTED):
        past = {"ultimate": PastTrial("ultimate", status, NOW - timedelta(days=300))}
        assert reason("ultimate", FREE, past) == "already_trialed"
    # Another kind's history does not count.
    other = {"duo_pro": PastTrial("duo_pro", TrialStatus.EXPIRED, NOW)}
    assert reason("ultimate", FREE, other) is None


def test_duo_pro_is_for_premium_namespaces_that_never_bought_it() -> None:
    assert reason("duo_pro", PREMIUM) is None
    assert reason("duo_pro", FREE) == "plan_not_eligible"
    assert reason("duo_pro", replace(PREMIUM, addons_purchased=("duo_pro",))) == "addon_already_purchased"


def test_duo_enterprise_is_for_ultimate_with_at_most_100_seats() -> None:
    assert reason("duo_enterprise", ULTIMATE) is None
    assert reason("duo_enterprise", PREMIUM) == "plan_not_eligible"
    assert trial_seats(RULES.kinds["duo_enterprise"], ULTIMATE) == 100
    assert trial_seats(RULES.kinds["duo_enterprise"], replace(ULTIMATE, billable_members=7)) == 7
    assert trial_seats(RULES.kinds["duo_pro"], replace(PREMIUM, billable_members=0)) == 1
    assert trial_seats(RULES.kinds["ultimate"], FREE) is None


def test_recently_expired_window() -> None:
    ended = NOW - timedelta(days=10)
    assert recently_expired(RULES, PastTrial("ultimate", TrialStatus.EXPIRED, ended), NOW)
    assert not recently_expired(RULES, PastTrial("ultimate", TrialStatus.EXPIRED, ended - timedelta(seconds=1)), NOW)
    assert not recently_expired(RULES, PastTrial("ultimate", TrialStatus.CONVERTED, NOW), NOW)


def test_support_extends_an_active_trial_once() -> None:
    assert extension_refusal(TrialStatus.ACTIVE, extended=False, reactivated=False) is None
    assert extension_refusal(TrialStatus.ACTIVE, extended=True, reactivated=False)[0] == "already_extended"
    assert extension_refusal(TrialStatus.EXPIRED, extended=False, reactivated=False)[0] == "trial_not_active"
    assert extension_refusal(TrialStatus.ACTIVE, extended=False, reactivated=True)[0] == "already_reactivated"


@pytest.mark.parametrize("status,extended,reactivated,plan,expected", [
    (TrialStatus.EXPIRED, False, False, "free", None),
    (TrialStatus.ACTIVE, False, False, "free", "trial_not_expired"),
    (TrialStatus.EXPIRED, False, True, "free", "already_reactivated"),
    (TrialStatus.EXPIRED, True, False, "free", "already_extended"),
    (TrialStatus.EXPIRED, False, False, "premium", "plan_not_eligible"),
    (TrialStatus.CONVERTED, False, False, "free", "trial_not_expired"),
])
def test_support_reactivates_an_expired_trial_once(status: TrialStatus, extended: bool, reactivated: bool,
                                                   plan: str, expected: str | None) -> None:
    refusal = reactivation_refusal(RULES.kinds["ultimate"], status, extended, reactivated, plan)
    assert (refusal[0] if refusal else None) == expected


@pytest.mark.parametrize("kind,plan,expected", [("duo_pro", "premium", None), ("duo_pro", "free", "plan_not_eligible"),
                                                ("duo_enterprise", "ultimate", None),
                                                ("duo_enterprise", "premium", "plan_not_eligible")])
def test_addon_trials_reactivate_on_their_own_plans(kind: str, plan: str, expected: str | None) -> None:
    refusal = reactivation_refusal(RULES.kinds[kind], TrialStatus.EXPIRED, False, False, plan)
    assert (refusal[0] if refusal else None) == expected


def test_ends_at_adds_whole_days() -> None:
    assert ends_at(NOW, 60) == datetime(2027, 1, 20, 12, tzinfo=UTC)
