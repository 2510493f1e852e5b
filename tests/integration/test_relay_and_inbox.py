"""Events between services: the relay delivers committed outbox rows at least
once, the inbox handles each event once, and nothing is lost when a consumer
is down or a handler fails."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import jwt
import pytest
import requests
from flask import Flask
from sqlalchemy import String, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from funnel.exposures import ExposureMixin
from funnel.telemetry import FunnelEventMixin, Traffic
from identity.auth import generate_service_key, issue_service_token, issue_token, public_key_pem
from messaging.inbox import InboxMixin, events_blueprint
from messaging.relay import Subscriber, backoff, relay_once
from persistence.db import BigIntPK
from services.common.clock import FixedClock, SystemClock
from services.common.metrics import metrics_response
from services.common.outbox import OutboxMixin
from services.common.service import ServiceContext, ServiceUnitOfWork, build_context
from services.common.web import create_service_app
from tests.conftest import NOW, make_settings
from tests.support import PG_SKIP_REASON, TEST_SECRET, LiveServer, pg_base_url, postgres_database, sqlite_url

# The relay and the inbox carry any payload: these tests publish made-up ones.
pytestmark = pytest.mark.any_event_payload

DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Exposure(ExposureMixin, Base):
    pass


class Funnel(FunnelEventMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Effect(Base):
    """What a handler writes: it must commit with the inbox row, or not at all."""

    __tablename__ = "effects"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(100))


def service_token(roles: tuple[str, ...] = ("service",)) -> str:
    return issue_token(TEST_SECRET, 1, "publisher@services.test", roles, now=SystemClock().now(),
                       ttl=timedelta(hours=1))


TOKEN = service_token()


# --- the consumer --------------------------------------------------------------------
@dataclass
class Handlers:
    calls: list[tuple[str, dict[str, Any], Traffic]] = field(default_factory=list)
    broken: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def effect(self, uow: ServiceUnitOfWork, payload: dict[str, Any], topic: str) -> str:
        uow.session.add(Effect(topic=topic, subject=str(payload.get("subject"))))
        with self.lock:
            self.calls.append((topic, payload, uow.traffic))
        return f"{topic} for {payload.get('subject')}"

    def boom(self, uow: ServiceUnitOfWork, payload: dict[str, Any]) -> str:
        self.effect(uow, payload, "boom.exploded")
        if self.broken:
            raise RuntimeError("handler bug")
        return "fixed"

    def mapping(self) -> dict[str, Any]:
        return {
            "subscription.created": lambda uow, p: self.effect(uow, p, "subscription.created"),
            "trial.started": lambda uow, p: self.effect(uow, p, "trial.started"),
            "boom.exploded": self.boom,
        }


@dataclass
class Consumer:
    ctx: ServiceContext
    app: Flask
    server: LiveServer
    handlers: Handlers

    @property
    def subscriber(self) -> Subscriber:
        return Subscriber("consumer", self.server.url, ("subscription.", "trial.", "boom."))

    def count(self, model: type[Base]) -> int:
        with Session(self.ctx.engine) as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def inbox(self) -> list[Inbox]:
        with Session(self.ctx.engine) as s:
            return list(s.scalars(select(Inbox)))

    def post(self, body: Any, token: str | None = TOKEN) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.server.url}/internal/events", json=body, headers=headers, timeout=10)


class RecordingSession(requests.Session):
    """requests, noting which event went to which URL."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []
        self.answers: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append((str(url), kwargs["json"]["id"]))
        response = super().request(method, url, *args, **kwargs)
        self.answers.append(response.json())
        return response


# --- fixtures --------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not pg_base_url():
        pytest.skip(PG_SKIP_REASON)
    return str(request.param)


@pytest.fixture
def db_urls(backend: str, tmp_path: Any) -> Iterator[tuple[str, str]]:
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "publisher.db"), sqlite_url(tmp_path / "consumer.db")
        return
    with postgres_database("publisher") as publisher_url, postgres_database("consumer") as consumer_url:
        yield publisher_url, consumer_url


def context(name: str, url: str, clock: FixedClock) -> ServiceContext:
    ctx = build_context(name, make_settings(name, url), clock, Outbox, Funnel, Exposure)
    Base.metadata.create_all(ctx.engine)
    return ctx


@pytest.fixture
def publisher(db_urls: tuple[str, str], clock: FixedClock) -> Iterator[ServiceContext]:
    ctx = context("publisher", db_urls[0], clock)
    yield ctx
    ctx.close()


@pytest.fixture
def consumer(db_urls: tuple[str, str], clock: FixedClock) -> Iterator[Consumer]:
    ctx = context("consumer", db_urls[1], clock)
    handlers = Handlers()
    app = create_service_app(ctx, title="Consumer", description="Test consumer",
                             blueprints=[events_blueprint(Inbox, handlers.mapping())])
    server = LiveServer(app)
    yield Consumer(ctx, app, server, handlers)
    server.stop()
    ctx.close()


def publish(ctx: ServiceContext, topic: str, subject: str, traffic: Traffic = Traffic.REAL) -> str:
    uow = ctx.uow(traffic=traffic)
    with uow:
        event_id = uow.publish(topic, {"subject": subject})
        uow.commit()
    return event_id


def outbox(ctx: ServiceContext) -> dict[str, Outbox]:
    with Session(ctx.engine) as s:
        return {row.id: row for row in s.scalars(select(Outbox))}


def envelope(event_id: str, topic: str = "subscription.created", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": event_id, "topic": topic, "source": "publisher",
                            "occurred_at": NOW.isoformat(), "payload": {"subject": "sub-1"}}
    return {**body, **changes}


# --- delivery ------------------------------------------------------------------------
def test_a_committed_event_is_delivered_once_and_a_rolled_back_one_never(
        publisher: ServiceContext, consumer: Consumer) -> None:
    event_id = publish(publisher, "subscription.created", "sub-1", Traffic.SYNTHETIC)
    uow = publisher.uow()
    with uow:
        uow.publish("subscription.created", {"subject": "never"})  # rolled back on exit

    assert relay_once(publisher, [consumer.subscriber], token=TOKEN) == 1

    [row] = outbox(publisher).values()
    assert (row.id, row.published_at, row.attempts, row.last_error) == (event_id, NOW, 0, None)
    assert consumer.handlers.calls == [
        ("subscription.created", {"subject": "sub-1", "traffic": "synthetic"}, Traffic.SYNTHETIC)]
    [received] = consumer.inbox()
    assert (received.event_id, received.topic, received.source, received.received_at) == (
        event_id, "subscription.created", "publisher", NOW)
    assert received.outcome == "subscription.created for sub-1"
    assert consumer.count(Effect) == 1

    assert relay_once(publisher, [consumer.subscriber], token=TOKEN) == 0  # nothing left to send
    assert len(consumer.handlers.calls) == 1


def test_a_redelivered_event_is_handled_once(publisher: ServiceContext, consumer: Consumer) -> None:
    event_id = publish(publisher, "subscription.created", "sub-1")
    http = RecordingSession()
    assert relay_once(publisher, [consumer.subscriber], token=TOKEN, http=http) == 1
    with Session(publisher.engine) as s, s.begin():  # as if the relay died before it could commit
        s.execute(update(Outbox).values(published_at=None))

    assert relay_once(publisher, [consumer.subscriber], token=TOKEN, http=http) == 1

    assert [sent for _, sent in http.sent] == [event_id, event_id]
    assert http.answers == [{"outcome": "subscription.created for sub-1"}, {"outcome": "duplicate"}]
    assert len(consumer.handlers.calls) == 1
    assert consumer.count(Inbox) == consumer.count(Effect) == 1


def test_posting_the_same_envelope_twice_runs_the_handler_once(consumer: Consumer) -> None:
    body = envelope("00000000-0000-4000-8000-000000000001")
    first, second = consumer.post(body), consumer.post(body)
    assert (first.status_code, first.json()) == (200, {"outcome": "subscription.created for sub-1"})
    assert (second.status_code, second.json()) == (200, {"outcome": "duplicate"})
    assert len(consumer.handlers.calls) == 1
    assert consumer.count(Inbox) == consumer.count(Effect) == 1


def test_concurrent_deliveries_of_one_event_run_the_handler_once(consumer: Consumer) -> None:
    body = envelope("00000000-0000-4000-8000-000000000011")
    start = threading.Barrier(8)
    answers: list[tuple[int, str]] = []

    def deliver() -> None:
        start.wait(timeout=10)
        response = consumer.post(body)
        answers.append((response.status_code, response.json().get("outcome", response.text)))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == [(200, "duplicate")] * 7 + [(200, "subscription.created for sub-1")]
    assert len(consumer.handlers.calls) == 1
    assert consumer.count(Inbox) == consumer.count(Effect) == 1


def test_an_event_nobody_handles_is_recorded_as_ignored(consumer: Consumer) -> None:
    response = consumer.post(envelope("00000000-0000-4000-8000-000000000002", topic="subscription.renamed"))
    assert response.json() == {"outcome": "ignored"}
    assert [row.outcome for row in consumer.inbox()] == ["ignored"]
    assert consumer.handlers.calls == []


def test_each_subscriber_is_shown_a_token_for_it_alone(publisher: ServiceContext, consumer: Consumer) -> None:
    """Services' credentials name the service called (its audience): the relay asks for one per subscriber."""
    other = LiveServer(consumer.app)
    shown: list[tuple[str, str]] = []

    class Seeing(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
            shown.append((str(url).removesuffix("/internal/events"), kwargs["headers"]["Authorization"]))
            return super().request(method, url, *args, **kwargs)

    try:
        publish(publisher, "subscription.created", "sub-1")
        publish(publisher, "trial.started", "trial-1")
        subscribers = [Subscriber("billing", consumer.server.url, ("subscription.",)),
                       Subscriber("trials", other.url, ("trial.",))]
        audiences: list[str] = []

        def token_for(audience: str) -> str:
            audiences.append(audience)
            return issue_token(TEST_SECRET, 1, f"for-{audience}@services.test", ("service",),
                               now=SystemClock().now(), ttl=timedelta(minutes=5))

        assert relay_once(publisher, subscribers, token=token_for, http=Seeing()) == 2
    finally:
        other.stop()
    assert sorted(audiences) == ["billing", "trials"]
    seen = {url: jwt.decode(header.removeprefix("Bearer "), options={"verify_signature": False})["email"]
            for url, header in shown}
    assert seen == {consumer.server.url: "for-billing@services.test", other.url: "for-trials@services.test"}


def test_topic_prefixes_route_events(publisher: ServiceContext, consumer: Consumer) -> None:
    other = LiveServer(consumer.app)  # a second address, to see who was sent what
    try:
        billing = Subscriber("billing", consumer.server.url, ("subscription.",))
        trials = Subscriber("trials", other.url, ("trial.",))
        subscription = publish(publisher, "subscription.created", "sub-1")
        trial = publish(publisher, "trial.started", "trial-1")
        publish(publisher, "namespace.renamed", "ns-1")  # nobody's: published without a delivery
        http = RecordingSession()

        assert relay_once(publisher, [billing, trials], token=TOKEN, http=http) == 3

        sent = {(url.removesuffix("/internal/events"), event) for url, event in http.sent}
        assert sent == {(consumer.server.url, subscription), (other.url, trial)}
        assert sorted(topic for topic, _, _ in consumer.handlers.calls) == [
            "subscription.created", "trial.started"]
    finally:
        other.stop()
    assert Subscriber("audit", "-", ("",)).wants("anything.at.all")
    assert not Subscriber("trials", "-", ("trial.",)).wants("trials.started")
    assert not Subscriber("none", "-", ()).wants("subscription.created")


# --- failure and retry ------------------------------------------------------------------
def test_a_down_subscriber_is_retried_after_the_backoff(
        publisher: ServiceContext, consumer: Consumer, clock: FixedClock) -> None:
    event_id = publish(publisher, "subscription.created", "sub-1")
    down = Subscriber("consumer", DEAD_URL, ("subscription.",))

    assert relay_once(publisher, [down], token=TOKEN, timeout=2) == 0

    row = outbox(publisher)[event_id]
    assert (row.published_at, row.attempts) == (None, 1)
    assert row.last_error == "consumer: unreachable (ConnectionError)"
    assert TOKEN not in row.last_error

    up = consumer.subscriber
    http = RecordingSession()
    assert relay_once(publisher, [up], token=TOKEN, http=http) == 0  # still backing off
    assert http.sent == [] and outbox(publisher)[event_id].attempts == 1

    clock.advance(backoff(1))
    assert relay_once(publisher, [up], token=TOKEN, http=http) == 1
    row = outbox(publisher)[event_id]
    assert (row.published_at, row.attempts) == (clock.now(), 1)
    assert [sent for _, sent in http.sent] == [event_id]
    assert len(consumer.handlers.calls) == 1


def test_backoff_counts_from_the_last_attempt_not_the_events_age(
        publisher: ServiceContext, consumer: Consumer, clock: FixedClock) -> None:
    event_id = publish(publisher, "subscription.created", "old-1")
    clock.advance(timedelta(hours=1))  # an old event, long past any backoff from its own time
    down = Subscriber("consumer", DEAD_URL, ("subscription.",))
    for attempt in (1, 2, 3):
        assert relay_once(publisher, [down], token=TOKEN, timeout=2) == 0
        http = RecordingSession()
        assert relay_once(publisher, [down], token=TOKEN, http=http) == 0
        assert http.sent == [] and outbox(publisher)[event_id].attempts == attempt  # not hammered
        clock.advance(backoff(attempt))


def test_one_dead_subscriber_is_tried_once_per_batch(publisher: ServiceContext) -> None:
    ids = [publish(publisher, "subscription.created", f"sub-{n}") for n in range(3)]
    http = RecordingSession()
    assert relay_once(publisher, [Subscriber("gone", DEAD_URL, ("",))], token=TOKEN, http=http) == 0
    assert len(http.sent) == 1  # the other rows were not sent to a host known to be down
    rows = outbox(publisher)
    assert [(rows[i].attempts, rows[i].last_error) for i in ids] == [
        (1, "gone: unreachable (ConnectionError)")] * 3


class BreaksOn(RecordingSession):
    """requests, except that sending one event raises (a bug, a payload it can not encode)."""

    def __init__(self, event_id: str) -> None:
        super().__init__()
        self.event_id, self.broken = event_id, True

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if self.broken and kwargs["json"]["id"] == self.event_id:
            raise ValueError("injected fault")
        return super().request(method, url, *args, **kwargs)


def test_one_bad_row_never_blocks_the_batch(publisher: ServiceContext, consumer: Consumer, clock: FixedClock,
                                            caplog: pytest.LogCaptureFixture) -> None:
    ids = [publish(publisher, "subscription.created", f"sub-{n}") for n in range(3)]
    bad = ids[1]
    http = BreaksOn(bad)

    assert relay_once(publisher, [consumer.subscriber], token=TOKEN, http=http) == 2

    rows = outbox(publisher)
    assert all(rows[i].published_at == clock.now() for i in ids if i != bad)
    assert (rows[bad].published_at, rows[bad].attempts, rows[bad].last_error) == (
        None, 1, "relay: ValueError: injected fault")
    assert rows[bad].next_attempt_at == clock.now() + backoff(1)
    assert 'outbox_failing_events{service="publisher"} 1.0' in metrics_response(publisher).get_data(as_text=True)
    said = [r for r in caplog.records if getattr(r, "event_id", None) == bad]
    assert len(said) == 1 and said[0].levelno == logging.ERROR and said[0].exc_info  # the traceback, once

    assert relay_once(publisher, [consumer.subscriber], token=TOKEN, http=http) == 0  # backing off
    clock.advance(backoff(1))
    assert relay_once(publisher, [consumer.subscriber], token=TOKEN, http=http) == 0
    said = [r for r in caplog.records if getattr(r, "event_id", None) == bad]
    assert [(r.levelno, bool(r.exc_info)) for r in said] == [(logging.ERROR, True), (logging.WARNING, False)]
    assert outbox(publisher)[bad].attempts == 2

    http.broken = False
    clock.advance(backoff(2))
    assert relay_once(publisher, [consumer.subscriber], token=TOKEN, http=http) == 1
    assert outbox(publisher)[bad].published_at == clock.now()
    assert sorted(payload["subject"] for _, payload, _ in consumer.handlers.calls) == ["sub-0", "sub-1", "sub-2"]


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [backoff(n).total_seconds() for n in (0, 1, 2, 3, 8, 9, 10, 1000)] == [
        0, 2, 4, 8, 256, 300, 300, 300]


def test_a_failing_handler_keeps_nothing_and_the_event_is_retried(
        publisher: ServiceContext, consumer: Consumer, clock: FixedClock) -> None:
    consumer.handlers.broken = True
    direct = consumer.post(envelope("00000000-0000-4000-8000-000000000003", topic="boom.exploded"))
    assert direct.status_code == 500
    assert direct.headers["Content-Type"] == "application/problem+json"
    assert direct.json()["code"] == "internal_error"

    event_id = publish(publisher, "boom.exploded", "sub-1")
    assert relay_once(publisher, [consumer.subscriber], token=TOKEN) == 0
    row = outbox(publisher)[event_id]
    assert (row.published_at, row.attempts, row.last_error) == (None, 1, "consumer: HTTP 500 internal_error")
    assert consumer.count(Inbox) == consumer.count(Effect) == 0  # the handler's write went too

    consumer.handlers.broken = False
    clock.advance(backoff(1))
    assert relay_once(publisher, [consumer.subscriber], token=TOKEN) == 1
    assert [row.outcome for row in consumer.inbox()] == ["fixed"]
    assert consumer.count(Effect) == 1


# --- the endpoint's door ------------------------------------------------------------------
@pytest.mark.parametrize(("token", "body", "status", "code"), [
    (service_token(roles=()), envelope("00000000-0000-4000-8000-000000000004"), 403, "service_only"),
    (service_token(roles=("admin",)), {"id": 1}, 403, "service_only"),  # refused before validation
    (None, envelope("00000000-0000-4000-8000-000000000005"), 401, "unauthenticated"),
    ("not-a-token", envelope("00000000-0000-4000-8000-000000000006"), 401, "invalid_token"),
    (TOKEN, {"id": "00000000-0000-4000-8000-000000000007", "topic": "subscription.created"},
     422, "validation_failed"),
    (TOKEN, envelope("00000000-0000-4000-8000-000000000008", occurred_at="2026-11-21T12:00:00"),
     422, "validation_failed"),  # no offset
    (TOKEN, envelope("0" * 37), 422, "validation_failed"),
    (TOKEN, envelope("00000000-0000-4000-8000-000000000009", payload=[1, 2]), 422, "validation_failed"),
    (TOKEN, envelope("00000000-0000-4000-8000-000000000010", extra=True), 422, "validation_failed"),
])
def test_the_endpoint_refuses_and_writes_nothing(consumer: Consumer, token: str | None, body: Any,
                                                  status: int, code: str) -> None:
    response = consumer.post(body, token=token)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert consumer.count(Inbox) == consumer.count(Effect) == 0
    assert consumer.handlers.calls == []


PUBLISHER_KEY, OTHER_KEY = generate_service_key(), generate_service_key()


@pytest.fixture
def keyed_consumer(db_urls: tuple[str, str], clock: FixedClock) -> Iterator[Consumer]:
    """A consumer that trusts two services' own keys: the publisher's and another's."""
    keys = json.dumps({"publisher": public_key_pem(PUBLISHER_KEY), "other": public_key_pem(OTHER_KEY)})
    ctx = build_context("consumer", replace(make_settings("consumer", db_urls[1]), service_public_keys=keys),
                        clock, Outbox, Funnel, Exposure)
    Base.metadata.create_all(ctx.engine)
    handlers = Handlers()
    app = create_service_app(ctx, title="Consumer", description="Test consumer",
                             blueprints=[events_blueprint(Inbox, handlers.mapping())])
    server = LiveServer(app)
    yield Consumer(ctx, app, server, handlers)
    server.stop()
    ctx.close()


def test_a_service_delivers_only_events_it_published_itself(keyed_consumer: Consumer) -> None:
    now = SystemClock().now()
    other = issue_service_token(OTHER_KEY, "other", "consumer", now=now)
    posing = keyed_consumer.post(envelope("00000000-0000-4000-8000-000000000021"), token=other)
    assert (posing.status_code, posing.json()["code"]) == (403, "source_not_allowed")
    assert "other may not publish subscription.created as publisher" in posing.json()["detail"]
    assert keyed_consumer.count(Inbox) == keyed_consumer.count(Effect) == 0
    own = issue_service_token(PUBLISHER_KEY, "publisher", "consumer", now=now)
    delivered = keyed_consumer.post(envelope("00000000-0000-4000-8000-000000000021"), token=own)
    assert delivered.status_code == 200 and keyed_consumer.count(Effect) == 1


def test_a_refused_relay_keeps_the_row(publisher: ServiceContext, consumer: Consumer) -> None:
    event_id = publish(publisher, "subscription.created", "sub-1")
    user_token = service_token(roles=())
    assert relay_once(publisher, [consumer.subscriber], token=user_token) == 0
    row = outbox(publisher)[event_id]
    assert (row.published_at, row.attempts, row.last_error) == (None, 1, "consumer: HTTP 403 service_only")
    assert user_token not in row.last_error


# --- concurrency (PostgreSQL) ----------------------------------------------------------------
@pytest.mark.usefixtures("postgres_only")
def test_two_relays_deliver_each_event_once(publisher: ServiceContext, consumer: Consumer,
                                            clock: FixedClock) -> None:
    ids: set[str] = set()
    for _ in range(20):
        uow = publisher.uow()
        with uow:
            ids |= {uow.publish("subscription.created", {"subject": f"sub-{n}"}) for n in range(10)}
            uow.commit()
        clock.advance(timedelta(milliseconds=1))
    assert len(ids) == 200

    start = threading.Barrier(2)
    sessions = [RecordingSession(), RecordingSession()]
    published = [0, 0]
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait(timeout=10)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                count = relay_once(publisher, [consumer.subscriber], token=TOKEN, batch=10,
                                   http=sessions[index])
                published[index] += count
                if count == 0 and all(row.published_at for row in outbox(publisher).values()):
                    return
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert failures == []

    sent = [event for session in sessions for _, event in session.sent]
    assert sorted(sent) == sorted(ids)  # every event sent, none twice
    assert all(published) and sum(published) == 200  # both relays took part
    assert all(answer["outcome"] != "duplicate" for s in sessions for answer in s.answers)
    rows = outbox(publisher).values()
    assert all(row.published_at is not None and row.attempts == 0 for row in rows)
    assert len(consumer.handlers.calls) == consumer.count(Inbox) == consumer.count(Effect) == 200
