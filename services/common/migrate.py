"""Alembic for every service: one migration folder per service, one database each.

`python -m services.common.migrate [service ...]` upgrades to head; the tests
and `make run` call `upgrade()` directly. Nothing calls create_all.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool

from persistence.db import make_engine
from services.common.config import ROOT, Settings

SERVICES = ("checkout", "trials", "notifications")


def alembic_config(service: str, url: str) -> Config:
    return _config(ROOT / "services" / service / "migrations", url)


def _config(folder: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    upgrade_folder(ROOT / "services" / service / "migrations", url, revision)


def upgrade_folder(folder: Path, url: str, revision: str = "head") -> None:
    """Migrate the database at `url` with the Alembic migrations in `folder`."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_config(folder, url), revision)


def run_env(metadata: MetaData) -> None:
    """Body of each service's migrations/env.py."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=url.startswith("sqlite"), compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def main(argv: list[str]) -> int:
    for service in argv or list(SERVICES):
        if service not in SERVICES:
            print(f"unknown service {service!r}; choose from {', '.join(SERVICES)}", file=sys.stderr)
            return 2
        settings = Settings.from_env(service)
        upgrade(service, settings.database_url)
        print(f"{service}: migrated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
