"""The notifications service's own settings (mail), read from the environment
with defaults that make `make run` work against the local SMTP server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr

from services.common.config import port_for


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_from: str = "Checkout <billing@checkout.test>"
    smtp_timeout_seconds: float = 10.0
    # An HTTP mail API that honours an Idempotency-Key: used instead of SMTP when set.
    api_url: str | None = None
    api_token: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log
    api_timeout_seconds: float = 10.0

    @property
    def message_id_domain(self) -> str:
        """The right-hand side of every Message-ID: the sender's domain."""
        _, address = parseaddr(self.mail_from)
        return address.rpartition("@")[2] or "checkout.test"


def mail_settings(environ: Mapping[str, str] | None = None) -> MailSettings:
    """`SMTP_HOST` (127.0.0.1), `SMTP_PORT` (8025 + PORT_OFFSET), `MAIL_FROM` ("Checkout
    <billing@checkout.test>"), `SMTP_TIMEOUT_SECONDS` (10); `MAIL_API_URL`,
    `MAIL_API_TOKEN`, `MAIL_API_TIMEOUT_SECONDS` (10) for an HTTP mail API."""
    env = os.environ if environ is None else environ
    return MailSettings(
        smtp_host=env.get("SMTP_HOST") or "127.0.0.1",
        smtp_port=port_for("smtp", env),
        mail_from=env.get("MAIL_FROM") or "Checkout <billing@checkout.test>",
        smtp_timeout_seconds=float(env.get("SMTP_TIMEOUT_SECONDS") or 10),
        api_url=env.get("MAIL_API_URL") or None,
        api_token=env.get("MAIL_API_TOKEN") or None,
        api_timeout_seconds=float(env.get("MAIL_API_TIMEOUT_SECONDS") or 10),
    )
