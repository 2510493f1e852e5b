"""The notifications service's own settings (mail), read from the environment
with defaults that make `make run` work against the local SMTP server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr

from services.common.config import port_for


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_from: str = "Checkout <billing@checkout.test>"
    smtp_timeout_seconds: float = 10.0

    @property
    def message_id_domain(self) -> str:
        """The right-hand side of every Message-ID: the sender's domain."""
        _, address = parseaddr(self.mail_from)
        return address.rpartition("@")[2] or "checkout.test"


def mail_settings(environ: Mapping[str, str] | None = None) -> MailSettings:
    """`SMTP_HOST` (127.0.0.1), `SMTP_PORT` (8025 + PORT_OFFSET), `MAIL_FROM` ("Checkout
    <billing@checkout.test>"), `SMTP_TIMEOUT_SECONDS` (10)."""
    env = os.environ if environ is None else environ
    return MailSettings(
        smtp_host=env.get("SMTP_HOST") or "127.0.0.1",
        smtp_port=port_for("smtp", env),
        mail_from=env.get("MAIL_FROM") or "Checkout <billing@checkout.test>",
        smtp_timeout_seconds=float(env.get("SMTP_TIMEOUT_SECONDS") or 10),
    )
