from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.schemas import CampaignInSchema, CampaignSchema, RedemptionSchema
from services.checkout.usecases import campaigns
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("admin", __name__, url_prefix="/admin",
                description="Discount campaigns (admin role required)")
ADMIN: list[dict[str, list[str]]] = [{"bearerAuth": []}]


@blp.route("/campaigns")
class Campaigns(MethodView):
    @blp.response(200, CampaignSchema(many=True))
    @blp.doc(security=ADMIN)
    def get(self) -> list[dict[str, Any]]:
        """All campaigns with redemptions, remaining uses and revenue effect."""
        return campaigns.list_all(request_uow(), current_principal())

    @blp.arguments(CampaignInSchema)
    @blp.response(201, CampaignSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="The code exists already")
    @blp.doc(security=ADMIN)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a campaign with one shared code or N single-use codes."""
        fields = {k: body[k] for k in campaigns.RULE_FIELDS}
        new = campaigns.NewCampaign(name=body["name"], kind=body["kind"], fields=fields,
                                    code=body["code"], code_count=body["code_count"],
                                    code_prefix=body["code_prefix"])
        return campaigns.create(checkout(), request_uow(), current_principal(), new)


@blp.route("/campaigns/<id:campaign_id>")
class Campaign(MethodView):
    @blp.response(200, CampaignSchema)
    @blp.doc(security=ADMIN)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """One campaign and its numbers."""
        return campaigns.get(request_uow(), current_principal(), campaign_id)


def _transition(action: str) -> type[MethodView]:
    class Transition(MethodView):
        @blp.response(200, CampaignSchema)
        @blp.alt_response(409, schema=ProblemSchema, description="Not possible in this state")
        @blp.doc(security=ADMIN, summary=f"{action.capitalize()} a campaign")
        def post(self, campaign_id: int) -> dict[str, Any]:
            return campaigns.transition(request_uow(), current_principal(), campaign_id, action)

    Transition.__name__ = f"Campaign{action.capitalize()}"
    return Transition


for _action in campaigns.TRANSITIONS:
    blp.route(f"/campaigns/<id:campaign_id>/{_action}")(_transition(_action))


@blp.route("/campaigns/<id:campaign_id>/codes.csv")
class CampaignCodes(MethodView):
    @blp.doc(security=ADMIN, responses={"200": {"description": "CSV of the campaign's codes",
                                                "content": {"text/csv": {}}}})
    def get(self, campaign_id: int) -> Response:
        """Export the campaign's codes as CSV (for mailing single-use codes)."""
        body = campaigns.codes_csv(request_uow(), current_principal(), campaign_id)
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="campaign-{campaign_id}-codes.csv"'})


@blp.route("/campaigns/<id:campaign_id>/redemptions")
class CampaignRedemptions(MethodView):
    @blp.response(200, RedemptionSchema(many=True))
    @blp.doc(security=ADMIN)
    def get(self, campaign_id: int) -> list[dict[str, Any]]:
        """Every use of the campaign's codes, with the order it discounted."""
        return campaigns.redemptions(request_uow(), current_principal(), campaign_id)
