"""Funnel telemetry: one append-only row per step a person takes.

The row is written in the same transaction as the step (so the local store,
the source of the experiment analysis, never disagrees with the data), except
for a view-only step (VIEW_ONLY_STEPS, in a transaction that writes nothing
else): its row is written just after, in batches, by
funnel/batch.py, which states what a crash may lose. Every row
is forwarded to PostHog after commit by a batched, non-blocking client. A dead
PostHog host changes nothing for the buyer: the SDK queues in memory and drops
when its queue is full.
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import JSON, BigInteger, String, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from funnel.metrics import POSTHOG_SKIPPED
from persistence.db import BigIntPK, UTCDateTime

log = logging.getLogger(__name__)


class Step(enum.StrEnum):
    PLANS_VIEWED = "plans_viewed"
    PLAN_CHOSEN = "plan_chosen"
    CODE_APPLIED = "code_applied"
    CODE_REJECTED = "code_rejected"
    CODE_REDEEMED = "code_redeemed"
    BILLING_ACCOUNT_SAVED = "billing_account_saved"
    CARD_SETUP_STARTED = "card_setup_started"
    CARD_CAPTURED = "card_captured"
    CARD_DECLINED = "card_declined"
    THREE_DS_REQUIRED = "three_ds_required"
    PURCHASE_COMPLETED = "purchase_completed"
    PURCHASE_FAILED = "purchase_failed"
    # Existing customers growing: purchased and failed are purchase_* with kind "expansion".
    EXPANSION_CHOSEN = "expansion_chosen"
    EXPANSION_QUOTED = "expansion_quoted"
    EXPANSION_REFUSED = "expansion_refused"
    TRIAL_ELIGIBILITY_CHECKED = "trial_eligibility_checked"
    TRIAL_STARTED = "trial_started"
    TRIAL_CONVERTED = "trial_converted"
    TRIAL_EXPIRED = "trial_expired"
    TRIAL_EXTENDED = "trial_extended"
    NOTIFICATION_SENT = "notification_sent"
    EXPERIMENT_VIEWED = "experiment_viewed"
    # Managing what was bought (checkout's customer portal): self-service adoption.
    BILLING_VIEWED = "billing_viewed"
    CARD_REMOVED = "card_removed"
    DEFAULT_CARD_CHANGED = "default_card_changed"
    AUTO_RENEW_OFF = "auto_renew_off"
    AUTO_RENEW_ON = "auto_renew_on"
    SAVE_OFFER_SHOWN = "save_offer_shown"
    CHANGE_SCHEDULED = "change_scheduled"
    SCHEDULED_CHANGE_CANCELED = "scheduled_change_canceled"
    RENEWED_NOW = "renewed_now"
    MANAGER_INVITED = "manager_invited"
    MANAGER_JOINED = "manager_joined"
    MANAGER_REMOVED = "manager_removed"
    ORDER_REFUNDED = "order_refunded"


# Steps that only record what a person saw: nothing was bought or changed. In a
# transaction that writes nothing else (`ServiceUnitOfWork.telemetry_only()`)
# their row may be written after the request, in batches
# (funnel/batch.py). Every other step (a purchase, a trial start, a card, a code
# redeemed) keeps its row in the step's own transaction; so does
# experiment_viewed, which goes with its exposure row so experiment counts stay exact.
VIEW_ONLY_STEPS = frozenset({
    Step.PLANS_VIEWED, Step.PLAN_CHOSEN, Step.CODE_APPLIED, Step.CODE_REJECTED,
    Step.EXPANSION_CHOSEN, Step.EXPANSION_QUOTED, Step.EXPANSION_REFUSED,
    Step.TRIAL_ELIGIBILITY_CHECKED, Step.BILLING_VIEWED, Step.SAVE_OFFER_SHOWN,
})


class Traffic(enum.StrEnum):
    """Where a request came from. Synthetic traffic never enters an analysis."""

    REAL = "real"
    DEMO = "demo"
    SYNTHETIC = "synthetic"


TRAFFIC_HEADER = "X-Traffic-Source"


class FunnelEventMixin:
    __tablename__ = "funnel_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    service: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    namespace_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # {experiment_key: variation_id} the person was in when the step happened.
    experiments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    traffic: Mapped[str] = mapped_column(String(16), default=Traffic.REAL.value)


@dataclass(frozen=True)
class FunnelEvent:
    step: Step
    user_id: int | None
    namespace_id: int | None
    occurred_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    experiments: dict[str, Any] = field(default_factory=dict)
    traffic: Traffic = Traffic.REAL
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class Forwarder(Protocol):
    def forward(self, service: str, event: FunnelEvent) -> None: ...
    def shutdown(self) -> None: ...


class NoForwarder:
    """PostHog not configured: the local store is the only sink."""

    def forward(self, service: str, event: FunnelEvent) -> None:
        return None

    def shutdown(self) -> None:
        return None


class PostHogForwarder:
    """Forwards funnel events with the official SDK (batched on its own thread).

    When a batch fails (PostHog down or unreachable), forwarding pauses for
    PAUSE_SECONDS: queueing events that will only be dropped costs the request
    path a third of its throughput. The local store keeps every event, and
    `posthog_events_skipped_total` counts what PostHog did not get."""

    PAUSE_SECONDS = 30.0

    def __init__(self, api_key: str, host: str) -> None:
        from posthog import Posthog

        self._paused_until = 0.0
        self._client = Posthog(
            api_key, host=host, max_queue_size=10_000, flush_at=100, flush_interval=2.0,
            max_retries=2, timeout=3, on_error=self._on_error,
        )

    def _on_error(self, error: Exception, batch: Any) -> None:
        self._paused_until = time.monotonic() + self.PAUSE_SECONDS
        log.warning("posthog forwarding failed: %s (%d events dropped); pausing forwarding for %.0f s",
                    error, len(batch or []), self.PAUSE_SECONDS)

    def forward(self, service: str, event: FunnelEvent) -> None:
        if time.monotonic() < self._paused_until:
            POSTHOG_SKIPPED.labels(service).inc()
            return
        properties = {**event.properties, "service": service, "namespace_id": event.namespace_id,
                      "traffic": event.traffic.value}
        for key, variation in event.experiments.items():
            properties[f"$feature/{key}"] = variation
        distinct_id = str(event.user_id) if event.user_id is not None else f"ns-{event.namespace_id}"
        name = event.step.value
        if event.step is Step.EXPERIMENT_VIEWED:
            # PostHog's own exposure event, so its experiment views work on our assignments.
            name = "$feature_flag_called"
            properties |= {"$feature_flag": event.properties.get("feature"),
                           "$feature_flag_response": event.properties.get("variation"),
                           "experiment_key": event.properties.get("experiment")}
        try:
            self._client.capture(
                name, distinct_id=distinct_id, properties=properties,
                timestamp=event.occurred_at, uuid=event.event_id,
            )
        except Exception:  # telemetry must never break the step it describes
            log.exception("posthog capture failed")

    def shutdown(self) -> None:
        self._client.shutdown()


def make_forwarder(api_key: str | None, host: str) -> Forwarder:
    return PostHogForwarder(api_key, host) if api_key else NoForwarder()


def row_of(service: str, event: FunnelEvent) -> dict[str, Any]:
    """The event as a `funnel_events` row (values for a Core INSERT)."""
    return {
        "event_id": event.event_id, "service": service, "step": event.step.value,
        "user_id": event.user_id, "namespace_id": event.namespace_id,
        "occurred_at": event.occurred_at, "properties": event.properties,
        "experiments": event.experiments, "traffic": event.traffic.value,
    }


def record(session: Session, model: type[FunnelEventMixin], service: str, event: FunnelEvent) -> None:
    # A Core INSERT, not session.add(): the ORM's bookkeeping for an append-only
    # row it never reads back cost more than the INSERT itself (make bench).
    session.execute(insert(model.__table__), row_of(service, event))  # type: ignore[attr-defined]
