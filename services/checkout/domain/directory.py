"""The platform's directory as checkout sees it: roles, who is billable, and
which of two changes to the same group or membership is the later one.

The platform owns groups and members and tells checkout about changes with
system hooks that can come late, twice or out of order (../shared/domain.md).
"""

from __future__ import annotations

from datetime import datetime

# The platform's access levels (a hook's `group_access`) and checkout's role names.
ROLES: dict[str, str] = {"Guest": "guest", "Reporter": "reporter", "Developer": "developer",
                         "Maintainer": "maintainer", "Owner": "owner"}
ACCESS_LEVELS: dict[str, str] = {role: access for access, role in ROLES.items()}

GROUP_CREATE, GROUP_RENAME, GROUP_DESTROY = "group_create", "group_rename", "group_destroy"
MEMBER_ADD, MEMBER_UPDATE = "user_add_to_group", "user_update_for_group"
MEMBER_REMOVE = "user_remove_from_group"
MEMBER_EVENTS = (MEMBER_ADD, MEMBER_UPDATE, MEMBER_REMOVE)

# Two changes stamped with the same second: an add comes before an update, and
# both before a removal, so a late add or update never brings a removed member back.
_RANK = {GROUP_CREATE: 0, GROUP_RENAME: 1, GROUP_DESTROY: 2,
         MEMBER_ADD: 0, MEMBER_UPDATE: 1, MEMBER_REMOVE: 2}


def role_of(access: str) -> str:
    """Checkout's role for the platform's access level ("Developer" -> "developer")."""
    try:
        return ROLES[access]
    except KeyError:
        raise ValueError(f"unknown access level {access!r}") from None


def is_billable(role: str, plan: str) -> bool:
    """Every member takes a seat, except Guests on Ultimate (the platform's rule).
    `plan` is the top-level group's paid plan: decided when a membership is
    written, and again for every member when that plan changes (usecases/seats.py:
    `reprice`), so a Guest stops taking a seat when the group buys Ultimate."""
    return not (role == "guest" and plan == "ultimate")


def is_stale(event: str, at: datetime, last_event: str, last_at: datetime) -> bool:
    """Whether `event` at `at` is older than the change applied last (`last_event`
    at `last_at`) to the same group or membership: then it must be ignored."""
    return (at, _RANK[event]) < (last_at, _RANK[last_event])


def moved_path(path: str, old_prefix: str, new_prefix: str) -> str | None:
    """A descendant's full path once its ancestor moved from `old_prefix` to
    `new_prefix` ("acme/backend" -> "acme-corp/backend"); None if it is no descendant."""
    if not path.startswith(old_prefix + "/"):
        return None
    return new_prefix + path[len(old_prefix):]
