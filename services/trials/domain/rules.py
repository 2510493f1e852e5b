"""Trial rules: who may start which trial, for how long, and what support may
do with it. Plain Python over data from `data/rules.toml`."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

RULES_FILE = Path(__file__).resolve().parents[1] / "data" / "rules.toml"


class TrialStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    CONVERTED = "converted"


@dataclass(frozen=True)
class TrialKind:
    id: str
    name: str
    eligible_plans: tuple[str, ...]
    duration_days: MappingProxyType[str, int]  # by the namespace's paid plan
    grants_plan: str | None = None
    grants_addon: str | None = None
    max_seats: int | None = None


@dataclass(frozen=True)
class TrialRules:
    kinds: MappingProxyType[str, TrialKind]
    recently_expired_days: int
    extension_days: int
    reactivation_days: int
    ending_reminder_days: tuple[int, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRules:
        kinds = {}
        for key, v in data["kinds"].items():
            durations = v["duration_days"]
            if not set(durations) <= set(v["eligible_plans"]):
                raise ValueError(f"trial kind {key}: durations for plans it is not offered on")
            kinds[key] = TrialKind(key, v["name"], tuple(v["eligible_plans"]),
                                   MappingProxyType(dict(durations)), v.get("grants_plan"),
                                   v.get("grants_addon"), v.get("max_seats"))
        return cls(MappingProxyType(kinds), int(data["recently_expired_days"]),
                   int(data["extension_days"]), int(data["reactivation_days"]),
                   tuple(data["ending_reminder_days"]))

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> TrialRules:
        with path.open("rb") as fh:
            return cls.from_dict(tomllib.load(fh))


@dataclass(frozen=True)
class Namespace:
    """What checkout tells us about a namespace and the person asking."""

    id: int
    path: str
    kind: str  # group or user
    is_top_level: bool
    plan: str  # the paid plan
    role: str | None
    billable_members: int
    addons_purchased: tuple[str, ...]


@dataclass(frozen=True)
class PastTrial:
    kind: str
    status: TrialStatus
    ends_at: datetime


@dataclass(frozen=True)
class Verdict:
    kind: str
    eligible: bool
    reason: str | None = None
    message: str | None = None
    duration_days: int | None = None


def verdict(rules: TrialRules, kind_id: str, ns: Namespace, history: dict[str, PastTrial],
            duration_override: int | None = None) -> Verdict:
    """May this person start this trial on this namespace now? First reason wins."""
    kind = rules.kinds[kind_id]

    def no(reason: str, message: str) -> Verdict:
        return Verdict(kind_id, False, reason, message)

    if ns.role != "owner":
        return no("not_owner", f"Only Owners of {ns.path} can start a trial.")
    if ns.kind != "group":
        return no("not_a_group", "Trials are for groups, not personal namespaces.")
    if not ns.is_top_level:
        return no("not_top_level", "Trials are for top-level groups; start it on the parent group.")
    past = history.get(kind_id)
    if past is not None and past.status is TrialStatus.ACTIVE:
        return no("trial_active", f"{ns.path} is already trying {kind.name}.")
    if past is not None:
        return no("already_trialed", f"{ns.path} has had its {kind.name} trial.")
    if kind.grants_addon and kind.grants_addon in ns.addons_purchased:
        return no("addon_already_purchased", f"{ns.path} has bought {kind.name} already.")
    if ns.plan not in kind.eligible_plans:
        plans = " or ".join(p.title() for p in kind.eligible_plans)
        return no("plan_not_eligible", f"The {kind.name} trial is for {plans} namespaces.")
    days = duration_override or kind.duration_days[ns.plan]
    return Verdict(kind_id, True, duration_days=days)


def trial_seats(kind: TrialKind, ns: Namespace) -> int | None:
    """Add-on trials cover the namespace's billable members, up to the kind's cap."""
    if not kind.grants_addon:
        return None
    seats = max(1, ns.billable_members)
    return min(seats, kind.max_seats) if kind.max_seats else seats


def ends_at(started: datetime, days: int) -> datetime:
    return started + timedelta(days=days)


def recently_expired(rules: TrialRules, trial: PastTrial, now: datetime) -> bool:
    return trial.status is TrialStatus.EXPIRED and now - trial.ends_at <= timedelta(
        days=rules.recently_expired_days)


def extension_refusal(status: TrialStatus, extended: bool, reactivated: bool) -> tuple[str, str] | None:
    """Support may extend an active trial once, or reactivate an expired one once: not both."""
    if status is not TrialStatus.ACTIVE:
        return "trial_not_active", "Only an active trial can be extended."
    if extended:
        return "already_extended", "This trial has been extended once already."
    if reactivated:
        return "already_reactivated", "A reactivated trial can not also be extended."
    return None


def reactivation_refusal(kind: TrialKind, status: TrialStatus, extended: bool, reactivated: bool,
                         plan: str) -> tuple[str, str] | None:
    if status is not TrialStatus.EXPIRED:
        return "trial_not_expired", "Only an expired trial can be reactivated."
    if reactivated:
        return "already_reactivated", "This trial has been reactivated once already."
    if extended:
        return "already_extended", "An extended trial can not be reactivated."
    # An Ultimate trial comes back for a namespace back on Free; an add-on trial
    # for a namespace still on a plan the add-on is offered on.
    allowed = ("free",) if kind.grants_plan else kind.eligible_plans
    if plan not in allowed:
        plans = " or ".join(p.title() for p in allowed)
        return "plan_not_eligible", (
            "Only a namespace back on Free can have its Ultimate trial reactivated." if kind.grants_plan
            else f"The {kind.name} trial can be reactivated on {plans} only.")
    return None
