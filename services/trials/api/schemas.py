from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from services.common.schemas import StrictSchema, printable


class VerdictSchema(ma.Schema):
    kind = ma.fields.String()
    name = ma.fields.String()
    eligible = ma.fields.Boolean()
    reason = ma.fields.String(allow_none=True, metadata={"description": "Stable code when not eligible"})
    message = ma.fields.String(allow_none=True)
    duration_days = ma.fields.Integer(allow_none=True)


class UpsellSchema(ma.Schema):
    kind = ma.fields.String()
    name = ma.fields.String()
    duration_days = ma.fields.Integer()
    message = ma.fields.String()


class TrialSchema(ma.Schema):
    id = ma.fields.Integer()
    namespace_id = ma.fields.Integer()
    namespace_path = ma.fields.String()
    kind = ma.fields.String()
    name = ma.fields.String()
    status = ma.fields.String(metadata={"description": "active, expired or converted"})
    started_at = ma.fields.AwareDateTime()
    ends_at = ma.fields.AwareDateTime()
    days_left = ma.fields.Integer()
    seats = ma.fields.Integer(allow_none=True)
    plan_before = ma.fields.String(metadata={"description": "The paid plan it returns to"})
    extended = ma.fields.Boolean()
    reactivated = ma.fields.Boolean()
    recently_expired = ma.fields.Boolean()
    upsell = ma.fields.Nested(UpsellSchema, allow_none=True, metadata={
        "description": "Another trial offered now (the duo-pro-upsell experiment); on a new start only"})


class StartTrialSchema(StrictSchema):
    kind = ma.fields.String(required=True, validate=validate.Length(1, 32))


class SupportActionSchema(StrictSchema):
    reason = ma.fields.String(required=True, validate=[validate.Length(3, 500), printable(allow="\n\t")],
                              metadata={"description": "Why (kept in the audit trail)"})
