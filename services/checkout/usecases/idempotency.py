"""Idempotency-Key for our own purchase endpoint, with Stripe's contract:

- the first response to a (user, key) is stored and replayed for 24 hours;
- the same key with a different body is refused (`idempotency_key_reused`);
- a request that failed before any side effect (validation, provider down)
  stores nothing, so it can be retried with the same key;
- a request whose payment's fate is unknown (Stripe timed out) stays linked
  to its order in state `retry`: the same request resumes that order, and
  repeats the very same Stripe call, which Stripe answers from its own
  idempotency store instead of charging again.

The claim is its own committed transaction, so concurrent identical requests
see it at once: the unique (user_id, key) constraint lets exactly one through
and the others wait for its answer.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.checkout.adapters.models import IdempotencyRecord
from services.checkout.runtime import UowFactory
from services.common.errors import Conflict, Invalid, Malformed

REPLAY_WINDOW = timedelta(hours=24)
# A claim older than this belongs to a crashed request; Stripe's own
# idempotency key (derived from the order) still prevents a second charge.
STALE_CLAIM = timedelta(minutes=5)
WAIT_SECONDS = 15.0
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    """A response as first sent (status and body), kept for the key's replays."""
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    record_id: int
    resume_order_id: int | None = None


def request_fingerprint(path: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"path": path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise Malformed("idempotency_key_missing", "Idempotency-Key header required",
                        "Send a unique 'Idempotency-Key' header (for example a UUID) with each "
                        "purchase, and the same one when you retry it.")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Malformed("idempotency_key_invalid", "Invalid Idempotency-Key",
                        f"The key must be printable and at most {MAX_KEY_LENGTH} characters.")
    return key


def claim(new_uow: UowFactory, user_id: int, key: str, fingerprint: str) -> Claim | Replay:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        uow = new_uow()
        with uow:
            record = _find(uow.session, user_id, key)
            if record is not None and record.created_at < uow.now - REPLAY_WINDOW:
                uow.session.delete(record)  # expired: the key may be used afresh
                uow.session.flush()
                record = None
            if record is None:
                record = IdempotencyRecord(user_id=user_id, key=key, request_hash=fingerprint,
                                           state="in_progress", created_at=uow.now,
                                           updated_at=uow.now)
                uow.session.add(record)
                try:
                    uow.commit()
                    return Claim(record.id, record.order_id)
                except IntegrityError:
                    uow.rollback()
                    continue  # someone claimed it between our read and write
            if record.request_hash != fingerprint:
                raise Invalid("idempotency_key_reused", "Idempotency-Key already used",
                              "This Idempotency-Key was used with a different request body. "
                              "Use a new key for a new purchase.")
            if record.state == "done" and record.status_code is not None:
                return Replay(record.status_code, dict(record.response_body or {}))
            if record.state == "retry":
                resumed = uow.session.execute(
                    update(IdempotencyRecord)
                    .where(IdempotencyRecord.id == record.id, IdempotencyRecord.state == "retry")
                    .values(state="in_progress", updated_at=uow.now))
                uow.commit()
                if resumed.rowcount == 1:  # type: ignore[attr-defined]
                    return Claim(record.id, record.order_id)
                continue  # a concurrent retry resumed it first: wait for its answer
            if record.updated_at < uow.now - STALE_CLAIM:
                record.updated_at = uow.now
                uow.commit()
                return Claim(record.id, record.order_id)
        if time.monotonic() > deadline:
            raise Conflict("idempotency_key_in_use", "Request still in progress",
                           "A request with this Idempotency-Key is still being processed; "
                           "retry shortly to get its result.", retry_after=2)
        time.sleep(0.05)


def _find(session: Session, user_id: int, key: str) -> IdempotencyRecord | None:
    return session.scalar(select(IdempotencyRecord).where(
        IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key))


def finish(session: Session, record_id: int, response: Replay, now: datetime) -> None:
    """Store the response in the caller's transaction (with the order it describes)."""
    record = session.get(IdempotencyRecord, record_id)
    if record is None:
        return
    record.state = "done"
    record.status_code = response.status_code
    record.response_body = response.body
    record.updated_at = now


def link_order(session: Session, record_id: int, order_id: int) -> None:
    """Remember which order this key opened (in the transaction that opens it)."""
    record = session.get(IdempotencyRecord, record_id)
    if record is not None:
        record.order_id = order_id


def await_retry(new_uow: UowFactory, record_id: int) -> None:
    """The payment may or may not have happened: keep the key for a retry."""
    uow = new_uow()
    with uow:
        uow.session.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == record_id)
                            .values(state="retry", updated_at=uow.now))
        uow.commit()


def release(new_uow: UowFactory, record_id: int) -> None:
    """Forget a claim whose request had no effect, so it can be retried as is."""
    uow = new_uow()
    with uow:
        uow.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
        uow.commit()
