"""Reading the schedule and previewing messages (support, admin role)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from identity.auth import Principal
from services.common.errors import Forbidden, not_found
from services.common.service import ServiceUnitOfWork
from services.notifications.adapters.models import Notification
from services.notifications.domain.rendering import render
from services.notifications.domain.samples import sample_context
from services.notifications.domain.schedule import Schedule


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("admin_required", "Admin role required",
                        "Only support (admin role) can see notifications and previews.")


def notification_view(row: Notification, *, with_context: bool = False) -> dict[str, Any]:
    view = {
        "id": row.id, "dedupe_key": row.dedupe_key, "template": row.template, "recipient": row.recipient,
        "subject": row.subject, "status": row.status, "send_after": row.send_after,
        "attempts": row.attempts, "next_attempt_at": row.next_attempt_at, "last_error": row.last_error,
        "message_id": row.message_id, "sent_at": row.sent_at, "traffic": row.traffic,
        "created_at": row.created_at,
    }
    if with_context:
        view["context"] = row.context
    return view


def list_notifications(uow: ServiceUnitOfWork, principal: Principal, *, recipient: str | None = None,
                       status: str | None = None, template: str | None = None,
                       limit: int = 100) -> list[dict[str, Any]]:
    require_admin(principal)
    query = select(Notification)
    if recipient:
        query = query.where(Notification.recipient == recipient)
    if status:
        query = query.where(Notification.status == status)
    if template:
        query = query.where(Notification.template == template)
    with uow:
        rows = uow.session.scalars(query.order_by(Notification.send_after.desc(), Notification.id.desc())
                                   .limit(limit))
        return [notification_view(row) for row in rows]


def get_notification(uow: ServiceUnitOfWork, principal: Principal, notification_id: int) -> dict[str, Any]:
    require_admin(principal)
    with uow:
        row = uow.session.get(Notification, notification_id)
        if row is None:
            raise not_found("notification", notification_id)
        return notification_view(row, with_context=True)


def preview(principal: Principal, template: str, overrides: dict[str, str],
            schedule: Schedule | None = None) -> dict[str, Any]:
    """What `template` looks like with a real-looking event (fields overridable)."""
    require_admin(principal)
    rendered = render(template, sample_context(template, overrides, schedule))
    return {"template": template, "subject": rendered.subject, "text": rendered.text, "html": rendered.html}
