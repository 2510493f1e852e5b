"""The notifications service: what is sent to people, when, and whether it arrived.

This is the service's foundation (database, health, OpenAPI); schedules,
templates and delivery arrive with the notifications capability.
"""

from __future__ import annotations

from flask import Flask

from services.common.clock import Clock
from services.common.config import Settings
from services.common.service import build_context
from services.common.web import create_service_app
from services.notifications.adapters.models import FunnelEventRow, OutboxMessage


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Flask:
    ctx = build_context("notifications", settings or Settings.from_env("notifications"), clock,
                        OutboxMessage, FunnelEventRow)
    return create_service_app(ctx, title="Notifications", description=__doc__ or "",
                              blueprints=[])
