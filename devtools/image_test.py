"""`make image-test`: the smoke test of the real image, run with podman against
this machine's PostgreSQL (127.0.0.1:5432, user postgres) in fresh databases.

Every container runs the way Kubernetes runs it: APP_ENV=production, a
read-only root with a tmpfs /tmp, the image's non-root user, no-new-privileges.
They share the host's network, so they reach PostgreSQL on 127.0.0.1; every
port moves with PORT_OFFSET.

    1. the image's own APP_ENV is production: without secrets it refuses to start;
    2. `migrate` upgrades all four databases;
    3. localstripe, an SMTP sink and the stand-in identity provider (deploy/oidc_standin.py,
       over TLS with a certificate made here), from the same image; every role: serve
       checkout / trials / notifications, dashboard, worker checkout trials,
       worker experiments, deliver. Sign-in as in production: the provider's
       issuer, and an Ed25519 key of its own for each caller (the checkout and
       trials relays, in the worker; the platform's directory hooks, here);
    4. /healthz, /readyz and /metrics answer for each service (the dashboard: /healthz);
    5. one purchase through checkout, the owner's token from the provider (code
       flow with PKCE), relayed to notifications and trials, mailed,
       collected into the experiments' store;
    6. `podman stop` ends each role with status 0 within its grace period, and
       every outbox row marked published is in each subscriber's inbox.

    python -m devtools.image_test [--image devops-checkout:local] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests

from deploy.oidc_standin import DEMO_ROLE_MAP, provider_token, write_tls
from devtools.devcard import confirm_card_setup
from devtools.devstack import register_webhook
from identity.auth import generate_service_key, issue_service_token, public_key_pem
from loadtests.tokens import sign
from messaging.routing import ROUTES
from services.common.config import DEFAULT_PORTS, DEV_OIDC_CLIENT_ID, ROOT

PG = "postgresql://postgres@127.0.0.1:5432"
DATABASES = ("checkout", "trials", "notifications", "experiments")
# Kubernetes' terminationGracePeriodSeconds for each role (deploy/k8s/base).
GRACE = {"checkout": 45, "trials": 45, "notifications": 45, "dashboard": 45,
         "worker": 120, "collector": 60, "deliver": 60}
ROLES = {
    "checkout": ["serve", "checkout"], "trials": ["serve", "trials"],
    "notifications": ["serve", "notifications"], "dashboard": ["dashboard"],
    "worker": ["worker", "checkout", "trials"], "collector": ["worker", "experiments"],
    "deliver": ["deliver", "--interval", "1"],
}
# The worker first, in the middle of relaying a burst of events, while the services still answer it.
STOP_ORDER = ("worker", "dashboard", "collector", "deliver", "checkout", "trials", "notifications")
BURST = 40
# Who calls another service with a key of its own: the relays (in the worker) and the platform's hooks.
CALLERS = ("checkout", "trials", "platform")
# Where every container finds the stand-in provider's certificate (and the provider its key).
TLS_MOUNT = "/run/oidc-standin"
RUN_FLAGS = ["--network", "host", "--read-only", "--tmpfs", "/tmp",
             "--security-opt", "no-new-privileges", "--cap-drop", "ALL"]


def step(message: str) -> None:
    print(f"image-test: {message}", flush=True)


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=timeout)


def wait_until(what: str, probe: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except (requests.RequestException, psycopg.Error) as error:
            last = f" (last: {error})"
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{last}")


class Stack:
    def __init__(self, image: str, offset: int) -> None:
        self.image = image
        self.prefix = f"imagetest-{os.getpid()}"
        self.ports = {name: port + offset for name, port in DEFAULT_PORTS.items()}
        self.ports |= {"dashboard": 8004 + offset, "localstripe": 8420 + offset, "smtp": 8025 + offset,
                       "oidc": 8430 + offset}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.urls["oidc"] = f"https://127.0.0.1:{self.ports['oidc']}"
        self.tls = Path(tempfile.mkdtemp(prefix="imagetest-tls-"))
        self.tls.chmod(0o755)
        write_tls(self.tls, ["127.0.0.1", "localhost"])
        self.keys = {caller: generate_service_key() for caller in CALLERS}
        self.databases = {name: f"{self.prefix.replace('-', '_')}_{name}" for name in DATABASES}
        self.env = {
            "APP_ENV": "production",
            "AUTH_SECRET": secrets.token_hex(32),
            "STRIPE_SECRET_KEY": "sk_test_imagetest",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe",
            "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
            "STRIPE_API_BASE": self.urls["localstripe"],
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.ports["smtp"]),
            "WEB_CONCURRENCY": "1", "THREADS": "4",
            "OIDC_ISSUER": self.urls["oidc"], "OIDC_CLIENT_ID": DEV_OIDC_CLIENT_ID,
            "OIDC_CLIENT_SECRET": secrets.token_hex(16), "OIDC_ROLE_MAP": DEMO_ROLE_MAP,
            # The stand-in's certificate besides the usual roots (Python's requests reads this).
            "REQUESTS_CA_BUNDLE": f"{TLS_MOUNT}/ca-bundle.pem",
            "SERVICE_PUBLIC_KEYS": json.dumps({caller: public_key_pem(key)
                                               for caller, key in self.keys.items()}),
            **{f"{name.upper()}_URL": self.urls[name] for name in DEFAULT_PORTS},
            **{f"{name.upper()}_DATABASE_URL": f"{PG}/{database}"
               for name, database in self.databases.items()},
        }
        self.started: list[str] = []

    def name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def run(self, role: str, args: list[str], *, entrypoint: list[str] | None = None,
            env: dict[str, str] | None = None, detach: bool = True,
            stop_timeout: int = 10) -> subprocess.CompletedProcess[str]:
        flags = ["--name", self.name(role), *RUN_FLAGS, "--stop-timeout", str(stop_timeout),
                 "-v", f"{self.tls}:{TLS_MOUNT}:ro"]
        for key, value in (self.env if env is None else env).items():
            flags += ["-e", f"{key}={value}"]
        if entrypoint:
            flags += ["--entrypoint", entrypoint[0]]
            args = [*entrypoint[1:], *args]
        self.started.append(self.name(role))
        return podman("run", "-d" if detach else "--rm", *flags, self.image, *args, check=False)

    def logs(self, role: str) -> str:
        result = podman("logs", self.name(role), check=False)
        return result.stdout + result.stderr

    def running(self, role: str) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name(role), check=False)
        return state.stdout.strip() == "true"

    def query(self, database: str, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(f"{PG}/{self.databases[database]}", autocommit=True) as conn:
            return conn.execute(sql).fetchall()

    def remove(self) -> None:
        for name in self.started:
            podman("rm", "-f", "-t", "0", name, check=False)
        shutil.rmtree(self.tls, ignore_errors=True)


@contextmanager
def fresh_databases(stack: Stack, keep: bool) -> Iterator[None]:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        for database in stack.databases.values():
            conn.execute(f'CREATE DATABASE "{database}"')
    try:
        yield
    finally:
        if not keep:
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                for database in stack.databases.values():
                    conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def check_default_is_production(stack: Stack) -> None:
    result = stack.run("default-env", ["serve", "checkout"], env={}, detach=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "AUTH_SECRET must be set in production" in output, output[-2000:]
    user = podman("image", "inspect", "--format", "{{.Config.User}}", stack.image).stdout.strip()
    assert user.split(":")[0].isdigit() and user != "0", user
    step(f"the image's default APP_ENV is production (no secrets: refused, exit {result.returncode}); "
         f"user {user}")


def start_stack(stack: Stack) -> None:
    result = stack.run("migrate", ["migrate"], detach=False)
    assert result.returncode == 0, result.stdout + result.stderr
    step("migrate: all four databases at head")
    stripe = stack.run("localstripe", ["--port", str(stack.ports["localstripe"]), "--from-scratch"],
                       entrypoint=["localstripe"])
    smtp = stack.run("smtp", ["-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{stack.ports['smtp']}",
                              "-c", "aiosmtpd.handlers.Debugging", "stdout"], entrypoint=["python"])
    oidc = stack.run("oidc", ["-m", "deploy.oidc_standin", "serve", TLS_MOUNT, "--host", "127.0.0.1",
                              "--port", str(stack.ports["oidc"])], entrypoint=["python"])
    for result in (stripe, smtp, oidc):
        assert result.returncode == 0, result.stderr
    # Only the worker calls other services: it alone holds the relays' private keys.
    relay_keys = {f"{caller.upper()}_SERVICE_KEY": stack.keys[caller] for caller in ("checkout", "trials")}
    for role, args in ROLES.items():
        env = dict(stack.env, PORT=str(stack.ports[role])) if role in stack.ports else stack.env
        env = env | relay_keys if role == "worker" else env
        result = stack.run(role, args, env=env, stop_timeout=GRACE[role])
        assert result.returncode == 0, result.stderr
    step(f"started {', '.join(ROLES)} (+ localstripe, an SMTP sink, the stand-in identity provider)")


def check_probes(stack: Stack) -> None:
    started = time.monotonic()
    for role in ("checkout", "trials", "notifications", "dashboard"):
        base = stack.urls[role]

        def answers(path: str, base: str = base) -> bool:
            return requests.get(f"{base}{path}", timeout=5).ok
        if not stack.running(role):
            raise AssertionError(f"{role} exited:\n{stack.logs(role)[-3000:]}")
        wait_until(f"{role} /healthz", lambda: answers("/healthz"))
        if role == "dashboard":
            continue  # /healthz only (docs/deployment.md)
        wait_until(f"{role} /readyz", lambda: answers("/readyz"), timeout=60)
        metrics = requests.get(f"{base}/metrics", timeout=5)
        assert metrics.ok and "# TYPE" in metrics.text, metrics.status_code
    for role in ("worker", "collector", "deliver"):
        assert stack.running(role), f"{role} exited:\n{stack.logs(role)[-3000:]}"
    step(f"/healthz, /readyz, /metrics answer for every service, /healthz for the dashboard "
         f"({time.monotonic() - started:.0f} s); worker, collector, deliver running")


def owner_token(stack: Stack, user: int, claims: dict[str, Any]) -> str:
    """The person's ID token from the stand-in provider, signed in as a browser would."""
    issuer, cert = stack.urls["oidc"], str(stack.tls / "cert.pem")
    wait_until("the identity provider", lambda: requests.get(
        f"{issuer}/.well-known/openid-configuration", timeout=5, verify=cert).ok, timeout=60)
    # The stand-in's own API: who user `user` is (the demo users it knows already).
    requests.put(f"{issuer}/users/{user}", json=claims, timeout=5, verify=cert).raise_for_status()
    return provider_token(issuer, stack.env["OIDC_CLIENT_ID"], stack.env["OIDC_CLIENT_SECRET"], str(user),
                          verify=cert)


def purchase(stack: Stack) -> tuple[requests.Session, int]:
    checkout, stripe = stack.urls["checkout"], stack.urls["localstripe"]
    register_webhook(stripe, checkout, stack.env["STRIPE_WEBHOOK_SECRET"])
    session = requests.Session()
    # The platform signs its hooks with its own key; HS256 tokens are refused in production.
    hooks_token = issue_service_token(stack.keys["platform"], "platform", "checkout", now=datetime.now(UTC),
                                      roles=("synthetic",))
    session.headers["Authorization"] = f"Bearer {hooks_token}"
    group, user = 900, 900
    hooks: tuple[dict[str, Any], ...] = (
        {"event_name": "group_create", "group_id": group, "name": "Initech", "path": "initech"},
        {"event_name": "user_add_to_group", "group_id": group, "user_id": user,
         "user_name": "Ida Initech", "user_email": "ida@initech.test", "group_access": "Owner"})
    for hook in hooks:
        answer = session.post(f"{checkout}/internal/directory/hooks", timeout=10,
                              json={**hook, "created_at": "2026-11-21T10:00:00Z"})
        assert answer.ok, answer.text
    # Production refuses a development (HS256) token for her, and takes the provider's.
    refused = requests.get(f"{checkout}/namespaces/{group}", timeout=10, headers={
        "Authorization": f"Bearer {sign(stack.env['AUTH_SECRET'], user, 'ida@initech.test')}"})
    assert refused.status_code == 401, refused.text
    token = owner_token(stack, user, {"email": "ida@initech.test", "email_verified": True,
                                      "name": "Ida Initech"})
    session.headers["Authorization"] = f"Bearer {token}"
    assert session.get(f"{checkout}/namespaces/{group}", timeout=10).ok
    step("sign-in: the provider's ID token (code flow with PKCE) accepted, an HS256 one refused (401); "
         "the platform's hooks signed with its Ed25519 key")
    answer = session.put(f"{checkout}/billing-account", timeout=10, json={
        "company": "Initech", "email": "billing@initech.test", "country": "US",
        "address_line1": "1 Market Street", "city": "San Francisco", "state": "CA", "postal_code": "94105"})
    assert answer.ok, answer.text
    setup = session.post(f"{checkout}/billing-account/card-setup", timeout=30)
    assert setup.ok, setup.text
    confirmed = confirm_card_setup(stripe, setup.json()["client_secret"], "4242424242424242")
    assert "setupIntent" in confirmed, confirmed
    card = session.post(f"{checkout}/billing-account/cards", timeout=30,
                        json={"setup_intent_id": setup.json()["setup_intent_id"]})
    assert card.ok, card.text
    bought = session.post(f"{checkout}/purchases", timeout=60, headers={"Idempotency-Key": str(uuid.uuid4())},
                          json={"namespace_id": group, "plan": "premium", "seats": 5})
    assert bought.ok and bought.json()["status"] == "completed", bought.text
    order = bought.json()["order"]
    step(f"purchase: order {order['id']} completed, {order['amount_charged']} cents charged "
         "through localstripe")
    return session, group


def check_background(stack: Stack) -> None:
    started = time.monotonic()
    wait_until("checkout's outbox relayed", lambda: stack.query(
        "checkout", "SELECT count(*) FROM outbox_messages WHERE published_at IS NULL")[0][0] == 0)
    wait_until("a mail sent", lambda: stack.query(
        "notifications", "SELECT count(*) FROM notifications WHERE status = 'sent'")[0][0] > 0)
    assert "X-Peer" in stack.logs("smtp") or "Subject:" in stack.logs("smtp"), stack.logs("smtp")[-2000:]
    wait_until("funnel events collected", lambda: stack.query(
        "experiments", "SELECT count(*) FROM events")[0][0] > 0)
    sent = stack.query("notifications", "SELECT count(*) FROM notifications WHERE status = 'sent'")[0][0]
    step(f"relayed, {sent} mail sent through the SMTP sink, funnel events collected "
         f"({time.monotonic() - started:.0f} s)")


def stop_gracefully(stack: Stack, owner: requests.Session, namespace: int) -> None:
    # Events for the relay to be busy with when SIGTERM comes (each goes to trials and notifications).
    for turn in range(BURST):
        answer = owner.put(f"{stack.urls['checkout']}/namespaces/{namespace}/subscription/auto-renew",
                           json={"enabled": turn % 2 == 1, "reason": "temporary"}, timeout=10)
        assert answer.ok, answer.text
    for role in STOP_ORDER:
        started = time.monotonic()
        podman("stop", "-t", str(GRACE[role]), stack.name(role), timeout=GRACE[role] + 30)
        took = time.monotonic() - started
        code = podman("inspect", "--format", "{{.State.ExitCode}}", stack.name(role)).stdout.strip()
        assert code == "0", f"{role} exited {code} on SIGTERM:\n{stack.logs(role)[-3000:]}"
        assert took < GRACE[role], f"{role} took {took:.0f} s to stop (grace {GRACE[role]} s)"
        step(f"podman stop {role}: exit 0 in {took:.1f} s (grace {GRACE[role]} s)")
    lost = []
    for route in ROUTES:
        published = stack.query(route.publisher, "SELECT id, topic FROM outbox_messages "
                                                 "WHERE published_at IS NOT NULL")
        received = {row[0] for row in stack.query(route.subscriber, "SELECT event_id FROM inbox_events")}
        lost += [(route.publisher, route.subscriber, event) for event, topic in published
                 if topic.startswith(route.topics) and event not in received]
    assert not lost, f"published but never received: {lost}"
    counts = {name: stack.query(name, "SELECT count(*), count(published_at) FROM outbox_messages")[0]
              for name in ("checkout", "trials")}
    step("no outbox row lost (each published one is in its subscribers' inboxes, the rest pending): "
         + ", ".join(f"{name} {published} of {total} published"
                     for name, (total, published) in counts.items()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.image_test", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=os.environ.get("IMAGE", "devops-checkout:local"))
    parser.add_argument("--keep", action="store_true", help="keep the containers and databases (debugging)")
    args = parser.parse_args(argv)
    if not shutil.which("podman"):
        print("image-test: podman is missing. Install it: apt-get install -y podman runc", file=sys.stderr)
        return 1
    # This machine's limits and runtime (as the Makefile sets them).
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "podman" / "containers.conf"))
    if podman("image", "exists", args.image, check=False).returncode != 0:
        print(f"image-test: no image {args.image}: run `make image` first", file=sys.stderr)
        return 1
    stack = Stack(args.image, int(os.environ.get("PORT_OFFSET") or 0))
    started = time.monotonic()
    try:
        with fresh_databases(stack, args.keep):
            check_default_is_production(stack)
            start_stack(stack)
            check_probes(stack)
            owner, namespace = purchase(stack)
            check_background(stack)
            stop_gracefully(stack, owner, namespace)
    except AssertionError as failure:
        print(f"image-test: FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            stack.remove()
    step(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
