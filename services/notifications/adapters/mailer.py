"""Sending mail: a small port (`Mailer`) and its implementations, SMTP here
and an HTTP mail API with an idempotency key in `mail_api.py`.

A failure is classified for the delivery use case: `TemporaryMailError` (4xx
replies, refused or dropped connections, timeouts) is tried again later;
`PermanentMailError` (5xx replies, recipients refused with 5xx) is not.

SMTP has no idempotency. A sender that dies, or times out, after the relay's
250 to the end of DATA and before it records `sent` sends the message again
after its lease, with the same Message-ID (RFC 1047 describes the same
window from the server's side). The sender keeps that window to one UPDATE
and its commit; removing the copy is the receiving side's job. For a copy
never to reach a person, a production relay must do one of:

- remember the Message-IDs it accepted from us for longer than the lease
  plus the retry backoff (a day is plenty), and answer 250 to a message
  whose Message-ID it already has without relaying it again (a milter or
  policy service in front of the relay, or the provider's own duplicate
  suppression);
- deliver into mailboxes that discard a Message-ID they already hold (Sieve
  `duplicate`, RFC 7352; the local sink, devtools/mailsink.py, does);
- or be replaced by a provider's HTTP API that takes an idempotency key:
  set MAIL_API_URL and the worker uses `HttpMailApi` instead.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Protocol

from services.notifications.config import MailSettings


class MailError(Exception):
    """A message was not accepted. `str()` is a short reason for `last_error`."""


class TemporaryMailError(MailError):
    pass


class PermanentMailError(MailError):
    pass


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand one message to the relay, or raise a MailError."""
        ...

    def close(self) -> None: ...


def _classify(code: int, reason: str) -> MailError:
    return (PermanentMailError if 500 <= code < 600 else TemporaryMailError)(f"{code} {reason}"[:1000])


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class SmtpMailer:
    """smtplib over one connection, kept open between messages and checked with
    NOOP before reuse; any failure drops it, so the next message starts clean."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: MailSettings) -> SmtpMailer:
        return cls(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        self._smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        return self._smtp

    def send(self, message: EmailMessage) -> None:
        try:
            refused = self._connection().send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            code, reason = max(exc.recipients.values(), key=lambda item: item[0])  # the worst
            raise _classify(code, "recipient refused: " + _text(reason)) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, ...
            self.close()
            raise _classify(exc.smtp_code, _text(exc.smtp_error)) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, dropped, timed out
            self.close()
            raise TemporaryMailError(f"{type(exc).__name__}: {exc}"[:1000]) from exc
        if refused:  # one recipient per message, so this is a partial refusal of nobody
            code, reason = next(iter(refused.values()))
            raise _classify(code, "recipient refused: " + _text(reason))

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
