"""Delivery against a real SMTP server (aiosmtpd keeping mail in a Maildir):
sent once with text and HTML, not before it is due, retried after a 4xx,
failed after a 5xx, and, with the worker killed mid-batch (once, or ten
times in 600 messages), every message sent and marked sent exactly once and
in the mailbox once (a re-send carries the same Message-ID, and the sink
keeps one copy per Message-ID). Leases and retries run on the machine's
clock: a 400-day jump of business time sends nothing twice. An HTTP mail API
behind the same port gets the Message-ID as its idempotency key."""

from __future__ import annotations

import asyncio
import mailbox
import os
import signal
import smtplib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage, Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from benchmarks.mail_kill import insert_due, kill_run, sender
from devtools.mailsink import MaildirHandler, start
from persistence.db import make_engine
from services.common.clock import FixedClock, OffsetClock
from services.notifications.adapters.mail_api import HttpMailApi
from services.notifications.adapters.mailer import SmtpMailer
from services.notifications.adapters.models import FunnelEventRow, Notification
from services.notifications.app import build_notifications, create_app, make_mailer
from services.notifications.config import mail_settings
from services.notifications.domain.schedule import message_id
from services.notifications.usecases.delivery import DeliveryReport, deliver_due
from tests.conftest import NOW, make_settings
from tests.support import auth, free_port

SERVICE = auth(0, roles=("service",))
ADMIN = auth(9, roles=("admin",))
ENDS = NOW + timedelta(days=30)
TRIAL = {"trial_id": 7, "namespace_id": 100, "namespace_path": "acme", "kind": "ultimate", "status": "active",
         "ends_at": ENDS.isoformat(), "email": "owner@acme.test", "occurred_at": NOW.isoformat()}
ORDER = {"order_id": 42, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
         "company": "Acme Corp", "plan": "premium", "seats": 5, "currency": "USD", "subtotal": 174000,
         "discount_total": 0, "total": 174000, "term_start": "2026-11-21", "term_end": "2027-11-21",
         "lines": [{"description": "Premium plan, 5 seats, 12 months", "quantity": 5, "unit_amount": 34800,
                    "amount": 174000, "discount": 0, "net": 174000}],
         "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}, "discount_code": None}


# --- SMTP servers ----------------------------------------------------------------------
class Moody(MaildirHandler):
    """The local mail sink, but it can answer 451 to the first N messages, refuse
    some recipients with 550, and take its time over each message."""

    def __init__(self, directory: Path, *, defer_first: int = 0, refuse: tuple[str, ...] = (),
                 data_reply: str | None = None, delay: float = 0.0) -> None:
        super().__init__(directory)
        self.defer_first, self.refuse, self.data_reply, self.delay = defer_first, refuse, data_reply, delay
        self.deferred = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.deferred < self.defer_first:
            self.deferred += 1
            return "451 4.3.0 try later"
        if self.data_reply:
            return self.data_reply
        return await super().handle_DATA(server, session, envelope)


class Smtp:
    def __init__(self, directory: Path, handler: MaildirHandler | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        if handler is None:
            self.controller = start(directory, port=self.port)
        else:
            self.controller = Controller(handler, hostname="127.0.0.1", port=self.port)
            self.controller.start()

    def messages(self) -> list[Message]:
        box = mailbox.Maildir(str(self.directory), create=False)
        return [box[key] for key in box.keys()]

    def count(self) -> int:
        return len(os.listdir(self.directory / "new"))

    @property
    def handler(self) -> MaildirHandler:
        return self.controller.handler  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.controller.loop.is_running():
            self.controller.stop()


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def smtp_for(maildir: Path) -> Iterator[Callable[..., Smtp]]:
    servers: list[Smtp] = []

    def make(**behaviour: Any) -> Smtp:
        server = Smtp(maildir, Moody(maildir, **behaviour) if behaviour else None)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def db_url(fresh_db: Callable[[str], str]) -> str:
    return fresh_db("notifications")


@pytest.fixture
def machine() -> FixedClock:
    """The machine's clock, which leases and retries run on; `clock` is business time."""
    return FixedClock(NOW)


@pytest.fixture
def notifications_app(db_url: str, clock: FixedClock, machine: FixedClock) -> Iterator[Flask]:
    flask_app = create_app(make_settings("notifications", db_url), clock, machine_clock=machine)
    yield flask_app
    flask_app.extensions["service_context"].close()


@pytest.fixture
def client(notifications_app: Flask) -> FlaskClient:
    return notifications_app.test_client()


def send_event(client: FlaskClient, topic: str, payload: dict[str, Any]) -> None:
    response = client.post("/internal/events", headers=SERVICE, json={
        "id": str(uuid.uuid4()), "topic": topic, "source": "trials" if topic.startswith("trial.") else "checkout",
        "occurred_at": NOW.isoformat(),
        "payload": payload})
    assert response.status_code == 200, response.json


def rows(app: Flask) -> dict[str, Notification]:
    with Session(app.extensions["service_context"].engine) as s:
        return {n.dedupe_key: n for n in s.scalars(select(Notification))}


def run(app: Flask, smtp: Smtp, **kwargs: Any) -> DeliveryReport:
    mailer = SmtpMailer("127.0.0.1", smtp.port, timeout=10)
    try:
        return deliver_due(app.extensions["notifications"], mailer, **kwargs)
    finally:
        mailer.close()


def funnel_steps(app: Flask) -> list[tuple[str, dict[str, Any], str]]:
    with Session(app.extensions["service_context"].engine) as s:
        return [(r.step, r.properties, r.traffic) for r in s.scalars(select(FunnelEventRow))]


# --- in-process delivery ---------------------------------------------------------------
def test_due_mail_is_sent_once_with_text_html_and_its_message_id(client: FlaskClient, notifications_app: Flask,
                                                                 smtp_for: Callable[..., Smtp]) -> None:
    smtp = smtp_for()
    send_event(client, "order.completed", ORDER)
    send_event(client, "trial.started", TRIAL)
    report = run(notifications_app, smtp)
    assert (report.claimed, report.sent, report.failed) == (2, 2, 0)  # the trial reminders are not due
    assert run(notifications_app, smtp).claimed == 0
    received = {str(m["X-Notification-Key"]): m for m in smtp.messages()}
    assert sorted(received) == ["receipt/42", "trial_started/7"]
    receipt = received["receipt/42"]
    assert receipt["Message-ID"] == message_id("receipt/42", "checkout.test")
    assert receipt["To"] == "billing@acme.test" and receipt["From"] == "Checkout <billing@checkout.test>"
    assert receipt["Subject"] == "Your receipt for acme: $1,740.00"
    assert receipt.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in receipt.walk()
             if not part.is_multipart()}
    assert sorted(parts) == ["text/html", "text/plain"]
    assert "Total charged: $1,740.00" in parts["text/plain"] and "<strong>$1,740.00</strong>" in parts["text/html"]
    sent = rows(notifications_app)["receipt/42"]
    assert (sent.status, sent.sent_at, sent.attempts, sent.message_id) == (
        "sent", NOW, 1, message_id("receipt/42", "checkout.test"))
    steps = funnel_steps(notifications_app)
    assert sorted((step, props["template"], traffic) for step, props, traffic in steps) == [
        ("notification_sent", "receipt", "real"), ("notification_sent", "trial_started", "real")]


def test_mail_waits_until_it_is_due(client: FlaskClient, notifications_app: Flask, clock: FixedClock,
                                    smtp_for: Callable[..., Smtp]) -> None:
    smtp = smtp_for()
    send_event(client, "trial.started", TRIAL)
    assert run(notifications_app, smtp).sent == 1  # trial_started
    clock.set(ENDS - timedelta(days=7, seconds=1))
    assert run(notifications_app, smtp).claimed == 0
    clock.advance(timedelta(seconds=1))
    assert run(notifications_app, smtp).sent == 1
    clock.set(ENDS - timedelta(days=1))
    assert run(notifications_app, smtp).sent == 1
    subjects = sorted(str(m["Subject"]) for m in smtp.messages())
    assert subjects == ["Your Ultimate trial for acme ends in 1 day", "Your Ultimate trial for acme ends in 7 days",
                        "Your Ultimate trial for acme has started"]
    assert {n.status for n in rows(notifications_app).values()} == {"sent"}


def test_a_temporary_refusal_is_retried_with_backoff_then_sent(client: FlaskClient, notifications_app: Flask,
                                                               clock: FixedClock, machine: FixedClock,
                                                               smtp_for: Callable[..., Smtp]) -> None:
    smtp = smtp_for(defer_first=2)
    send_event(client, "order.completed", ORDER)
    assert run(notifications_app, smtp).retried == 1
    row = rows(notifications_app)["receipt/42"]
    assert (row.status, row.attempts, row.next_attempt_at) == ("scheduled", 1, NOW + timedelta(seconds=60))
    assert row.last_error is not None and row.last_error.startswith("451")
    clock.advance(timedelta(days=400))  # business time travels; the backoff is the machine's
    machine.advance(timedelta(seconds=59))
    assert run(notifications_app, smtp).claimed == 0  # not before the backoff
    machine.advance(timedelta(seconds=1))
    assert run(notifications_app, smtp).retried == 1
    assert rows(notifications_app)["receipt/42"].next_attempt_at == machine.now() + timedelta(seconds=300)
    machine.advance(timedelta(seconds=300))
    assert run(notifications_app, smtp).sent == 1
    row = rows(notifications_app)["receipt/42"]
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert [str(m["X-Notification-Key"]) for m in smtp.messages()] == ["receipt/42"]


def test_an_unreachable_server_is_temporary_and_attempts_run_out(client: FlaskClient, notifications_app: Flask,
                                                                 machine: FixedClock) -> None:
    send_event(client, "order.completed", ORDER)
    dead = SmtpMailer("127.0.0.1", free_port(), timeout=2)
    notifications = notifications_app.extensions["notifications"]
    outcomes = []
    for _ in range(5):
        report = deliver_due(notifications, dead)
        outcomes.append((report.retried, report.failed))
        machine.advance(timedelta(hours=3))
    assert outcomes == [(1, 0), (1, 0), (1, 0), (1, 0), (0, 1)]
    row = rows(notifications_app)["receipt/42"]
    assert (row.status, row.attempts) == ("failed", 5)
    assert row.last_error is not None and "ConnectionRefused" in row.last_error
    machine.advance(timedelta(days=1))
    assert deliver_due(notifications, dead).claimed == 0


@pytest.mark.parametrize("behaviour,error", [
    ({"refuse": ("billing@acme.test",)}, "550 recipient refused: 5.1.1 No such user here"),
    ({"data_reply": "554 5.7.1 Message rejected as spam"}, "554 5.7.1 Message rejected as spam"),
])
def test_a_permanent_refusal_fails_and_support_can_see_it(client: FlaskClient, notifications_app: Flask,
                                                          clock: FixedClock, smtp_for: Callable[..., Smtp],
                                                          behaviour: dict[str, Any], error: str) -> None:
    smtp = smtp_for(**behaviour)
    send_event(client, "order.completed", ORDER)
    send_event(client, "trial.started", TRIAL)  # another recipient, delivered fine
    report = run(notifications_app, smtp)
    expected = (1, 0, 1) if "refuse" in behaviour else (0, 0, 2)
    assert (report.sent, report.retried, report.failed) == expected
    clock.advance(timedelta(days=1))
    assert run(notifications_app, smtp).sent == 0  # never tried again
    failed = client.get("/notifications?recipient=billing@acme.test&status=failed", headers=ADMIN)
    assert failed.status_code == 200
    [shown] = failed.json
    assert (shown["template"], shown["status"], shown["attempts"], shown["last_error"]) == (
        "receipt", "failed", 1, error)
    assert client.get("/notifications?recipient=billing@acme.test", headers=auth(1)).status_code == 403


def test_a_stop_request_gives_the_rest_of_the_batch_back(client: FlaskClient, notifications_app: Flask,
                                                         smtp_for: Callable[..., Smtp]) -> None:
    smtp = smtp_for()
    send_event(client, "order.completed", ORDER)
    send_event(client, "trial.started", TRIAL)
    stop = threading.Event()

    class StopAfterOne(SmtpMailer):
        def send(self, message: Any) -> None:
            super().send(message)
            stop.set()

    mailer = StopAfterOne("127.0.0.1", smtp.port)
    report = deliver_due(notifications_app.extensions["notifications"], mailer, stop=stop)
    mailer.close()
    assert (report.claimed, report.sent, report.released) == (2, 1, 1)
    assert sorted(n.status for n in rows(notifications_app).values() if n.send_after <= NOW) == [
        "scheduled", "sent"]
    assert run(notifications_app, smtp).sent == 1


def test_a_sender_dying_after_the_250_sends_again_only_after_the_machine_lease(
        client: FlaskClient, notifications_app: Flask, clock: FixedClock, machine: FixedClock,
        smtp_for: Callable[..., Smtp]) -> None:
    smtp = smtp_for()
    send_event(client, "order.completed", ORDER)
    on_record: list[str | None] = []

    class DiesAfterThe250(SmtpMailer):
        def send(self, message: Any) -> None:
            on_record.append(rows(notifications_app)["receipt/42"].message_id)  # before the conversation
            super().send(message)
            raise KeyboardInterrupt  # killed before recording it as sent

    dying = DiesAfterThe250("127.0.0.1", smtp.port)
    with pytest.raises(KeyboardInterrupt):
        deliver_due(notifications_app.extensions["notifications"], dying)
    dying.close()
    expected = message_id("receipt/42", "checkout.test")
    assert on_record == [expected]
    assert rows(notifications_app)["receipt/42"].status == "sending"
    clock.advance(timedelta(days=400))  # time travel does not end the lease: it is the machine's
    machine.advance(timedelta(seconds=299))
    assert run(notifications_app, smtp).claimed == 0
    machine.advance(timedelta(seconds=1))
    assert run(notifications_app, smtp).sent == 1  # the dead worker's message, sent again
    assert rows(notifications_app)["receipt/42"].status == "sent"
    assert [str(m["Message-ID"]) for m in smtp.messages()] == [expected]  # the sink kept one copy
    assert (smtp.handler.received, smtp.handler.dropped) == (2, [expected])


def _mail(message_id: str | None, to: str = "owner@acme.test") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "billing@checkout.test", to, "Hello"
    if message_id:
        message["Message-ID"] = message_id
    message.set_content("Hello")
    return message


def test_the_sink_keeps_one_copy_per_message_id_and_recipient_across_restarts(
        smtp_for: Callable[..., Smtp]) -> None:
    def send(smtp: Smtp, *messages: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", smtp.port) as client:
            for message in messages:
                assert client.send_message(message) == {}  # every copy is accepted...

    first = smtp_for()
    send(first, _mail("<a@checkout.test>"), _mail("<a@checkout.test>"), _mail("<a@checkout.test>", "b@acme.test"),
         _mail(None), _mail(None))
    assert first.count() == 4  # ...one is kept per Message-ID and mailbox; no Message-ID, no way to tell
    first.stop()
    again = smtp_for()  # a restarted sink reads what the folder holds
    send(again, _mail("<a@checkout.test>"), _mail("<b@checkout.test>"))
    assert again.count() == 5 and (again.handler.received, again.handler.dropped) == (2, ["<a@checkout.test>"])
    assert Counter(str(m["Message-ID"]) for m in again.messages()) == Counter(
        {"<a@checkout.test>": 2, "<b@checkout.test>": 1, "None": 2})


# --- the worker, killed mid-batch ------------------------------------------------------
TOTAL = 200


def _statuses(url: str) -> tuple[Counter[str], set[str], int]:
    engine = make_engine(url)
    with Session(engine) as s:
        status = Counter(dict(s.execute(select(Notification.status, func.count()).group_by(Notification.status))
                              .all()))
        in_flight = set(s.scalars(select(Notification.dedupe_key).where(Notification.status == "sending")))
        sent_events = s.scalar(select(func.count()).select_from(FunnelEventRow)) or 0
    engine.dispose()
    return status, in_flight, sent_events


def test_a_worker_killed_mid_batch_loses_nothing_and_marks_each_sent_once(
        db_url: str, smtp_for: Callable[..., Smtp], tmp_path: Path) -> None:
    insert_due(db_url, TOTAL)
    smtp = smtp_for(delay=0.02)
    log = tmp_path / "worker.log"
    worker = sender(db_url, smtp.port, "--batch", "25", "--interval", "0.2", log=log)
    deadline = time.monotonic() + 60
    while smtp.count() < 60:
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the worker sent too little in a minute:\n" + log.read_text()
        time.sleep(0.005)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    time.sleep(0.2)  # let the server finish writing what it was receiving

    status, in_flight, _ = _statuses(db_url)
    assert 0 < status["sent"] < TOTAL, status
    assert sum(status.values()) == TOTAL and set(status) <= {"sent", "sending", "scheduled"}

    again = sender(db_url, smtp.port, "--once", "--lease-seconds", "0", log=log)
    assert again.wait(timeout=120) == 0, log.read_text()

    status, left_sending, sent_events = _statuses(db_url)
    assert status == Counter({"sent": TOTAL}) and not left_sending
    assert sent_events == TOTAL  # one notification_sent each: marked sent exactly once
    engine = make_engine(db_url)
    with Session(engine) as s:
        recorded = dict(s.execute(select(Notification.dedupe_key, Notification.message_id)).all())
    engine.dispose()
    expected = {f"receipt/{i}": message_id(f"receipt/{i}", "checkout.test") for i in range(TOTAL)}
    assert recorded == expected

    received = [(str(m["X-Notification-Key"]), str(m["Message-ID"])) for m in smtp.messages()]
    assert all(expected[key] == mid for key, mid in received)
    ids = Counter(mid for _, mid in received)
    assert len(ids) == TOTAL and set(ids.values()) == {1}  # in the mailbox once each
    resent = {key for key, mid in expected.items() if mid in smtp.handler.dropped}  # the same message again
    assert resent <= in_flight  # only what was in the worker's hands when it died went twice


def test_the_sender_killed_ten_times_in_600_messages_loses_none_and_delivers_none_twice(
        db_url: str, tmp_path: Path) -> None:
    run = kill_run(db_url, tmp_path, count=600, kills=10)
    print(f"600 notifications, 10 SIGKILLs: lost {run.lost}, sent twice {run.sent_twice} "
          f"(dropped by the sink), in the mailbox twice {run.in_mailbox_twice}")
    assert (run.lost, run.in_mailbox_twice) == (0, 0)
    assert run.marked_sent == run.sent_events == 600  # each marked sent once, with one funnel event


def test_sigterm_finishes_the_message_in_hand_and_gives_the_rest_back(
        db_url: str, smtp_for: Callable[..., Smtp], tmp_path: Path) -> None:
    insert_due(db_url, 60)
    smtp = smtp_for(delay=0.02)
    log = tmp_path / "worker.log"
    worker = sender(db_url, smtp.port, "--batch", "30", "--interval", "0.2", log=log)
    deadline = time.monotonic() + 60
    while smtp.count() < 10:
        assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.005)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, log.read_text()
    status, in_flight, sent_events = _statuses(db_url)
    assert not in_flight and set(status) == {"sent", "scheduled"}, status
    assert status["sent"] == sent_events == smtp.count() < 60  # nothing sent that is not marked


def test_two_workers_side_by_side_send_each_message_once(postgres_only: None, db_url: str,
                                                         smtp_for: Callable[..., Smtp]) -> None:
    insert_due(db_url, 100)
    smtp = smtp_for(delay=0.005)
    apps = [build_notifications(make_settings("notifications", db_url)) for _ in range(3)]
    reports: list[DeliveryReport] = []

    def work(app: Any) -> None:
        mailer = SmtpMailer("127.0.0.1", smtp.port)
        try:
            while (report := deliver_due(app, mailer, batch=10)).claimed:
                reports.append(report)
        finally:
            mailer.close()

    threads = [threading.Thread(target=work, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for app in apps:
        app.ctx.close()
    assert sum(r.sent for r in reports) == 100 and sum(r.claimed for r in reports) == 100
    keys = Counter(str(m["X-Notification-Key"]) for m in smtp.messages())
    assert len(keys) == 100 and set(keys.values()) == {1}
    assert _statuses(db_url)[0] == Counter({"sent": 100})


# --- time travel ------------------------------------------------------------------------
def test_a_400_day_jump_of_the_business_clock_sends_nothing_twice(
        db_url: str, smtp_for: Callable[..., Smtp], tmp_path: Path) -> None:
    """`make timetravel` moves the clock the running sender shares, then delivers
    mail itself: the batch the sender holds must not look abandoned."""
    insert_due(db_url, 120)
    smtp = smtp_for(delay=0.02)
    clock_file = tmp_path / "clock.json"
    log = tmp_path / "worker.log"
    worker = sender(db_url, smtp.port, "--batch", "40", "--interval", "0.2", log=log,
                     CLOCK_FILE=str(clock_file))
    travel = build_notifications(make_settings("notifications", db_url).with_overrides(clock_file=str(clock_file)))
    try:
        deadline = time.monotonic() + 60
        while smtp.count() < 5:  # the sender is in the middle of its first batch
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.005)
        assert isinstance(travel.ctx.clock, OffsetClock)
        travel.ctx.clock.advance(timedelta(days=400))
        mailer = SmtpMailer("127.0.0.1", smtp.port)
        try:
            while deliver_due(travel, mailer).claimed:  # what make timetravel does each day
                pass
        finally:
            mailer.close()
        while _statuses(db_url)[0] != Counter({"sent": 120}):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=10)
        travel.ctx.close()
    received = Counter(str(m["Message-ID"]) for m in smtp.messages())
    assert len(received) == 120 and max(received.values()) == 1, received.most_common(3)


# --- the HTTP mail API ------------------------------------------------------------------
class Provider(ThreadingHTTPServer):
    """A mail provider's API that honours idempotency keys: one message per key,
    a repeated key answered as the first was. `answers` are statuses to give first."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ProviderHandler)
        self.messages: dict[str, bytes] = {}
        self.requests: list[dict[str, str | None]] = []
        self.answers: list[int] = []
        self.url = f"http://127.0.0.1:{self.server_port}/v1/messages"


class ProviderHandler(BaseHTTPRequestHandler):
    server: Provider

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers.get("Idempotency-Key")
        self.server.requests.append({"key": key, "authorization": self.headers.get("Authorization"),
                                     "type": self.headers.get("Content-Type")})
        if self.server.answers:
            status, reply = self.server.answers.pop(0), b"not now"
        elif not key:
            status, reply = 400, b"an Idempotency-Key is required"
        else:
            status, reply = 202, b"queued"
            self.server.messages.setdefault(key, body)  # the same key again: the first request's answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_the_mail_api_gets_the_message_id_as_its_idempotency_key_so_a_resend_is_one_mail(
        client: FlaskClient, notifications_app: Flask, machine: FixedClock, provider: Provider) -> None:
    notifications = notifications_app.extensions["notifications"]
    send_event(client, "order.completed", ORDER)

    class DiesAfterTheAnswer(HttpMailApi):
        def send(self, message: Any) -> None:
            super().send(message)
            raise KeyboardInterrupt  # killed before recording it as sent

    dying = DiesAfterTheAnswer(provider.url, token="mail-api-token")
    with pytest.raises(KeyboardInterrupt):
        deliver_due(notifications, dying)
    dying.close()
    machine.advance(timedelta(minutes=5))  # the lease is over: sent again
    mailer = make_mailer(mail_settings({"MAIL_API_URL": provider.url, "MAIL_API_TOKEN": "mail-api-token"}))
    assert isinstance(mailer, HttpMailApi)
    assert deliver_due(notifications, mailer).sent == 1
    mailer.close()
    expected = message_id("receipt/42", "checkout.test")
    assert [r["key"] for r in provider.requests] == [expected, expected]
    assert {(r["authorization"], r["type"]) for r in provider.requests} == {
        ("Bearer mail-api-token", "message/rfc822")}
    [(key, raw)] = provider.messages.items()  # one mail, though it was sent twice
    message = message_from_bytes(raw, policy=email_policy.default)
    assert (key, message["Message-ID"], message["X-Notification-Key"]) == (expected, expected, "receipt/42")
    assert message["Subject"] == "Your receipt for acme: $1,740.00" and message["To"] == "billing@acme.test"
    assert sorted(part.get_content_type() for part in message.walk() if not part.is_multipart()) == [
        "text/html", "text/plain"]
    assert rows(notifications_app)["receipt/42"].status == "sent"


@pytest.mark.parametrize("status,outcome", [(503, "retried"), (429, "retried"), (409, "retried"),
                                            (422, "failed"), (401, "failed")])
def test_the_mail_api_answers_are_temporary_or_permanent(client: FlaskClient, notifications_app: Flask,
                                                         provider: Provider, status: int, outcome: str) -> None:
    send_event(client, "order.completed", ORDER)
    provider.answers = [status]
    mailer = HttpMailApi(provider.url)
    report = deliver_due(notifications_app.extensions["notifications"], mailer)
    mailer.close()
    assert (report.retried, report.failed) == ((1, 0) if outcome == "retried" else (0, 1))
    row = rows(notifications_app)["receipt/42"]
    assert row.last_error is not None and row.last_error.startswith(f"HTTP {status}") and "not now" in row.last_error
    assert provider.messages == {}


def test_an_unreachable_mail_api_is_temporary(client: FlaskClient, notifications_app: Flask) -> None:
    send_event(client, "order.completed", ORDER)
    mailer = HttpMailApi(f"http://127.0.0.1:{free_port()}/v1/messages", timeout=2)
    assert deliver_due(notifications_app.extensions["notifications"], mailer).retried == 1
    mailer.close()
    assert "ConnectionError" in (rows(notifications_app)["receipt/42"].last_error or "")


def test_the_mail_api_token_stays_out_of_the_settings_repr() -> None:
    settings = mail_settings({"MAIL_API_URL": "https://mail.example/v1/messages", "MAIL_API_TOKEN": "s3cret-token"})
    assert "s3cret-token" not in repr(settings)
    assert isinstance(make_mailer(mail_settings({})), SmtpMailer)


# --- reminders sent late -------------------------------------------------------------------
def test_a_late_renewal_reminder_says_the_days_left_or_gives_way_to_the_next(
        client: FlaskClient, notifications_app: Flask, clock: FixedClock, smtp_for: Callable[..., Smtp]) -> None:
    smtp = smtp_for()
    renews = (NOW + timedelta(days=65)).date().isoformat()
    upcoming = {"subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
                "renewal_date": renews, "days_before": 90, "next_days_before": 45, "auto_renew": False,
                "plan": "premium", "quote": None, "card": None}
    send_event(client, "subscription.renewal_upcoming", upcoming)  # found 65 days before: the 90-day reminder
    assert run(notifications_app, smtp).sent == 1
    [text] = [part.get_payload(decode=True).decode() for part in smtp.messages()[0].walk()
              if part.get_content_type() == "text/plain"]
    assert "ends on January 25, 2027 (2027-01-25), in 65 days, and will not renew" in text
    send_event(client, "subscription.renewal_upcoming", {**upcoming, "subscription_id": 10})
    clock.advance(timedelta(days=21))  # mail stayed unsent until the 45-day reminder is due: that one says it
    report = run(notifications_app, smtp)
    assert (report.claimed, report.sent, report.skipped) == (1, 0, 1)
    assert smtp.count() == 1
    skipped = client.get("/notifications?status=canceled", headers=ADMIN).json
    assert [(n["dedupe_key"], n["last_error"]) for n in skipped] == [
        (f"renewal_reminder/10/{renews}/90", "late: the renewal is 44 days away and the 45-day reminder is due")]
