"""`make run` as people use it: stopped and started again, reset, run twice, and
run as a second stack beside the first. Each stack is `python -m devtools.devstack`
in a folder of its own (VAR_DIR) on free ports, driven over HTTP."""

from __future__ import annotations

import mailbox
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import stripe

from devtools.devcard import confirm_card_setup
from devtools.devoidc import provider_token
from services.common.config import (
    DEV_OIDC_CLIENT_ID,
    DEV_OIDC_CLIENT_SECRET,
    ROOT,
    STACK_PORTS,
    local_url,
    port_for,
)
from tests.support import free_port

pytestmark = pytest.mark.e2e

T = TypeVar("T")
START_SECONDS = 90  # eight processes on a busy two-core machine
# Settings a developer's shell may hold that would point a stack elsewhere than its own folder and ports.
LEAKY = re.compile(r"(_PORT|_URL|_DATABASE_URL)$|^(DATABASE_URL|STRIPE_API_BASE|STRIPE_JS_URL|PORT_OFFSET"
                   r"|VAR_DIR|CLOCK_FILE|AUTH_SECRET|STRIPE_WEBHOOK_SECRET|APP_ENV|OIDC_ISSUER|OIDC_ROLE_MAP)$")


class Stack:
    """One `make run` in its own folder, with the port settings given."""

    def __init__(self, var: Path, ports: dict[str, str]) -> None:
        self.var = var
        self.env = {**{k: v for k, v in os.environ.items() if not LEAKY.search(k)},
                    "VAR_DIR": str(var), **ports}
        self.checkout, self.trials, self.stripe = (local_url(name, self.env)
                                                   for name in ("checkout", "trials", "localstripe"))
        self.proc: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None
        self.lines: list[str] = []

    def command(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "devtools.devstack", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> Stack:
        self.lines = []
        self.proc = subprocess.Popen([sys.executable, "-m", "devtools.devstack"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self.reader.start()
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_until_up(self) -> Stack:
        assert self.proc is not None
        deadline = time.monotonic() + START_SECONDS
        while not any("The stack is up." in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the stack did not come up:\n" + "\n".join(self.lines[-40:]))
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        """Ctrl-C, as a person stops it; what is left after that is killed by its pid."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            for pid in re.findall(r"started \(pid=(\d+)\)", "\n".join(self.lines)):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def count(self, service: str, sql: str) -> int:
        """One number from a service's database, read only."""
        with sqlite3.connect(f"file:{self.var / (service + '.db')}?mode=ro", uri=True) as db:
            return int(db.execute(sql).fetchone()[0])

    def receipts(self) -> list[str]:
        """The subjects of the receipts in the stack's mail folder."""
        folder = self.var / "mail"
        subjects = [str(m["Subject"]) for m in mailbox.Maildir(folder, create=False)] if folder.exists() else []
        return [s for s in subjects if s.startswith("Your receipt")]

    def stripe_customers(self) -> list[str]:
        client = stripe.StripeClient("sk_test_inspector", base_addresses={"api": self.stripe})
        return [c.id for c in client.v1.customers.list(params={"limit": 100}).data]


# Below the kernel's ephemeral range: a stack binds its ports seconds after they
# are chosen, and an outgoing connection could take an ephemeral one meanwhile.
PORTS = range(10_000, 32_000)


def explicit_ports() -> dict[str, str]:
    """Every port set one by one."""
    ports = [port for port in random.sample(PORTS, 200) if _bindable(port)][:len(STACK_PORTS)]
    return {f"{name.upper()}_PORT": str(port) for name, port in zip(STACK_PORTS, ports, strict=True)}


def offset_beside(*stacks: Stack) -> dict[str, str]:
    """One PORT_OFFSET whose ports are all free and none of the other stacks'."""
    taken = {port_for(name, s.env) for s in stacks for name in STACK_PORTS}
    highest = max(STACK_PORTS.values())
    for offset in random.sample(range(PORTS.start, PORTS.stop - highest), 500):
        ports = {port + offset for port in STACK_PORTS.values()}
        if not ports & taken and all(_bindable(port) for port in ports):
            return {"PORT_OFFSET": str(offset)}
    raise RuntimeError("no free PORT_OFFSET")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def eventually(check: Callable[[], T], timeout: float = 30, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.3)
    return result


def as_alice(stack: Stack) -> requests.Session:
    """Alice, with a token from the stack's own identity provider (as `make tokens` gets it)."""
    token = provider_token(local_url("oidc", stack.env), DEV_OIDC_CLIENT_ID, DEV_OIDC_CLIENT_SECRET, "1")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def add_card(stack: Stack, session: requests.Session) -> None:
    setup = session.post(f"{stack.checkout}/billing-account/card-setup", timeout=30)
    assert setup.status_code == 201, setup.text
    confirmed = confirm_card_setup(stack.stripe, setup.json()["client_secret"], "4242424242424242")
    assert "setupIntent" in confirmed, confirmed
    recorded = session.post(f"{stack.checkout}/billing-account/cards",
                            json={"setup_intent_id": setup.json()["setup_intent_id"]}, timeout=30)
    assert recorded.status_code == 201, recorded.text


def buy_acme(stack: Stack, session: requests.Session, seats: int) -> Any:
    return session.post(f"{stack.checkout}/purchases", timeout=30,
                        json={"namespace_id": 100, "plan": "premium", "seats": seats},
                        headers={"Idempotency-Key": f"acme-{seats}"})


@pytest.fixture(scope="module")
def two_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Stack]]:
    """A first stack with every port set by hand, and a second one moved by PORT_OFFSET alone."""
    first = Stack(tmp_path_factory.mktemp("first"), explicit_ports())
    second = Stack(tmp_path_factory.mktemp("second"), offset_beside(first))
    try:
        first.start()
        second.start()
        yield first.wait_until_up(), second.wait_until_up()
    finally:
        first.stop()
        second.stop()


def test_two_stacks_side_by_side_touch_nothing_of_each_other(two_stacks: tuple[Stack, Stack]) -> None:
    first, second = two_stacks
    for stack, seats in ((first, 5), (second, 7)):
        session = as_alice(stack)
        add_card(stack, session)
        bought = buy_acme(stack, session, seats)
        assert bought.status_code == 201, bought.text
    # Each localstripe holds its own stack's customer, and sends its webhooks to its own checkout.
    for stack in two_stacks:
        [customer] = stack.stripe_customers()
        assert stack.count("checkout", f"SELECT count(*) FROM billing_accounts "
                                       f"WHERE stripe_customer_id = '{customer}'") == 1
        eventually(lambda s=stack: s.count("checkout", "SELECT count(*) FROM stripe_events s JOIN orders o "
                                           "ON o.stripe_payment_intent_id = json_extract(s.payload, "
                                           "'$.data.object.id') WHERE s.type = 'payment_intent.succeeded'"),
                   what="the payment webhook reaches the stack's own checkout")
    # Each worker relays to its own services, and each receipt lands in its own mail folder.
    subscribed = "SELECT count(*) FROM inbox_events WHERE topic = 'subscription.created'"
    eventually(lambda: first.count("trials", subscribed) and second.count("trials", subscribed),
               what="each trials service hears of its own checkout's subscription")
    assert first.count("trials", subscribed) == second.count("trials", subscribed) == 1
    eventually(lambda: first.receipts() and second.receipts(), what="both receipts")
    assert first.receipts() == ["Your receipt for acme: $1,740.00"]
    assert second.receipts() == ["Your receipt for acme: $2,436.00"]
    # A trial on the second stack reaches the second stack's checkout only.
    session = as_alice(second)
    started = session.post(f"{second.trials}/namespaces/200/trials", json={"kind": "ultimate"}, timeout=30)
    assert started.status_code == 201, started.text
    eventually(lambda: session.get(f"{second.checkout}/namespaces/200/entitlements", timeout=10).json()["trials"],
               what="the trial reaches the second checkout")
    assert as_alice(first).get(f"{first.checkout}/namespaces/200/entitlements", timeout=10).json()["trials"] == []
    assert first.count("trials", "SELECT count(*) FROM trials") == 0


def test_make_run_again_says_the_stack_is_already_running(two_stacks: tuple[Stack, Stack]) -> None:
    first, _ = two_stacks
    began = time.monotonic()
    again = first.command(timeout=60)
    assert again.returncode != 0
    said = (again.stdout + again.stderr).strip().splitlines()
    assert len(said) == 1 and "already running" in said[0], said
    assert time.monotonic() - began < 20  # told at once: no migrations, no seeding, no processes


def test_a_stack_on_ports_another_holds_stops_before_touching_anything(two_stacks: tuple[Stack, Stack],
                                                                      tmp_path: Path) -> None:
    first, _ = two_stacks
    clash = Stack(tmp_path / "clash", {k: v for k, v in first.env.items() if k.endswith("_PORT")})
    said = clash.command(timeout=60)
    assert said.returncode != 0
    [line] = (said.stdout + said.stderr).strip().splitlines()
    assert str(port_for("checkout", first.env)) in line and "PORT_OFFSET" in line
    assert not (tmp_path / "clash" / "checkout.db").exists()  # nothing migrated, seeded or started
    assert requests.get(f"{first.checkout}/healthz", timeout=5).status_code == 200


def test_a_stack_keeps_its_stripe_state_across_restarts_until_reset(tmp_path: Path) -> None:
    var = tmp_path / "var"
    stack = Stack(var, offset_beside())
    try:
        stack.start().wait_until_up()
        session = as_alice(stack)
        add_card(stack, session)
        stack.stop()
        # Stopped means stopped: every port is free for the next `make run` at once.
        assert [name for name in STACK_PORTS if not _bindable(port_for(name, stack.env))] == []
        assert (var / "localstripe.pickle").exists()  # the stack's own Stripe state, not /tmp's
        stack.start().wait_until_up()
        session = as_alice(stack)  # the provider's keys live in memory: tokens do not outlive a restart
        bought = buy_acme(stack, session, 5)
        assert bought.status_code == 201, bought.text  # the saved card still exists at Stripe
        refused = stack.command("reset")
        assert refused.returncode != 0 and "running" in refused.stderr
        stack.stop()
        assert stack.command("reset").returncode == 0
        assert not any(var.glob("*.db")) and not (var / "localstripe.pickle").exists()
        assert not (var / "mail").exists()
        stack.start().wait_until_up()
        assert stack.stripe_customers() == []
        session = as_alice(stack)
        account = session.get(f"{stack.checkout}/billing-account", timeout=10).json()
        assert account["cards"] == [] and account["has_stripe_customer"] is False
        entitlements = session.get(f"{stack.checkout}/namespaces/100/entitlements", timeout=10).json()
        assert entitlements["plan"] == "free"
    finally:
        stack.stop()


def test_an_unreadable_stripe_state_file_is_set_aside_not_a_dead_end(tmp_path: Path) -> None:
    state = tmp_path / "localstripe.pickle"
    state.write_bytes(b"not a pickle")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "devtools.devstripe", "--port", str(port),
                             "--state", str(state)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": f"http://127.0.0.1:{port}"})
        customer = eventually(lambda: _create_customer(client), timeout=30, what="localstripe answers")
        assert state.with_name("localstripe.pickle.unreadable").read_bytes() == b"not a pickle"
        assert customer in state.read_bytes().decode("latin-1")  # saved in the new file
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "could not read" in err


def _create_customer(client: stripe.StripeClient) -> str | None:
    try:
        return str(client.v1.customers.create(params={"email": "x@test"}).id)
    except stripe.APIConnectionError:
        return None
