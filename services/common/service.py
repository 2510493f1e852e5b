"""What a running service is made of, independent of HTTP: its settings, its
database, its clock, its telemetry forwarder, and the unit of work its use
cases open. Workers and CLIs build the same object the web app does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from flags.client import Flags
from flags.exposures import Exposure, ExposureStore, KnownVariations, variations_of
from flags.payload import NAMESPACE_ID, USER_ID
from funnel import exposures, telemetry
from funnel.batch import FunnelBatcher
from funnel.metrics import FUNNEL_STEPS
from funnel.telemetry import Forwarder, FunnelEvent, Step, Traffic
from persistence.db import UnitOfWork, make_engine
from services.common import outbox, sweeps
from services.common.clock import Clock, OffsetClock, SystemClock
from services.common.config import Settings
from services.common.logs import request_id_var


class ServiceUnitOfWork(UnitOfWork):
    """A unit of work that also writes outbox events and funnel events in the
    same transaction as the state change (a view-only step's funnel row in a
    `telemetry_only()` transaction: just after it, in a batch)."""

    def __init__(self, ctx: ServiceContext, traffic: Traffic) -> None:
        super().__init__(ctx.session_factory)
        self.ctx = ctx
        self.traffic = traffic
        self.now: datetime = ctx.clock.now()
        self._variations: dict[tuple[int | None, int | None], dict[str, int]] = {}
        self._stored_exposure = False
        self._view_only = self._relaxed = False

    def __enter__(self) -> Self:
        self._view_only = self._relaxed = False
        return super().__enter__()

    def telemetry_only(self) -> None:
        """Say that this transaction writes only what a person saw (funnel events,
        exposures), nothing they bought or changed. On PostgreSQL its commit then
        does not wait for the WAL to reach disk: a crash may lose the last moment
        of such rows, never a purchase, and a quote no longer pays for a disk flush
        (about a fifth of its throughput in make bench).

        Its view-only steps (telemetry.VIEW_ONLY_STEPS) are then written after
        commit in batches when FUNNEL_BATCH_MS is set (funnel/batch.py);
        a quote then writes nothing in its transaction, and the setting is sent only
        before a write that still happens in it (a first exposure), sparing a round trip."""
        self._view_only = True
        if self.ctx.funnel_batch is None:
            self._relax_commit()

    def _relax_commit(self) -> None:
        if self._view_only and not self._relaxed and self.ctx.engine.dialect.name == "postgresql":
            self.session.execute(_RELAXED_COMMIT)
            self._relaxed = True

    def flag(self, feature: str, attributes: dict[str, Any]) -> Any:
        """A flag's value for these attributes; an experiment's first exposure
        of the unit is stored (with its funnel event) in this transaction."""
        evaluation = self.ctx.flags.evaluate(feature, attributes)
        if evaluation.exposure is not None:
            self._expose(evaluation.exposure, _int(attributes.get(USER_ID)),
                         _int(attributes.get(NAMESPACE_ID)))
        return evaluation.value

    def _expose(self, exposure: Exposure, user_id: int | None, namespace_id: int | None) -> None:
        unit = exposure.unit
        known = self.ctx.known_variations.get(unit)
        if known is not None and exposure.experiment in known:
            return  # most evaluations: stored already, as this process knows
        self._relax_commit()
        first = self._exposures().store_first(exposure, user_id, namespace_id, self.now)
        if first or known is not None:
            # What this process knew of the unit lacks the row: the next read caches it
            # afresh. Not when nothing was known: this transaction's own read fills the
            # cache, and forgetting it then made every quote store again (make bench).
            self.after_commit(lambda: self.ctx.known_variations.forget(unit))
        if first:
            self._variations.clear()
            self._stored_exposure = True
            self.track(Step.EXPERIMENT_VIEWED, user_id=user_id, namespace_id=namespace_id,
                       experiment=exposure.experiment, variation=exposure.variation,
                       variation_name=exposure.variation_name, feature=exposure.feature,
                       hash_attribute=exposure.hash_attribute, hash_value=exposure.hash_value)

    def publish(self, topic: str, payload: Mapping[str, Any]) -> str:
        # The traffic source and the request id travel with the event.
        stamped = {**payload, "traffic": self.traffic.value}
        if request_id := request_id_var.get():
            stamped["request_id"] = request_id
        return outbox.publish(self.session, self.ctx.outbox_model, topic, stamped, self.now)

    def track(self, step: Step, *, user_id: int | None, namespace_id: int | None,
              **properties: Any) -> None:
        if not self.ctx.settings.funnel_telemetry:
            return
        event = FunnelEvent(step=step, user_id=user_id, namespace_id=namespace_id,
                            occurred_at=self.now, properties=properties,
                            experiments=self.variations(user_id, namespace_id), traffic=self.traffic)
        batch = self.ctx.funnel_batch
        if batch is not None and self._view_only and step in telemetry.VIEW_ONLY_STEPS:
            row = telemetry.row_of(self.ctx.name, event)
            self.after_commit(lambda: batch.add(row))
        else:
            self._relax_commit()
            telemetry.record(self.session, self.ctx.funnel_model, self.ctx.name, event)
        self.after_commit(lambda: FUNNEL_STEPS.labels(self.ctx.name, step.value, self.traffic.value).inc())
        if self.traffic is not Traffic.SYNTHETIC:
            self.after_commit(lambda: self.ctx.forwarder.forward(self.ctx.name, event))

    def variations(self, user_id: int | None, namespace_id: int | None) -> dict[str, int]:
        """{experiment: variation} this person and namespace were exposed to in
        this service, this transaction included."""
        unit = (user_id, namespace_id)
        if unit not in self._variations:
            known = None if self._stored_exposure else self.ctx.known_variations
            self._variations[unit] = variations_of(self._exposures(), known, user_id, namespace_id)
        return dict(self._variations[unit])

    def _exposures(self) -> ExposureStore:
        return exposures.TableExposures(self.session, self.ctx.exposure_model)


_RELAXED_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


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
    exposure_model: type[exposures.ExposureMixin]
    flags: Flags
    known_variations: KnownVariations = field(default_factory=KnownVariations)
    # Where the sweeps record the items they failed on (services/common/sweeps.py); None: no sweeps.
    failure_model: type[sweeps.SweepFailureMixin] | None = None
    # A service's own gauges, read from its database at each scrape (services/common/metrics.py).
    gauges: list[Callable[[Session, CollectorRegistry], None]] = field(default_factory=list)
    # View-only funnel rows written in batches (FUNNEL_BATCH_MS); None: in the step's transaction.
    funnel_batch: FunnelBatcher | None = None

    def uow(self, traffic: Traffic = Traffic.REAL) -> ServiceUnitOfWork:
        return ServiceUnitOfWork(self, traffic)

    def close(self) -> None:
        self.flags.stop()
        if self.funnel_batch is not None:
            self.funnel_batch.close()  # before the forwarder and the engine: nothing waiting is lost
        self.forwarder.shutdown()
        self.engine.dispose()


def build_context(name: str, settings: Settings, clock: Clock | None,
                  outbox_model: type[outbox.OutboxMixin],
                  funnel_model: type[telemetry.FunnelEventMixin],
                  exposure_model: type[exposures.ExposureMixin],
                  failure_model: type[sweeps.SweepFailureMixin] | None = None) -> ServiceContext:
    """Wire a service's database, clock, telemetry and flags from its settings."""
    engine = make_engine(settings.database_url)
    batch = None
    if settings.funnel_telemetry and settings.funnel_batch_ms > 0:
        batch = FunnelBatcher(engine, funnel_model.__table__, name,  # type: ignore[attr-defined]
                              interval_seconds=settings.funnel_batch_ms / 1000,
                              max_rows=settings.funnel_batch_max_rows)
    return ServiceContext(
        name=name, settings=settings, engine=engine,
        session_factory=sessionmaker(engine, expire_on_commit=False),
        clock=clock or (OffsetClock(settings.clock_file) if settings.clock_file else SystemClock()),
        forwarder=telemetry.make_forwarder(settings.posthog_api_key, settings.posthog_host),
        outbox_model=outbox_model, funnel_model=funnel_model, exposure_model=exposure_model,
        failure_model=failure_model, flags=Flags.from_settings(settings).start(), funnel_batch=batch)
