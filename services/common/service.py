"""What a running service is made of, independent of HTTP: its settings, its
database, its clock, its telemetry forwarder, and the unit of work its use
cases open. Workers and CLIs build the same object the web app does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.common import outbox, telemetry
from services.common.clock import Clock, OffsetClock, SystemClock
from services.common.config import Settings
from services.common.db import UnitOfWork, make_engine
from services.common.logs import request_id_var
from services.common.metrics import FUNNEL_STEPS
from services.common.telemetry import Forwarder, FunnelEvent, Step, Traffic


class ServiceUnitOfWork(UnitOfWork):
    """A unit of work that also writes outbox events and funnel events in the
    same transaction as the state change."""

    def __init__(self, ctx: ServiceContext, traffic: Traffic, experiments: dict[str, Any]) -> None:
        super().__init__(ctx.session_factory)
        self.ctx = ctx
        self.traffic = traffic
        self.experiments = experiments
        self.now: datetime = ctx.clock.now()

    def publish(self, topic: str, payload: dict[str, Any]) -> str:
        # The traffic source and the request id travel with the event.
        stamped = {**payload, "traffic": self.traffic.value}
        if request_id := request_id_var.get():
            stamped["request_id"] = request_id
        return outbox.publish(self.session, self.ctx.outbox_model, topic, stamped, self.now)

    def track(self, step: Step, *, user_id: int | None, namespace_id: int | None,
              **properties: Any) -> None:
        event = FunnelEvent(step=step, user_id=user_id, namespace_id=namespace_id,
                            occurred_at=self.now, properties=properties,
                            experiments=dict(self.experiments), traffic=self.traffic)
        telemetry.record(self.session, self.ctx.funnel_model, self.ctx.name, event)
        self.after_commit(lambda: FUNNEL_STEPS.labels(self.ctx.name, step.value, self.traffic.value).inc())
        if self.traffic is not Traffic.SYNTHETIC:
            self.after_commit(lambda: self.ctx.forwarder.forward(self.ctx.name, event))


@dataclass
class ServiceContext:
    name: str
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock
    forwarder: Forwarder
    outbox_model: type[outbox.OutboxMixin]
    funnel_model: type[telemetry.FunnelEventMixin]
    extras: dict[str, Any] = field(default_factory=dict)

    def uow(self, traffic: Traffic = Traffic.REAL,
            experiments: dict[str, Any] | None = None) -> ServiceUnitOfWork:
        return ServiceUnitOfWork(self, traffic, experiments or {})

    def close(self) -> None:
        self.forwarder.shutdown()
        self.engine.dispose()


def build_context(name: str, settings: Settings, clock: Clock | None,
                  outbox_model: type[outbox.OutboxMixin],
                  funnel_model: type[telemetry.FunnelEventMixin]) -> ServiceContext:
    """Wire a service's database, clock and telemetry from its settings."""
    engine = make_engine(settings.database_url)
    return ServiceContext(
        name=name, settings=settings, engine=engine,
        session_factory=sessionmaker(engine, expire_on_commit=False),
        clock=clock or (OffsetClock(settings.clock_file) if settings.clock_file else SystemClock()),
        forwarder=telemetry.make_forwarder(settings.posthog_api_key, settings.posthog_host),
        outbox_model=outbox_model, funnel_model=funnel_model)
