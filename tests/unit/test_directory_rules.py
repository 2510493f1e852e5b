"""The directory's rules: roles, who takes a seat, and which of two changes is later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.checkout.domain import directory as D

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EARLIER = AT - timedelta(seconds=1)


def test_the_platforms_access_levels_are_checkouts_roles() -> None:
    assert [D.role_of(a) for a in ("Guest", "Reporter", "Developer", "Maintainer", "Owner")] == [
        "guest", "reporter", "developer", "maintainer", "owner"]
    assert all(D.ACCESS_LEVELS[D.role_of(a)] == a for a in D.ROLES)
    with pytest.raises(ValueError):
        D.role_of("Admin")


@pytest.mark.parametrize("role, plan, billable", [
    ("guest", "ultimate", False), ("guest", "premium", True), ("guest", "free", True),
    ("reporter", "ultimate", True), ("owner", "ultimate", True), ("developer", "premium", True)])
def test_every_member_takes_a_seat_but_guests_on_ultimate(role: str, plan: str, billable: bool) -> None:
    assert D.is_billable(role, plan) is billable


@pytest.mark.parametrize("event, at, last_event, last_at, stale", [
    (D.MEMBER_UPDATE, EARLIER, D.MEMBER_UPDATE, AT, True),   # older
    (D.MEMBER_UPDATE, AT, D.MEMBER_ADD, EARLIER, False),    # newer
    (D.MEMBER_ADD, AT, D.MEMBER_ADD, AT, False),            # the same change again
    (D.MEMBER_UPDATE, AT, D.MEMBER_ADD, AT, False),         # same second: an update follows an add
    (D.MEMBER_ADD, AT, D.MEMBER_UPDATE, AT, True),
    (D.MEMBER_ADD, AT, D.MEMBER_REMOVE, AT, True),          # same second: a removal stands
    (D.MEMBER_UPDATE, AT, D.MEMBER_REMOVE, AT, True),
    (D.MEMBER_REMOVE, AT, D.MEMBER_UPDATE, AT, False),
    (D.MEMBER_ADD, AT + timedelta(seconds=1), D.MEMBER_REMOVE, AT, False),  # added again later
    (D.GROUP_CREATE, AT, D.GROUP_RENAME, AT, True),
    (D.GROUP_RENAME, AT, D.GROUP_CREATE, AT, False),
])
def test_an_older_change_is_stale(event: str, at: datetime, last_event: str, last_at: datetime,
                                  stale: bool) -> None:
    assert D.is_stale(event, at, last_event, last_at) is stale


def test_subgroups_follow_their_ancestors_path() -> None:
    assert D.moved_path("acme/backend/api", "acme", "acme-corp") == "acme-corp/backend/api"
    assert D.moved_path("acme-labs", "acme", "acme-corp") is None  # a sibling with a longer name
    assert D.moved_path("acme", "acme", "acme-corp") is None  # the group itself is renamed by its hook
