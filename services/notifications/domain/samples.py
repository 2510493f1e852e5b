"""Real-looking events for previews: each template rendered from the same
planning code real events go through, so a preview shows what a customer gets.

`sample_context(template, overrides)` takes query-string overrides for the
main fields (top-level, or inside the sample's quote or card), coerced to the
sample value's type.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.common.errors import Invalid
from services.common.formatting import date_or_moment
from services.notifications.domain import messages as M
from services.notifications.domain import schedule as S
from services.notifications.domain.rendering import TemplateNotFound
from services.notifications.domain.schedule import Schedule

SAMPLE_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

_CARD = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
_ULTIMATE_LINE = {"sku": "ultimate", "kind": "plan", "description": "Ultimate plan, 10 seats, 12 months",
                  "quantity": 10, "unit_amount": 118800, "amount": 1188000, "discount": 0, "net": 1188000}
_DUO_LINE = {"sku": "duo_pro", "kind": "addon", "description": "GitLab Duo Pro, 10 seats, 12 months",
             "quantity": 10, "unit_amount": 22800, "amount": 228000, "discount": 0, "net": 228000}
_PREMIUM_LINE = {"sku": "premium", "kind": "plan", "description": "Premium plan, 5 seats, 12 months",
                 "quantity": 5, "unit_amount": 34800, "amount": 174000, "discount": 0, "net": 174000}
_ACME = {"namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test", "company": "Acme Corp"}
_TRIAL = {"trial_id": 7, "namespace_id": 100, "namespace_path": "acme", "kind": "ultimate",
          "status": "active", "ends_at": "2026-12-21T12:00:00+00:00", "email": "owner@acme.test",
          "occurred_at": "2026-11-21T12:00:00+00:00"}

_SEATS = {**_ACME, "email": "owner@acme.test", "subscription_id": 9, "reconciliation_id": 4, "quarter": 1,
          "term_start": "2026-11-28", "overage_seats": 2, "amount": 178200, "currency": "USD", "seats": 10}

# template -> (topic, payload)
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "receipt": ("order.completed", {
        **_ACME, "order_id": 42, "plan": "premium", "seats": 5, "lines": [_PREMIUM_LINE],
        "subtotal": 174000, "discount_total": 0, "total": 174000, "currency": "USD",
        "term_start": "2026-11-21", "term_end": "2027-11-21", "card": _CARD, "discount_code": None}),
    "refund": ("order.refunded", {
        **_ACME, "order_id": 42, "amount": 34800, "currency": "USD", "refunded_total": 34800,
        "amount_charged": 174000, "reason": "One seat was bought by mistake"}),
    "renewal_reminder": ("subscription.renewal_upcoming", {
        **_ACME, "subscription_id": 9, "renewal_date": "2027-11-21", "days_before": 30,
        "auto_renew": True, "plan": "ultimate",
        "quote": {"lines": [_ULTIMATE_LINE], "seats": 10, "seats_owed": 0, "total": 1188000,
                  "currency": "USD"},
        "card": {**_CARD, "expired": False, "expires_before_renewal": False}}),
    "auto_renewal_notice": ("subscription.renewal_upcoming", {
        **_ACME, "subscription_id": 9, "renewal_date": "2027-11-21", "days_before": 15,
        "auto_renew": True, "plan": "ultimate",
        "quote": {"lines": [_ULTIMATE_LINE, _DUO_LINE], "seats": 10, "seats_owed": 2, "total": 1416000,
                  "currency": "USD"},
        "card": {"brand": "mastercard", "last4": "4444", "exp_month": 10, "exp_year": 2027,
                 "expired": False, "expires_before_renewal": True}}),
    "renewal_receipt": ("subscription.renewed", {
        **_ACME, "subscription_id": 9, "amount": 1188000, "currency": "USD",
        "term_start": "2027-11-21", "term_end": "2028-11-21", "seats": 10, "plan": "ultimate",
        "changes": ["Seats rose from 8 to 10 to match your billable members.",
                    "The first-year discount has ended; this term is at list price."]}),
    "renewal_failed": ("subscription.renewal_failed", {
        **_ACME, "subscription_id": 9, "amount": 1188000, "currency": "USD", "attempt": 1,
        "renewal_date": "2027-11-21", "next_attempt_at": "2027-11-24T00:00:00+00:00", "final": False,
        "update_card_url": "http://127.0.0.1:8001/billing/100"}),
    "subscription_expired": ("subscription.expired", {
        **_ACME, "subscription_id": 9, "plan": "ultimate", "term_end": "2027-11-21"}),
    "auto_renew_changed": ("subscription.auto_renew_changed", {
        **_ACME, "subscription_id": 9, "auto_renew": False, "by": 1, "plan": "premium",
        "term_end": "2027-11-21", "grace_ends": "2027-12-05", "reason": "too_expensive",
        "reason_label": "It costs too much", "renewal_total": 174000, "currency": "USD",
        "billing_url": "http://127.0.0.1:8001/billing/100"}),
    "manager_invitation": ("billing.manager_invited", {
        "invitation_id": 4, "namespace_id": 100, "namespace_path": "acme", "email": "erin@partner.test",
        "invited_by_email": "alice@acme.test", "accept_url": "http://127.0.0.1:8001/billing/invitation?token=sample",
        "expires_at": "2026-11-24T12:00:00+00:00"}),
    "card_expiring": ("card.expiring", {
        "billing_account_id": 3, "email": "billing@acme.test", "company": "Acme Corp", **_CARD,
        "exp_month": 12, "exp_year": 2026}),
    "trial_started": ("trial.started", dict(_TRIAL)),
    "trial_ending": ("trial.started", {**_TRIAL, "days": 7}),
    "trial_expired": ("trial.expired", {**_TRIAL, "status": "expired"}),
    "trial_converted": ("trial.converted", {**_TRIAL, "status": "converted"}),
    "overage_notice": ("subscription.overage_notice", {
        **_SEATS, "max_seats_used": 12, "charge_on": "2027-03-07"}),
    "seats_reconciled": ("subscription.seats_reconciled", {**_SEATS, "seats": 12, "seats_before": 10}),
    "reconciliation_failed": ("subscription.reconciliation_failed", {
        **_SEATS, "attempt": 1, "final": False, "next_attempt_at": "2027-03-08",
        "update_card_url": "http://127.0.0.1:8001/billing-account"}),
    "seats_explained": ("subscription.seats_explained", {
        **_ACME, "email": "owner@acme.test", "subscription_id": 9, "term_start": "2027-11-21",
        "term_end": "2028-11-21", "seats": 10, "send_on": "2027-11-22"}),
    "duo_seats_removed": ("subscription.duo_seats_removed", {
        **_ACME, "email": "owner@acme.test", "sku": "duo_pro", "seats": 8, "removed_user_ids": [41, 42],
        "change_id": "renewal-9-2027-11-21"}),
}

_SEAT_PLANS = {"overage_notice": M.overage_notice, "seats_reconciled": M.seats_reconciled,
               "reconciliation_failed": M.reconciliation_failed, "seats_explained": M.seats_explained,
               "duo_seats_removed": M.duo_seats_removed}
_NESTED = ("quote", "card")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _coerce(name: str, raw: str, like: Any) -> Any:
    if isinstance(like, bool):
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise ValueError("expected true or false")
    if isinstance(like, int):
        return int(raw)
    if name in _NESTED and raw.lower() in ("", "null", "none"):
        return None
    if isinstance(like, str) and _is_date(like):
        date_or_moment(raw)  # "2027-02-30" is a ValueError: no such day
    return raw


def _is_date(text: str) -> bool:
    try:
        date_or_moment(text)
    except ValueError:
        return False
    return True


def apply_overrides(template: str, payload: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    result = copy.deepcopy(payload)
    errors: dict[str, list[str]] = {}
    for name, raw in overrides.items():
        holders = [result] + [result[n] for n in _NESTED if isinstance(result.get(n), dict)]
        holder = next((h for h in holders if name in h), None)
        if holder is None:
            errors[name] = [f"Not a field of the {template} template."]
            continue
        try:
            holder[name] = _coerce(name, raw, holder[name])
        except ValueError as exc:
            errors[name] = [f"Invalid value: {exc}"]
    if errors:
        raise Invalid("validation_failed", "The request body or parameters are invalid",
                      "Some preview parameters do not apply or are invalid; see 'errors'.",
                      errors={"query": errors})
    return result


def _on_its_day(payload: dict[str, Any]) -> datetime:
    """A preview shows a renewal reminder sent on its day: `days_before` days ahead."""
    try:
        renewal_day = date.fromisoformat(S.day(payload["renewal_date"]))
    except ValueError:
        return SAMPLE_NOW  # renewal_upcoming refuses the date (422 invalid_event)
    return datetime.combine(renewal_day - timedelta(days=int(payload["days_before"])), SAMPLE_NOW.timetz())


def sample_context(template: str, overrides: dict[str, str] | None = None,
                   schedule: Schedule | None = None) -> dict[str, Any]:
    """The context a real event would give `template`, from a sample event."""
    if template not in SAMPLES:
        raise TemplateNotFound(template)
    topic, payload = SAMPLES[template]
    payload = apply_overrides(template, payload, overrides or {})
    plan: M.Planned
    if template == "receipt":
        plan = M.receipt(payload, SAMPLE_NOW)
    elif template == "refund":
        plan = M.refund(payload, SAMPLE_NOW)
    elif template in ("renewal_reminder", "auto_renewal_notice"):
        plan = M.renewal_upcoming(payload, _on_its_day(payload), schedule or Schedule())
    elif template == "renewal_receipt":
        plan = M.renewal_receipt(payload, SAMPLE_NOW)
    elif template == "renewal_failed":
        plan = M.renewal_failed(payload, SAMPLE_NOW)
    elif template == "subscription_expired":
        plan = M.subscription_expired(payload, SAMPLE_NOW)
    elif template == "auto_renew_changed":
        plan = M.auto_renew_changed(payload, SAMPLE_NOW)
    elif template == "manager_invitation":
        plan = M.manager_invitation(payload, SAMPLE_NOW)
    elif template == "card_expiring":
        plan = M.card_expiring(payload, SAMPLE_NOW)
    elif template in _SEAT_PLANS:
        plan = _SEAT_PLANS[template](payload, SAMPLE_NOW)
    elif template == "trial_ending":
        days = int(payload["days"])
        return {**M.trial_context(topic, payload), "days": days, "days_left": days}
    else:
        plan = M.trial_once(template, topic, payload, SAMPLE_NOW)
    return plan.context
