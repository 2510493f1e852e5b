"""`make run`: the whole stack on one machine, with demo data.

Migrates each service's SQLite database in VAR_DIR (var/), seeds the demo
data, then hands the Procfile to honcho (localstripe with its state in the
same folder, the SMTP mail sink, the services) and, once they answer,
registers checkout's Stripe webhook with localstripe and prints the URLs and
demo tokens (issued by the local identity provider, devtools/devoidc.py).
Ctrl-C stops everything (honcho forwards the signal to every process); the
next `make run` carries on with the same databases, mail and Stripe state. A
stack that is already running, or a port another program holds, stops it
before anything is touched.

`python -m devtools.devstack tokens` prints the demo tokens again;
`python -m devtools.devstack reset` (`make reset`) forgets the stack's state.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import IO

import requests
from honcho.environ import parse_procfile
from honcho.manager import Manager

from devtools.devoidc import DEMO_ROLE_MAP, provider_token
from devtools.devstripe import STATE_FILE
from experiments import store as experiment_store
from services.checkout.config import CheckoutSettings
from services.checkout.seed import load_demo, seed_database
from services.common.config import DEFAULT_PORTS, ROOT, STACK_PORTS, Settings, local_url, port_for, var_dir
from services.common.migrate import SERVICES, upgrade

CHECKOUT_PAGE, TRIALS_PAGE, BILLING_PAGE = "/checkout", "/trials", "/billing"


def demo_tokens(settings: Settings) -> list[tuple[str, str, str, str]]:
    """(user id, name, email, token) for each demo user: the local provider's ID tokens."""
    issuer = settings.oidc_issuer or local_url("oidc")
    return [(str(u["id"]), u["name"], u["email"],
             provider_token(issuer, settings.oidc_client_id, settings.oidc_client_secret, str(u["id"])))
            for u in load_demo()["users"]]


def user_lines(settings: Settings, checkout_url: str) -> list[str]:
    """How each demo user signs in: the provider's login page, or a token for the API."""
    lines = [f"Sign in: open a page (say {checkout_url}{CHECKOUT_PAGE}), press Sign in, and on the",
             "local identity provider's page pick the demo user's id (1 is Alice). One sign-in",
             "covers every service on the host (cookies are per host, not port).",
             "API tokens (the provider's, valid an hour; `make tokens` prints fresh ones):",
             "export one as TOKEN and send 'Authorization: Bearer $TOKEN'.", ""]
    for user_id, name, email, token in demo_tokens(settings):
        lines += [f"  {user_id:>2}  {name} <{email}>", f"      token  {token}"]
    return lines


def prepare(var: Path) -> None:
    (var / "mail").mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        upgrade(service, Settings.from_env(service).database_url)
    experiment_store.upgrade(experiment_store.store_url_from_env())
    seed_database(Settings.from_env("checkout").database_url)


def claim(var: Path) -> IO[str] | None:
    """Hold the stack's lock for as long as this process lives; None if another holds it.

    The kernel drops the lock with the process, however it ends, so a crash
    never leaves the stack marked as running."""
    var.mkdir(parents=True, exist_ok=True)
    lock = (var / "devstack.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _holder(var: Path) -> str:
    try:
        return (var / "devstack.lock").read_text().strip() or "?"
    except OSError:
        return "?"


def _in_use(port: int, host: str) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def ports_in_use() -> list[tuple[str, int]]:
    host = os.environ.get("HOST", "127.0.0.1")
    ports = [(name, port_for(name)) for name in STACK_PORTS]
    return [(name, port) for name, port in ports if _in_use(port, host)]


def state_paths(var: Path) -> list[Path]:
    """The state `make run` keeps in `var`: databases, mail, Stripe's objects, the clock.
    (Load test reports stay: they describe past runs, not the stack.)"""
    databases = [var / f"{name}.db{suffix}" for name in (*SERVICES, "experiments")
                 for suffix in ("", "-wal", "-shm", "-journal")]
    stripe = [var / f"{STATE_FILE}{suffix}" for suffix in ("", ".tmp", ".unreadable")]
    return [*databases, *stripe, var / "mail", var / "clock.json"]


def reset() -> int:
    var = var_dir()
    lock = claim(var)
    if lock is None:
        print(f"make reset: the stack is running (pid {_holder(var)}); stop it first", file=sys.stderr)
        return 1
    with lock:
        for path in state_paths(var):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    print(f"reset: databases, mail and Stripe state in {var} are gone; `make run` starts afresh")
    return 0


def _wait_for(url: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


def register_webhook(stripe_base: str, checkout_url: str, secret: str) -> None:
    response = requests.post(f"{stripe_base}/_config/webhooks/checkout",
                             data={"url": f"{checkout_url}/stripe/webhooks", "secret": secret},
                             timeout=5)
    response.raise_for_status()


def _announce(settings: CheckoutSettings, var: Path) -> None:
    stripe_base = settings.stripe_api_base or ""
    urls = {name: local_url(name) for name in DEFAULT_PORTS}
    if not _wait_for(f"{stripe_base}/v1/customers"):
        print("devstack: localstripe did not start; see its lines above", flush=True)
        return
    register_webhook(stripe_base, urls["checkout"], settings.stripe_webhook_secret)
    dashboard = local_url("experiments")
    ready = all(_wait_for(f"{url}/healthz") for url in [*urls.values(), dashboard])
    lines = ["", "=" * 78, "The stack is up." if ready else "Some services did not answer yet.", ""]
    lines += [f"  {name:<14} {url}   (API docs: {url}/openapi.json)" for name, url in urls.items()]
    lines += [f"  {'localstripe':<14} {stripe_base}", f"  {'sign-in':<14} {local_url('oidc')}",
              f"  {'mail folder':<14} {var / 'mail'}",
              f"  {'state':<14} {var}   (kept across restarts; `make reset` forgets it)", "",
              "Pages (docs/pages.md):",
              f"  {'checkout':<14} {urls['checkout']}{CHECKOUT_PAGE}",
              f"  {'trials':<14} {urls['trials']}{TRIALS_PAGE}",
              f"  {'billing':<14} {urls['checkout']}{BILLING_PAGE}   (what each group bought)",
              f"  {'growth':<14} {dashboard}/   (the experiments: sign in as Gina Growth first)", "",
              "`make demo-traffic` walks a few hundred demo people through the funnel so the",
              "experiments have data; `make report KEY=smb-discount-prompt` prints one.", ""]
    if _wait_for(f"{local_url('oidc')}/.well-known/openid-configuration"):
        lines += user_lines(settings, urls["checkout"])
    else:
        lines += ["The identity provider did not start; see its lines above."]
    lines += ["", "README.md walks through buying Premium for the 'acme' namespace (id 100).",
              "Ctrl-C stops everything.", "=" * 78, ""]
    print("\n".join(lines), flush=True)


def run() -> int:
    os.chdir(ROOT)
    var = var_dir()
    # Every process reads the same folder, whatever the working directory.
    os.environ["VAR_DIR"] = str(var)
    lock = claim(var)
    if lock is None:
        print(f"make run: this stack is already running (pid {_holder(var)}, state in {var})",
              file=sys.stderr)
        return 1
    if busy := ports_in_use():
        lock.close()
        taken = ", ".join(f"{port} ({name})" for name, port in busy)
        print(f"make run: another program listens on {taken}; stop it, or move this stack "
              "with PORT_OFFSET (README: A second stack)", file=sys.stderr)
        return 1
    with lock:
        return _run(var)


def _run(var: Path) -> int:
    # Every process shares one business clock that `make timetravel` can move.
    os.environ.setdefault("CLOCK_FILE", str(var / "clock.json"))
    # Locally every client is 127.0.0.1, so the per-address limit on code
    # and card attempts would throttle the demo traffic generator; per account still holds.
    os.environ.setdefault("CODE_ATTEMPTS_PER_CLIENT", "600/minute")
    os.environ.setdefault("CARD_ATTEMPTS_PER_CLIENT", "600/minute")
    # The demo users' groups on the local identity provider, as platform roles.
    os.environ.setdefault("OIDC_ROLE_MAP", DEMO_ROLE_MAP)
    prepare(var)
    settings = CheckoutSettings.from_env()
    env = dict(os.environ)
    # Processes find this environment's python and localstripe first.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    manager = Manager()
    for name, command in parse_procfile((ROOT / "Procfile").read_text()).processes.items():
        manager.add_process(name, command, env=env, cwd=str(ROOT))
    threading.Thread(target=_announce, args=(settings, var), daemon=True).start()
    manager.loop()
    return manager.returncode or 0


def main(argv: list[str]) -> int:
    try:
        for name in STACK_PORTS:
            port_for(name)
    except ValueError as exc:  # a port setting that is not a number
        print(f"devstack: {exc}", file=sys.stderr)
        return 2
    if argv[:1] == ["tokens"]:
        try:
            print("\n".join(user_lines(Settings.from_env("checkout"), local_url("checkout"))))
        except requests.RequestException:
            print(f"make tokens: the identity provider ({local_url('oidc')}) does not answer; "
                  "is `make run` running?", file=sys.stderr)
            return 1
        return 0
    if argv[:1] == ["reset"]:
        return reset()
    if argv:
        print("usage: python -m devtools.devstack [tokens | reset]", file=sys.stderr)
        return 2
    return run()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
