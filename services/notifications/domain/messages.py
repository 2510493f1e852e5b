"""What each event means for the people it concerns: which messages, to whom,
keyed how, with what context, and when. Plain Python: the use cases apply the
plans to the database.

A payload missing a field a message needs is an `InvalidEvent` (422): the
publisher's relay keeps the event and retries it, so nothing is lost while
the publisher is fixed. Unknown extra fields are fine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.errors import Invalid
from services.common.formatting import date_or_moment
from services.notifications.domain import schedule as S
from services.notifications.domain.schedule import Schedule


@dataclass(frozen=True)
class Planned:
    dedupe_key: str
    template: str
    recipient: str
    context: dict[str, Any]
    send_after: datetime


class InvalidEvent(Invalid):
    def __init__(self, topic: str, detail: str) -> None:
        super().__init__("invalid_event", "Invalid event", f"{topic}: {detail}")


def _take(topic: str, payload: dict[str, Any], required: Iterable[str],
          optional: dict[str, Any] | None = None) -> dict[str, Any]:
    missing = [name for name in required if payload.get(name) is None]
    if missing:
        raise InvalidEvent(topic, f"missing {', '.join(missing)}")
    context = {name: payload[name] for name in required}
    # Every mail links to the Billing page of what it is about (checkout's, see events.py).
    context["billing_url"] = payload.get("billing_url")
    for name, default in (optional or {}).items():
        value = payload.get(name)
        context[name] = default if value is None else value
    return context


def _recipient(topic: str, context: dict[str, Any]) -> str:
    email = str(context["email"]).strip()
    if "@" not in email or any(ch in email for ch in "\r\n<>, "):
        raise InvalidEvent(topic, f"not an email address: {email[:100]!r}")
    return email


def _lines(topic: str, lines: Any) -> list[dict[str, Any]]:
    """Invoice lines with every column a template shows (discount and net default)."""
    if not isinstance(lines, list):
        raise InvalidEvent(topic, "lines must be a list")
    result = []
    for line in lines:
        if not isinstance(line, dict) or line.get("description") is None or line.get("amount") is None:
            raise InvalidEvent(topic, "each line needs a description and an amount")
        quantity = _whole(topic, "quantity", line.get("quantity") or 1)
        amount = _whole(topic, "amount", line["amount"])
        discount = _whole(topic, "discount", line.get("discount") or 0)
        result.append({**line, "description": str(line["description"]), "quantity": quantity,
                       "unit_amount": _whole(topic, "unit_amount",
                                             line.get("unit_amount", amount // max(quantity, 1))),
                       "amount": amount, "discount": discount,
                       "net": _whole(topic, "net", line.get("net", amount - discount))})
    return result


def _whole(topic: str, name: str, value: Any) -> int:
    """Amounts are integer cents and counts are integers: 174000, never 1740.0 or "1740"."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(topic, f"{name} must be an integer, got {value!r}"[:200])
    return value


def _wholes(topic: str, context: dict[str, Any], *names: str) -> None:
    for name in names:
        if context.get(name) is not None:
            context[name] = _whole(topic, name, context[name])


def _dates(topic: str, context: dict[str, Any], *names: str) -> None:
    """Days and moments are ISO-8601 that exist: "2027-02-30" is refused here, not
    when the mail is rendered."""
    for name in names:
        if context.get(name) is not None:
            try:
                date_or_moment(context[name])
            except (TypeError, ValueError) as exc:
                raise InvalidEvent(topic, f"{name} is not an ISO-8601 date: {exc}"[:200]) from exc


def _card(topic: str, card: Any) -> dict[str, Any] | None:
    if card is None:
        return None
    if not isinstance(card, dict) or any(card.get(k) is None for k in ("brand", "last4", "exp_month",
                                                                       "exp_year")):
        raise InvalidEvent(topic, "card needs brand, last4, exp_month and exp_year")
    card = dict(card)
    _wholes(topic, card, "exp_month", "exp_year")
    return {**card, "expired": bool(card.get("expired", False)),
            "expires_before_renewal": bool(card.get("expires_before_renewal", False))}


# --- checkout's events -----------------------------------------------------------------
def receipt(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "order.completed"
    context = _take(topic, payload, ["order_id", "email", "namespace_path", "plan", "seats", "lines",
                                     "total", "currency", "term_start", "term_end"],
                    {"namespace_id": None, "user_id": None, "company": None, "subtotal": None,
                     "discount_total": 0, "card": None, "discount_code": None, "kind": "purchase",
                     "heading": None, "renewal": None})
    _wholes(topic, context, "seats", "total", "subtotal", "discount_total")
    _dates(topic, context, "term_start", "term_end")
    context["lines"] = _lines(topic, context["lines"])
    if context["subtotal"] is None:
        context["subtotal"] = sum(line["amount"] for line in context["lines"])
    context["card"] = _card(topic, context["card"])
    renewal = context["renewal"]
    if renewal is not None:
        if not isinstance(renewal, dict) or renewal.get("renewal_date") is None:
            raise InvalidEvent(topic, "renewal needs renewal_date and total")
        _dates(topic, renewal, "renewal_date")
        context["renewal"] = {**renewal, "total": _whole(topic, "renewal.total", renewal.get("total"))}
    return Planned(S.receipt_key(context["order_id"]), "receipt", _recipient(topic, context), context, now)


def refund(payload: dict[str, Any], now: datetime) -> Planned:
    """Money given back for an order: how much, of what, and why."""
    topic = "order.refunded"
    context = _take(topic, payload, ["order_id", "email", "namespace_path", "amount", "currency"],
                    {"namespace_id": None, "refunded_total": None, "amount_charged": None, "reason": None})
    _wholes(topic, context, "order_id", "amount", "refunded_total", "amount_charged")
    key = S.refund_key(context["order_id"], context["refunded_total"] or context["amount"])
    return Planned(key, "refund", _recipient(topic, context), context, now)


def renewal_upcoming(payload: dict[str, Any], now: datetime, schedule: Schedule) -> Planned:
    topic = "subscription.renewal_upcoming"
    context = _take(topic, payload, ["subscription_id", "email", "namespace_path", "renewal_date",
                                     "days_before", "auto_renew", "plan"],
                    {"namespace_id": None, "company": None, "quote": None, "card": None,
                     "next_days_before": 0})
    _wholes(topic, context, "days_before", "next_days_before")
    _dates(topic, context, "renewal_date")
    context["days_left"] = S.days_until(context["renewal_date"], now)  # brought up to date when sent
    context["auto_renew"] = bool(context["auto_renew"])
    template = schedule.renewal_template(context["days_before"], context["auto_renew"])
    quote = context["quote"]
    if quote is not None:
        if not isinstance(quote, dict) or any(quote.get(k) is None for k in ("total", "currency", "seats")):
            raise InvalidEvent(topic, "quote needs lines, seats, total and currency")
        context["quote"] = {**quote, "lines": _lines(topic, quote.get("lines") or []),
                            "seats": _whole(topic, "quote.seats", quote["seats"]),
                            "total": _whole(topic, "quote.total", quote["total"]),
                            "seats_owed": _whole(topic, "quote.seats_owed", quote.get("seats_owed") or 0),
                            "scheduled_change": [str(said) for said in quote.get("scheduled_change") or []]}
    elif template == "auto_renewal_notice":
        raise InvalidEvent(topic, "the auto-renewal notice needs the quote (lines, seats, total)")
    context["card"] = _card(topic, context["card"])
    key = S.renewal_reminder_key(context["subscription_id"], context["renewal_date"],
                                 context["days_before"])
    return Planned(key, template, _recipient(topic, context), context, now)


def renewal_receipt(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "subscription.renewed"
    context = _take(topic, payload, ["subscription_id", "email", "namespace_path", "amount", "currency",
                                     "term_start", "term_end", "seats"],
                    {"namespace_id": None, "plan": None, "changes": []})
    _wholes(topic, context, "amount", "seats")
    _dates(topic, context, "term_start", "term_end")
    context["changes"] = [str(change) for change in context["changes"]]
    key = S.renewal_receipt_key(context["subscription_id"], context["term_start"])
    return Planned(key, "renewal_receipt", _recipient(topic, context), context, now)


def renewal_failed(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "subscription.renewal_failed"
    context = _take(topic, payload, ["subscription_id", "email", "namespace_path", "amount", "currency",
                                     "attempt", "renewal_date", "final", "update_card_url"],
                    {"namespace_id": None, "next_attempt_at": None})
    _wholes(topic, context, "amount", "attempt")
    _dates(topic, context, "renewal_date", "next_attempt_at")
    context["final"] = bool(context["final"])
    key = S.renewal_failed_key(context["subscription_id"], context["renewal_date"], context["attempt"])
    return Planned(key, "renewal_failed", _recipient(topic, context), context, now)


def subscription_expired(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "subscription.expired"
    context = _take(topic, payload, ["subscription_id", "email", "namespace_path", "plan", "term_end"],
                    {"namespace_id": None})
    _dates(topic, context, "term_end")
    key = S.subscription_expired_key(context["subscription_id"], context["term_end"])
    return Planned(key, "subscription_expired", _recipient(topic, context), context, now)


def card_expiring(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "card.expiring"
    context = _take(topic, payload, ["billing_account_id", "email", "brand", "last4", "exp_month",
                                     "exp_year"],
                    {"namespace_id": None, "company": None, "update_card_url": None})
    _wholes(topic, context, "exp_month", "exp_year")
    context["update_card_url"] = context["update_card_url"] or context["billing_url"]
    context["card"] = _card(topic, {k: context[k] for k in ("brand", "last4", "exp_month", "exp_year")})
    key = S.card_expiring_key(context["billing_account_id"], context["last4"], context["exp_year"],
                              context["exp_month"])
    return Planned(key, "card_expiring", _recipient(topic, context), context, now)


# --- seats ---------------------------------------------------------------------------
_SEAT_FIELDS = ["subscription_id", "email", "namespace_path", "reconciliation_id", "quarter", "overage_seats",
                "amount", "currency", "seats"]


def _seat_context(topic: str, payload: dict[str, Any], extra: list[str],
                  optional: dict[str, Any] | None = None) -> dict[str, Any]:
    context = _take(topic, payload, _SEAT_FIELDS + extra, {"namespace_id": None, **(optional or {})})
    _wholes(topic, context, "quarter", "overage_seats", "amount", "seats", "max_seats_used", "attempt",
            "seats_before")
    _dates(topic, context, "charge_on", "next_attempt_at")
    return context


def overage_notice(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "subscription.overage_notice"
    context = _seat_context(topic, payload, ["max_seats_used", "charge_on"])
    key = S.seat_key("overage_notice", context["reconciliation_id"], context["email"])
    return Planned(key, "overage_notice", _recipient(topic, context), context, now)


def seats_reconciled(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "subscription.seats_reconciled"
    context = _seat_context(topic, payload, [], {"seats_before": None, "max_seats_used": None})
    key = S.seat_key("seats_reconciled", context["reconciliation_id"], context["email"])
    return Planned(key, "seats_reconciled", _recipient(topic, context), context, now)


def reconciliation_failed(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "subscription.reconciliation_failed"
    context = _seat_context(topic, payload, ["attempt", "final", "update_card_url"],
                            {"next_attempt_at": None})
    context["final"] = bool(context["final"])
    key = S.seat_key("reconciliation_failed", context["reconciliation_id"], context["email"],
                     context["attempt"])
    return Planned(key, "reconciliation_failed", _recipient(topic, context), context, now)


def seats_explained(payload: dict[str, Any], now: datetime) -> Planned:
    """Sent on `send_on` (the day after the renewal), not at once."""
    topic = "subscription.seats_explained"
    context = _take(topic, payload, ["subscription_id", "email", "namespace_path", "term_start", "term_end",
                                     "seats", "send_on"], {"namespace_id": None})
    _wholes(topic, context, "seats")
    _dates(topic, context, "term_start", "term_end", "send_on")
    key = S.seat_key("seats_explained", context["subscription_id"], context["email"],
                     S.day(context["term_start"]))
    return Planned(key, "seats_explained", _recipient(topic, context), context,
                   max(now, S.parse_datetime(context["send_on"])))


def duo_seats_removed(payload: dict[str, Any], now: datetime) -> Planned:
    topic = "subscription.duo_seats_removed"
    context = _take(topic, payload, ["namespace_id", "email", "namespace_path", "sku", "seats",
                                     "removed_user_ids", "change_id"])
    _wholes(topic, context, "seats")
    if not isinstance(context["removed_user_ids"], list):
        raise InvalidEvent(topic, "removed_user_ids must be a list")
    key = S.seat_key("duo_seats_removed", context["change_id"], context["email"])
    return Planned(key, "duo_seats_removed", _recipient(topic, context), context, now)


def auto_renew_changed(payload: dict[str, Any], now: datetime) -> Planned:
    """The confirmation of automatic renewal turned off (with what happens at the end) or on."""
    topic = "subscription.auto_renew_changed"
    context = _take(topic, payload, ["subscription_id", "email", "namespace_path", "auto_renew", "plan",
                                     "term_end"],
                    {"namespace_id": None, "grace_ends": None, "reason_label": None, "renewal_total": None,
                     "currency": "USD"})
    _wholes(topic, context, "renewal_total")
    _dates(topic, context, "term_end", "grace_ends")
    context["auto_renew"] = bool(context["auto_renew"])
    # Each change is its own mail: off, on and off again in one term are three confirmations.
    key = S.auto_renew_changed_key(context["subscription_id"], now, context["auto_renew"])
    return Planned(key, "auto_renew_changed", _recipient(topic, context), context, now)


def manager_invitation(payload: dict[str, Any], now: datetime) -> Planned:
    """The invitation to manage a namespace's billing, with its single-use link."""
    topic = "billing.manager_invited"
    context = _take(topic, payload, ["invitation_id", "email", "namespace_path", "accept_url", "expires_at"],
                    {"namespace_id": None, "invited_by_email": None})
    _wholes(topic, context, "invitation_id")
    _dates(topic, context, "expires_at")
    key = S.manager_invitation_key(context["invitation_id"])
    return Planned(key, "manager_invitation", _recipient(topic, context), context, now)


# --- trials' events --------------------------------------------------------------------
def trial_context(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    context = _take(topic, payload, ["trial_id", "email", "namespace_path", "kind", "ends_at"],
                    {"namespace_id": None, "user_id": None, "status": None, "duo_pro_upsell": False})
    try:
        context["ends_at"] = S.parse_datetime(context["ends_at"]).isoformat()
    except ValueError as exc:
        raise InvalidEvent(topic, "ends_at is not an ISO-8601 datetime") from exc
    return context


def trial_once(template: str, topic: str, payload: dict[str, Any], now: datetime) -> Planned:
    """trial_started, trial_expired, trial_converted: once per trial, now."""
    context = trial_context(topic, payload)
    return Planned(S.trial_key(template, context["trial_id"]), template, _recipient(topic, context),
                   context, now)


def trial_endings(topic: str, payload: dict[str, Any], now: datetime, schedule: Schedule) -> list[Planned]:
    """A reminder per configured day before the trial's end, unless already past."""
    context = trial_context(topic, payload)
    ends_at = S.parse_datetime(context["ends_at"])
    recipient = _recipient(topic, context)
    return [Planned(S.trial_ending_key(context["trial_id"], ends_at, days), "trial_ending", recipient,
                    {**context, "days": days, "days_left": days}, send_after)
            for days, send_after in schedule.trial_endings(ends_at, now)]
