"""deploy/entrypoint.py: every role maps to the right command line, and runs."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

import deploy.entrypoint as entrypoint
from deploy.entrypoint import DASHBOARD_PORT, GUNICORN_CONFIG, plan
from services.common.config import DEFAULT_PORTS
from tests.deploy.helpers import ROOT

PY = sys.executable


# --- plan() ----------------------------------------------------------------------------------
@pytest.mark.parametrize("service", sorted(DEFAULT_PORTS))
def test_serve_runs_gunicorn_with_our_config_and_the_service_factory(service: str) -> None:
    assert plan(["serve", service], {}) == [
        PY, "-m", "gunicorn", "--config", str(ROOT / "deploy" / "gunicorn.conf.py"),
        "--bind", f"0.0.0.0:{DEFAULT_PORTS[service]}", f"services.{service}.app:create_app()"]
    assert GUNICORN_CONFIG.is_file()


@pytest.mark.parametrize("service", sorted(DEFAULT_PORTS))
def test_the_factory_gunicorn_is_given_exists(service: str) -> None:
    module, _, call = plan(["serve", service], {})[-1].partition(":")
    assert call == "create_app()"
    assert callable(importlib.import_module(module).create_app)


def test_serve_port_comes_from_port() -> None:
    assert plan(["serve", "trials"], {"PORT": "9000"})[6] == "0.0.0.0:9000"
    assert plan(["serve", "trials"], {"PORT": ""})[6] == "0.0.0.0:8002"


def test_dashboard_runs_gunicorn_with_our_config_and_the_dashboard_factory() -> None:
    assert plan(["dashboard"], {}) == [
        PY, "-m", "gunicorn", "--config", str(ROOT / "deploy" / "gunicorn.conf.py"),
        "--bind", "0.0.0.0:8004", "experiments.dashboard:create_app()"]
    assert plan(["dashboard"], {"PORT": "9004"})[6] == "0.0.0.0:9004"
    module, _, call = plan(["dashboard"], {})[-1].partition(":")
    assert call == "create_app()"
    assert callable(importlib.import_module(module).create_app)


def test_the_dashboard_port_is_the_dashboards_own_default() -> None:
    from experiments.cli import DEFAULT_PORT

    assert DASHBOARD_PORT == DEFAULT_PORT == 8004
    assert DASHBOARD_PORT not in DEFAULT_PORTS.values()


@pytest.mark.parametrize(("argv", "command"), [
    (["worker"], ["-m", "deploy.worker"]),
    (["worker", "trials"], ["-m", "services.trials.worker"]),
    (["worker", "checkout"], ["-m", "services.checkout.worker"]),
    (["worker", "checkout", "trials", "--interval", "2", "--once"],
     ["-m", "deploy.worker", "checkout", "trials", "--interval", "2.0", "--once"]),
    (["worker", "experiments"], ["-m", "experiments.collector"]),
    (["deliver"], ["-m", "services.notifications.deliver"]),
    (["deliver", "--once", "--interval", "0.5", "--batch", "10"],
     ["-m", "services.notifications.deliver", "--interval", "0.5", "--batch", "10", "--once"]),
    (["sweep", "trials"], ["-m", "services.trials.sweep"]),
    (["sweep", "renewals"], ["-m", "services.checkout.sweep"]),
    (["migrate"], ["-m", "deploy.migrate"]),
    (["migrate", "checkout", "notifications"], ["-m", "deploy.migrate", "checkout", "notifications"]),
    (["migrate", "experiments"], ["-m", "deploy.migrate", "experiments"]),
])
def test_every_role_maps_to_its_module(argv: list[str], command: list[str]) -> None:
    assert plan(argv, {}) == [PY, *command]
    assert importlib.util.find_spec(command[1]) is not None


@pytest.mark.parametrize(("argv", "message"), [
    ([], "the following arguments are required: role"),
    (["dance"], "invalid choice: 'dance'"),
    (["serve"], "the following arguments are required: service"),
    (["serve", "billing"], "invalid choice: 'billing'"),
    (["serve", "checkout", "trials"], "unrecognized arguments: trials"),
    (["worker", "notifications"], "unknown service 'notifications'"),
    (["dashboard", "experiments"], "unrecognized arguments: experiments"),
    (["worker", "--interval", "0"], "must be positive"),
    (["deliver", "--batch", "0"], "must be at least 1"),
    (["deliver", "trials"], "unrecognized arguments: trials"),
    (["sweep"], "the following arguments are required: sweep"),
    (["sweep", "everything"], "invalid choice: 'everything'"),
    (["migrate", "billing"], "unknown service 'billing'"),
])
def test_bad_arguments_exit_2_with_the_reason(argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        plan(argv, {})
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m deploy.entrypoint" in err and message in err


@pytest.mark.parametrize("port", ["http", "0", "70000", "-1"])
def test_a_bad_port_exits_2(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        plan(["serve", "checkout"], {"PORT": port})
    assert exit_.value.code == 2
    assert "PORT must be a TCP port number" in capsys.readouterr().err


def test_the_service_lists_match_the_modules() -> None:
    from deploy.migrate import TARGETS
    from deploy.worker import JOBS, WORKERS
    from services.common.migrate import SERVICES

    assert entrypoint.WORKER_SERVICES == JOBS
    assert entrypoint.WORKERS == WORKERS
    assert entrypoint.MIGRATE_SERVICES == TARGETS == (*SERVICES, "experiments")


def test_main_replaces_the_process_with_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(os, "execvp", lambda file, args: calls.append((file, args)))
    entrypoint.main(["migrate", "trials"])
    assert calls == [(PY, [PY, "-m", "deploy.migrate", "trials"])]


def test_help_runs_as_a_module() -> None:
    result = subprocess.run([PY, "-m", "deploy.entrypoint", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for role in ("serve", "dashboard", "worker", "deliver", "sweep", "migrate"):
        assert role in result.stdout


# --- the roles, for real, on SQLite ---------------------------------------------------------------
def _environment(folder: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.endswith(("DATABASE_URL", "_URL", "_PORT")) and key not in (
               "APP_ENV", "CLOCK_FILE", "PORT", "PROMETHEUS_MULTIPROC_DIR", "SENTRY_DSN", "POSTHOG_API_KEY")}
    env.update({f"{s.upper()}_DATABASE_URL": f"sqlite:///{folder / s}.db"
                for s in (*DEFAULT_PORTS, "experiments")})
    # Nothing is due, so nothing may be called; these addresses refuse connections.
    env.update(STRIPE_API_BASE="http://127.0.0.1:9", SMTP_HOST="127.0.0.1", SMTP_PORT="9",
               PYTHONWARNINGS="error::DeprecationWarning")
    return env


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PY, "-m", "deploy.entrypoint", *argv], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = _environment(tmp_path_factory.mktemp("roles"))
    result = _run(["migrate"], env)
    assert result.stdout.split() == ["checkout:", "migrated", "trials:", "migrated", "notifications:",
                                     "migrated", "experiments:", "migrated"]
    return env


@pytest.mark.parametrize(("argv", "said"), [
    (["sweep", "trials"], "trials: 0 expired"),
    (["sweep", "renewals"], "checkout renewals: {'reminders': 0, 'renewed': 0"),
    (["deliver", "--once"], "notifications: sent 0, retried 0, failed 0"),
    (["worker", "--once"], ""),
    (["worker", "checkout", "--once"], ""),  # each service's own worker
    (["worker", "trials", "--once"], ""),
    (["worker", "experiments", "--once"], ""),
    (["migrate", "experiments"], "experiments: migrated"),  # again: a no-op
])
def test_one_shot_roles_run(migrated: dict[str, str], argv: list[str], said: str) -> None:
    assert said in _run(argv, migrated).stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def test_serve_runs_gunicorn_that_answers_logs_and_stops_gracefully(migrated: dict[str, str],
                                                                     tmp_path: Path) -> None:
    port = _free_port()
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    (metrics / "counter_999999.db").write_bytes(b"stale from a previous run")
    env = {**migrated, "PORT": str(port), "WEB_CONCURRENCY": "2", "THREADS": "2",
           "GUNICORN_GRACEFUL_TIMEOUT": "5", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
        server = subprocess.Popen([PY, "-m", "deploy.entrypoint", "serve", "trials"], cwd=ROOT, env=env,
                                  stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    status, _ = _get(f"{base}/healthz")
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                    time.sleep(0.2)
            assert status == 200
            # The entrypoint exec'd: the process it started is gunicorn's master.
            assert b"gunicorn" in Path(f"/proc/{server.pid}/cmdline").read_bytes()
            status, body = _get(f"{base}/readyz", {"X-Request-Id": "deploy-test-1"})
            assert status == 200 and json.loads(body)["status"] == "ok"
            status, body = _get(f"{base}/metrics")
            assert status == 200 and b"http_requests_total" in body
            # Samples from every worker process, aggregated (multiprocess mode).
            assert b"python_gc_objects_collected_total" not in body
            assert not (metrics / "counter_999999.db").exists()
            assert list(metrics.glob("*.db"))
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=30)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    assert code == 0, stderr
    access = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    [readyz] = [entry for entry in access if entry["request_id"] == "deploy-test-1"]
    assert readyz["path"] == "/readyz" and readyz["status"] == 200 and readyz["method"] == "GET"
    assert isinstance(readyz["duration_ms"], int)
    assert "gthread" in stderr and "Shutting down" in stderr


def test_the_worker_collects_funnel_events_into_the_event_store(migrated: dict[str, str]) -> None:
    """`worker experiments` (the collector) reads a service database and fills the store."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from experiments.store import events
    from persistence.db import make_engine
    from services.trials.adapters.models import FunnelEventRow

    event_id = str(uuid.uuid4())
    trials = make_engine(migrated["TRIALS_DATABASE_URL"])
    with trials.begin() as conn:
        conn.execute(insert(FunnelEventRow).values(
            event_id=event_id, service="trials", step="trial_started", user_id=7, namespace_id=70,
            occurred_at=datetime.now(UTC), properties={"kind": "ultimate"}, experiments={}, traffic="real"))
    trials.dispose()

    result = _run(["worker", "experiments", "--once"], migrated)
    assert "experiments: collected" in result.stderr

    store = make_engine(migrated["EXPERIMENTS_DATABASE_URL"])
    with store.connect() as conn:
        row = conn.execute(select(events.c.service, events.c.step, events.c.namespace_id)
                           .where(events.c.event_id == event_id)).one()
    store.dispose()
    assert tuple(row) == ("trials", "trial_started", 70)


def test_dashboard_runs_gunicorn_that_answers_checks_tokens_and_stops_gracefully(
        migrated: dict[str, str], tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from identity.auth import issue_token
    from services.common.config import DEV_AUTH_SECRET

    port = _free_port()
    env = {**migrated, "PORT": str(port), "WEB_CONCURRENCY": "1", "THREADS": "2",
           "GUNICORN_GRACEFUL_TIMEOUT": "5", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
    base = f"http://127.0.0.1:{port}"
    token = issue_token(DEV_AUTH_SECRET, 1, "growth@example.com", ("growth",), now=datetime.now(UTC))
    with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
        server = subprocess.Popen([PY, "-m", "deploy.entrypoint", "dashboard"], cwd=ROOT, env=env,
                                  stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    status, body = _get(f"{base}/healthz")
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                    time.sleep(0.2)
            assert status == 200 and json.loads(body) == {"status": "ok", "service": "experiments"}
            assert b"gunicorn" in Path(f"/proc/{server.pid}/cmdline").read_bytes()
            # Everything but /healthz needs a growth (or admin) token.
            with pytest.raises(urllib.error.HTTPError) as denied:
                _get(f"{base}/", {"Accept": "application/json"})
            assert denied.value.code == 401
            assert json.loads(denied.value.read())["code"] == "unauthenticated"
            # With one: the list, read from the (migrated, SQLite) store and the image's payload.
            status, body = _get(f"{base}/", {"Authorization": f"Bearer {token}"})
            assert status == 200 and b"smb-discount-prompt" in body
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=30)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    assert code == 0, stderr
    access = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    # A /healthz poll that timed out on a busy machine may still have been served: count it once.
    served = [entry["path"] for entry in access if entry["status"] == 200]
    assert served[-1] == "/" and set(served[:-1]) == {"/healthz"}
    assert "gthread" in stderr and "Shutting down" in stderr
