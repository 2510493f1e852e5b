from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from services.common.web import ProblemSchema, current_principal, request_uow
from services.notifications.api.schemas import (
    NotificationDetailSchema,
    NotificationQuerySchema,
    NotificationSchema,
    PreviewQuerySchema,
    PreviewSchema,
)
from services.notifications.runtime import current
from services.notifications.usecases import notifications

blp = Blueprint("notifications", __name__, description="Scheduled and delivered notifications (support)")
AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}]



@blp.route("/notifications")
class NotificationList(MethodView):
    @blp.arguments(NotificationQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, NotificationSchema(many=True))
    @blp.alt_response(403, schema=ProblemSchema, description="Not an admin")
    @blp.doc(security=AUTH)
    def get(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Deliveries, newest first, with status, attempts and the last error (admin)."""
        return notifications.list_notifications(request_uow(), current_principal(), **query)


@blp.route("/notifications/preview")
class Preview(MethodView):
    @blp.arguments(PreviewQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, PreviewSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Not an admin")
    @blp.alt_response(404, schema=ProblemSchema, description="template_not_found")
    @blp.doc(security=AUTH)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """A template rendered from a real-looking event; main fields overridable (admin)."""
        template = query.pop("template")
        return notifications.preview(current_principal(), template, query, current().schedule)


@blp.route("/notifications/<id:notification_id>")
class NotificationDetail(MethodView):
    @blp.response(200, NotificationDetailSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Not an admin")
    @blp.alt_response(404, schema=ProblemSchema, description="notification_not_found")
    @blp.doc(security=AUTH)
    def get(self, notification_id: int) -> dict[str, Any]:
        """One notification with the context it renders from (admin)."""
        return notifications.get_notification(request_uow(), current_principal(), notification_id)
