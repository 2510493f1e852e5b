"""deploy/gunicorn.conf.py: values from the environment, accepted by gunicorn."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import SafeAtoms

from tests.deploy.helpers import DEPLOY, all_documented_variables

CONF = DEPLOY / "gunicorn.conf.py"
VARIABLES = ("PORT", "WEB_CONCURRENCY", "THREADS", "GUNICORN_TIMEOUT", "GUNICORN_GRACEFUL_TIMEOUT",
             "GUNICORN_KEEPALIVE", "GUNICORN_MAX_REQUESTS", "GUNICORN_MAX_REQUESTS_JITTER",
             "FORWARDED_ALLOW_IPS", "LOG_LEVEL", "GUNICORN_ACCESS_LOG",
             "PROMETHEUS_MULTIPROC_DIR")


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in VARIABLES:
        # set, then delete: monkeypatch then restores the original (even "absent")
        # when the config's hooks have set it meanwhile.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    assert conf["bind"] == "0.0.0.0:8000"
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == ("gthread", 2, 8)
    assert (conf["timeout"], conf["graceful_timeout"], conf["keepalive"]) == (60, 30, 75)
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (20000, 2000)
    assert conf["preload_app"] is False
    assert conf["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert (conf["accesslog"], conf["errorlog"], conf["loglevel"]) == ("-", "-", "info")
    assert conf["control_socket_disable"] is True


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, PORT="8002", WEB_CONCURRENCY="4", THREADS="16", GUNICORN_TIMEOUT="90",
                GUNICORN_GRACEFUL_TIMEOUT="20", GUNICORN_KEEPALIVE="5", GUNICORN_MAX_REQUESTS="500",
                GUNICORN_MAX_REQUESTS_JITTER="50", FORWARDED_ALLOW_IPS="*",
                LOG_LEVEL="WARNING", GUNICORN_ACCESS_LOG="off")
    assert conf["bind"] == "0.0.0.0:8002"
    assert (conf["workers"], conf["threads"], conf["timeout"], conf["graceful_timeout"]) == (4, 16, 90, 20)
    assert (conf["keepalive"], conf["max_requests"], conf["max_requests_jitter"]) == (5, 500, 50)
    assert conf["forwarded_allow_ips"] == "*"
    assert conf["loglevel"] == "warning" and conf["accesslog"] is None


def test_gunicorn_accepts_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, FORWARDED_ALLOW_IPS="10.0.0.0/8,127.0.0.1")
    cfg = Config()
    settings = {name: value for name, value in conf.items() if name in cfg.settings}
    assert len(settings) >= 19
    for name, value in settings.items():
        cfg.set(name, value)  # gunicorn's own validators
    assert cfg.worker_class_str == "gthread"
    assert cfg.workers == 2 and cfg.threads == 8
    for hook in ("on_starting", "child_exit"):
        assert callable(cfg.settings[hook].get()) and cfg.settings[hook].get() is conf[hook]


def test_access_log_lines_are_json_without_query_or_referer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sign-in link's token is in its query (and then in referers): never logged."""
    conf = load(monkeypatch)
    atoms = SafeAtoms({"t": "[21/Nov/2026:12:00:00 +0000]", "h": "10.0.0.7", "m": "GET", "U": "/sign-in",
                       "q": "token=eyJsecret", "s": "302", "b": "0", "M": 12, "a": 'curl "quoted"',
                       "f": "http://x/sign-in?token=eyJsecret", "{x-request-id}o": "abc123"})
    line = json.loads(conf["access_log_format"] % atoms)
    assert line == {"time": "[21/Nov/2026:12:00:00 +0000]", "remote_addr": "10.0.0.7", "method": "GET",
                    "path": "/sign-in", "status": 302, "bytes": "0", "duration_ms": 12,
                    "request_id": "abc123", "user_agent": 'curl "quoted"'}


def _client_address(wsgi: Any, forwarded_for: str) -> str:
    seen = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["REMOTE_ADDR"])
        return []

    worker = SimpleNamespace(wsgi=app)
    wsgi(worker)
    worker.wsgi({"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": forwarded_for, "wsgi.url_scheme": "http",
                 "HTTP_HOST": "checkout"}, lambda *_: None)
    return seen[0]


def test_service_name_from_the_app_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    service_name = load(monkeypatch)["service_name"]
    server = SimpleNamespace(app=SimpleNamespace(app_uri="services.checkout.app:create_app()"))
    assert service_name(server) == "checkout"
    assert service_name(SimpleNamespace(app=SimpleNamespace(app_uri="other:app"))) == "gunicorn"
    # The growth dashboard logs as "experiments", the service name its /healthz reports.
    dashboard = SimpleNamespace(app=SimpleNamespace(app_uri="experiments.dashboard:create_app()"))
    assert service_name(dashboard) == "experiments"


def test_metrics_directory_is_created_emptied_and_dead_workers_dropped(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    conf = load(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(folder))
    assert conf["metrics_dir"]() == str(folder) and folder.is_dir()
    (folder / "counter_1.db").write_bytes(b"")
    (folder / "gauge_livesum_4242.db").write_bytes(b"")
    conf["metrics_dir"]()
    assert list(folder.iterdir()) == []
    (folder / "gauge_livesum_4242.db").write_bytes(b"")
    (folder / "counter_4242.db").write_bytes(b"")
    conf["child_exit"](None, SimpleNamespace(pid=4242))
    assert [p.name for p in folder.iterdir()] == ["counter_4242.db"]  # counters outlive their worker


def test_metrics_directory_defaults_under_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    conf = load(monkeypatch)
    assert conf["metrics_dir"]() == str(tmp_path / "prometheus-multiproc")
    assert (tmp_path / "prometheus-multiproc").is_dir()


def test_every_variable_it_reads_is_documented() -> None:
    text = CONF.read_text()
    assert {name for name in VARIABLES if f'"{name}"' in text or f"'{name}'" in text} == set(VARIABLES)
    assert set(VARIABLES) - all_documented_variables() == set()
