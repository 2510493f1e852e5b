"""The namespace facts trials keeps (its read model of checkout's directory):
which of two changes is the later one, and who takes a seat. Plain Python.

Checkout publishes every directory change with the platform's time
(`changed_at`); events still reach trials late, twice or out of order, so
each group and membership keeps the time and kind of the change applied last
and an older one is ignored, as checkout does with the platform's hooks.
"""

from __future__ import annotations

from datetime import datetime

GROUP_CREATED, GROUP_RENAMED, GROUP_DESTROYED = "group_created", "group_renamed", "group_destroyed"
MEMBER_ADDED, MEMBER_UPDATED, MEMBER_REMOVED = "member_added", "member_updated", "member_removed"

# Two changes stamped with the same time: an add before an update, both before a
# removal, so a late add never brings back what was removed (checkout's order).
_RANK = {GROUP_CREATED: 0, GROUP_RENAMED: 1, GROUP_DESTROYED: 2,
         MEMBER_ADDED: 0, MEMBER_UPDATED: 1, MEMBER_REMOVED: 2}


def is_stale(event: str, at: datetime, last_event: str, last_at: datetime) -> bool:
    """Whether `event` at `at` is older than the change applied last: then it is ignored."""
    return (at, _RANK[event]) < (last_at, _RANK[last_event])


def is_billable(role: str, plan: str) -> bool:
    """The platform's rule, as checkout applies it: every member takes a seat
    except Guests on Ultimate; `plan` is the top-level group's."""
    return not (role == "guest" and plan == "ultimate")


def billable_count(roles: list[str], top_plan: str) -> int:
    return sum(1 for role in roles if is_billable(role, top_plan))


def moved_path(path: str, old_prefix: str, new_prefix: str) -> str | None:
    """A descendant's path once its ancestor moved; None if it is no descendant."""
    if not path.startswith(old_prefix + "/"):
        return None
    return new_prefix + path[len(old_prefix):]
