"""The platform's side of checkout's directory: the system hooks it sends when
groups and members change (POST /internal/directory/hooks with a service
token; docs/services/checkout.md). Load tests, demo traffic and outside testers
make their groups and people this way, never by writing checkout's tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import requests

HOOKS_PATH = "/internal/directory/hooks"
TRAFFIC_HEADER = "X-Traffic-Source"


class HookRefused(RuntimeError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def group_create(group_id: int, path: str, name: str, *, parent_id: int | None = None,
                 full_path: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    when = _time(at)
    return {"event_name": "group_create", "created_at": when, "updated_at": when, "group_id": group_id,
            "name": name, "path": path, "full_path": full_path or path, "parent_id": parent_id}


def user_add_to_group(group_id: int, group_path: str, user_id: int, email: str, name: str,
                      access: str = "Owner", *, at: datetime | None = None) -> dict[str, Any]:
    when = _time(at)
    return {"event_name": "user_add_to_group", "created_at": when, "updated_at": when, "group_id": group_id,
            "group_path": group_path, "user_id": user_id, "user_email": email, "user_name": name,
            "user_username": email.split("@")[0], "group_access": access}


def hook_id(*parts: object) -> str:
    """A stable id for a hook about the same thing: sending it again is a duplicate."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "loadtests:" + "/".join(map(str, parts))))


def send(http: requests.Session, checkout_url: str, token: str, traffic: str, hook: dict[str, Any],
         event_id: str) -> dict[str, Any]:
    """Deliver one hook; {"event_id", "outcome", "events"} or HookRefused."""
    response = http.post(f"{checkout_url}{HOOKS_PATH}", json=hook, timeout=30, headers={
        "Authorization": f"Bearer {token}", "X-Gitlab-Event": "System Hook",
        "X-Gitlab-Event-UUID": event_id, TRAFFIC_HEADER: traffic})
    if response.status_code != 200:
        try:
            code = response.json().get("code")
        except ValueError:
            code = None
        raise HookRefused(f"{hook['event_name']} for group {hook['group_id']}: HTTP "
                          f"{response.status_code} {code or ''}".rstrip(), response.status_code)
    return response.json()  # type: ignore[no-any-return]


def _time(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).isoformat()
