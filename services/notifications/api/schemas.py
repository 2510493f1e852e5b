from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from services.notifications.usecases.scheduling import STATUSES


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class NotificationSchema(ma.Schema):
    id = ma.fields.Integer()
    dedupe_key = ma.fields.String(metadata={"description": "Unique: what makes it be scheduled once"})
    template = ma.fields.String()
    recipient = ma.fields.String()
    subject = ma.fields.String()
    status = ma.fields.String(metadata={"description": "scheduled, sending, sent, failed or canceled"})
    send_after = ma.fields.AwareDateTime()
    attempts = ma.fields.Integer(metadata={"description": "Tries made so far"})
    next_attempt_at = ma.fields.AwareDateTime(allow_none=True)
    last_error = ma.fields.String(allow_none=True, metadata={"description": "The last SMTP error"})
    message_id = ma.fields.String(allow_none=True)
    sent_at = ma.fields.AwareDateTime(allow_none=True)
    traffic = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class NotificationDetailSchema(NotificationSchema):
    context = ma.fields.Dict(metadata={"description": "Everything the template is rendered from"})


class NotificationQuerySchema(StrictSchema):
    recipient = ma.fields.String(validate=validate.Length(1, 254))
    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    template = ma.fields.String(validate=validate.Length(1, 64))
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(1, 500))


def _override(description: str) -> ma.fields.String:
    return ma.fields.String(validate=validate.Length(0, 200), metadata={"description": description})


class PreviewQuerySchema(StrictSchema):
    """The template, and the main fields of its sample event to override."""

    template = ma.fields.String(required=True, validate=validate.Length(1, 64))
    email = _override("Recipient")
    company = _override("Company")
    namespace_path = _override("Namespace path")
    plan = _override("Plan (premium, ultimate...)")
    kind = _override("Trial kind (ultimate, duo_pro, duo_enterprise)")
    seats = _override("Seats")
    seats_owed = _override("Seats owed (auto_renewal_notice)")
    total = _override("Total in cents")
    amount = _override("Amount in cents")
    currency = _override("Currency code")
    renewal_date = _override("Renewal date (YYYY-MM-DD)")
    days_before = _override("Days before the renewal")
    auto_renew = _override("true or false")
    term_start = _override("Term start (YYYY-MM-DD)")
    term_end = _override("Term end (YYYY-MM-DD)")
    ends_at = _override("Trial end (ISO-8601)")
    days = _override("Days before the trial's end (trial_ending)")
    attempt = _override("Renewal charge attempt")
    final = _override("Last attempt (true or false)")
    brand = _override("Card brand")
    last4 = _override("Card's last four digits")
    exp_month = _override("Card expiry month")
    exp_year = _override("Card expiry year")
    expired = _override("Card has expired (true or false)")
    expires_before_renewal = _override("Card expires before the renewal (true or false)")
    discount_code = _override("Discount code (receipt)")


class PreviewSchema(ma.Schema):
    template = ma.fields.String()
    subject = ma.fields.String()
    text = ma.fields.String()
    html = ma.fields.String()
