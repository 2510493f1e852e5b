"""An HTTP mail API behind the `Mailer` port, for providers that accept an
idempotency key: a re-send after a crash carries the same key, and the
provider answers it as the request it already has instead of mailing twice.

The request: `POST MAIL_API_URL` with the whole message as the body
(`Content-Type: message/rfc822`: From, To, Subject, Date, Message-ID, both
parts), `Idempotency-Key: <the Message-ID>` (one per notification, derived
from its dedupe key) and, with MAIL_API_TOKEN, `Authorization: Bearer`.
A provider with its own JSON format gets a small adapter like this one.

Answers: 2xx accepted; 408, 409 (the same key still in flight), 425, 429 and
5xx, timeouts and connection errors are temporary; any other answer,
redirects included, is permanent (the request itself is wrong).
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

import requests

from services.notifications.adapters.mailer import PermanentMailError, TemporaryMailError
from services.notifications.config import MailSettings

TEMPORARY_STATUSES = frozenset({408, 409, 425, 429})


class HttpMailApi:
    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._token = token
        self._http = requests.Session()  # keeps the connection between messages

    @classmethod
    def from_settings(cls, settings: MailSettings) -> HttpMailApi:
        if not settings.api_url:
            raise ValueError("MAIL_API_URL is not set")
        return cls(settings.api_url, token=settings.api_token, timeout=settings.api_timeout_seconds)

    def send(self, message: EmailMessage) -> None:
        key = message["Message-ID"]
        if not key:
            raise PermanentMailError("no Message-ID to use as the idempotency key")
        headers = {"Content-Type": "message/rfc822", "Idempotency-Key": str(key)}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._http.post(self.url, data=message.as_bytes(policy=policy.SMTP), headers=headers,
                                       timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:  # refused, dropped, timed out
            raise TemporaryMailError(f"{type(exc).__name__}: {exc}"[:1000]) from exc
        if 200 <= response.status_code < 300:
            return
        reason = f"HTTP {response.status_code} {response.reason}: {response.text[:200]}".strip()
        if response.status_code in TEMPORARY_STATUSES or response.status_code >= 500:
            raise TemporaryMailError(reason[:1000])
        raise PermanentMailError(reason[:1000])

    def close(self) -> None:
        self._http.close()
