"""`python -m deploy.migrate [target ...]`: what the `migrate` role runs.

Alembic upgrade to head of each service's database (services.common.migrate)
and of the experiments' event store (experiments.store.upgrade), in one
process, so the one migration Job (or compose's `migrate`) does them all.
Targets: checkout, trials, notifications, experiments; default all four.

The event store must be its own database: its migrations use Alembic's default
`alembic_version` table, as the services' do, so sharing a database with a
service would mix up their revisions. Before migrating anything this refuses
(exit 1) when the store's URL points at a service's database, and, with
APP_ENV=production, when EXPERIMENTS_DATABASE_URL is not set at all (it would
otherwise fall back to DATABASE_URL or a SQLite file in the image). Unknown
targets exit 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from sqlalchemy.engine import URL, make_url

from services.common.config import Settings
from services.common.migrate import SERVICES, upgrade

EXPERIMENTS = "experiments"
TARGETS = (*SERVICES, EXPERIMENTS)
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def _database(url: str) -> tuple[str, str | None, int | None, str | None]:
    """What identifies a database (the user and password do not)."""
    parsed: URL = make_url(url)
    backend = parsed.get_backend_name()
    return backend, parsed.host, parsed.port or DEFAULT_PORTS.get(backend), parsed.database


def _url(target: str, environ: Mapping[str, str]) -> str:
    """The database URL `target` reads, as Settings does (without its production
    check of the other secrets: only the URLs matter here)."""
    return Settings.from_env(target, {**environ, "APP_ENV": "development"}).database_url


def store_problem(environ: Mapping[str, str]) -> str | None:
    """Why the event store can not be migrated with this environment, or None."""
    if environ.get("APP_ENV") == "production" and not environ.get("EXPERIMENTS_DATABASE_URL"):
        return ("EXPERIMENTS_DATABASE_URL must be set in production: the experiments' event store "
                "is its own database")
    store = _database(_url(EXPERIMENTS, environ))
    for service in SERVICES:
        if _database(_url(service, environ)) == store:
            return (f"the experiments' event store and {service} share a database; "
                    "EXPERIMENTS_DATABASE_URL must name a database of its own")
    return None


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    targets = list(argv) or list(TARGETS)
    unknown = [target for target in targets if target not in TARGETS]
    if unknown:
        print(f"unknown service {unknown[0]!r}; choose from {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    if EXPERIMENTS in targets and (problem := store_problem(env)):
        print(f"error: {problem}", file=sys.stderr)
        return 1
    for service in (target for target in TARGETS if target in targets):
        url = Settings.from_env(service, env).database_url
        if service == EXPERIMENTS:
            from experiments import store

            store.upgrade(url)
        else:
            upgrade(service, url)
        print(f"{service}: migrated", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
