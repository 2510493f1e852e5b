"""The order and seat rules of trials' read model of namespaces (services/trials/domain/directory.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.trials.domain import directory as D

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("event,at,last_event,last_at,stale", [
    (D.MEMBER_UPDATED, T - timedelta(seconds=1), D.MEMBER_UPDATED, T, True),  # older: ignored
    (D.MEMBER_UPDATED, T + timedelta(seconds=1), D.MEMBER_REMOVED, T, False),  # newer: applied
    (D.MEMBER_ADDED, T, D.MEMBER_REMOVED, T, True),  # same second: a removal stays
    (D.MEMBER_REMOVED, T, D.MEMBER_ADDED, T, False),
    (D.MEMBER_UPDATED, T, D.MEMBER_UPDATED, T, False),  # a repeat changes nothing anyway
    (D.GROUP_RENAMED, T, D.GROUP_DESTROYED, T, True),
])
def test_the_later_change_wins(event: str, at: datetime, last_event: str, last_at: datetime,
                               stale: bool) -> None:
    assert D.is_stale(event, at, last_event, last_at) is stale


def test_guests_take_no_seat_on_ultimate_only() -> None:
    roles = ["owner", "developer", "guest", "guest"]
    assert D.billable_count(roles, "ultimate") == 2
    assert D.billable_count(roles, "premium") == D.billable_count(roles, "free") == 4


def test_a_rename_moves_descendants_only() -> None:
    assert D.moved_path("acme/backend/api", "acme", "acme-corp") == "acme-corp/backend/api"
    assert D.moved_path("acmeish", "acme", "acme-corp") is None
