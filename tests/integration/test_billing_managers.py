"""Billing managers: an Owner invites by email (a link that works once and
expires), the invited person manages, the Owner removes them; all audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from identity.auth import ISSUER, issue_token
from services.checkout.adapters.models import BillingAuditEntry, OutboxMessage
from services.common.clock import FixedClock, SystemClock
from tests.support import TEST_SECRET, auth

ALICE, BOB, ERIN, MALLORY = 1, 2, 50, 51
GLOBEX = 200
ERIN_EMAIL = "erin@partner.test"


def as_user(user_id: int, email: str) -> dict[str, str]:
    token = issue_token(TEST_SECRET, user_id, email, now=SystemClock().now(), ttl=timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def invite(client: FlaskClient, app: Flask, email: str = ERIN_EMAIL) -> str:
    answer = client.post(f"/namespaces/{GLOBEX}/billing/managers/invitations", json={"email": email},
                         headers=auth(ALICE))
    assert answer.status_code == 201, answer.json
    with Session(app.extensions["checkout"].ctx.engine) as s:
        urls = [m.payload["accept_url"] for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "billing.manager_invited"))]
    return str(urls[-1].rsplit("token=", 1)[-1])


def code(response: Any) -> tuple[int, str]:
    return response.status_code, response.json["code"]


def test_an_invited_person_manages_billing_until_the_owner_removes_them(client: FlaskClient, app: Flask) -> None:
    erin = as_user(ERIN, ERIN_EMAIL)
    assert code(client.get(f"/namespaces/{GLOBEX}/billing", headers=erin)) == (404, "namespace_not_found")
    token = invite(client, app)
    listed = client.get(f"/namespaces/{GLOBEX}/billing/managers", headers=auth(ALICE)).json
    assert [i["email"] for i in listed["invitations"]] == [ERIN_EMAIL] and listed["managers"] == []

    # Only the person named may accept, and only once.
    mallory = as_user(MALLORY, "mallory@evil.test")
    assert code(client.post("/billing-invitations/accept", json={"token": token}, headers=mallory)) == (
        403, "invitation_for_someone_else")
    accepted = client.post("/billing-invitations/accept", json={"token": token}, headers=erin)
    assert accepted.status_code == 200 and accepted.json == {"namespace_id": GLOBEX}
    assert code(client.post("/billing-invitations/accept", json={"token": token}, headers=erin)) == (
        409, "invitation_used")

    seen = client.get(f"/namespaces/{GLOBEX}/billing", headers=erin).json
    assert seen["can_manage"] is True and seen["billing_manager"] is True and seen["role"] is None
    assert [s["namespace_path"] for s in client.get("/subscriptions", headers=erin).json] == ["globex"]
    assert client.get(f"/namespaces/{GLOBEX}/subscription/renewal", headers=erin).json["quote"]["total"] == 174000
    off = client.put(f"/namespaces/{GLOBEX}/subscription/auto-renew",
                     json={"enabled": False, "reason": "budget_cycle"}, headers=erin)
    assert off.status_code == 200
    # Managers do not appoint managers.
    assert code(client.post(f"/namespaces/{GLOBEX}/billing/managers/invitations",
                            json={"email": "x@y.test"}, headers=erin)) == (403, "not_owner")
    assert code(client.post(f"/namespaces/{GLOBEX}/billing/managers/invitations",
                            json={"email": "x@y.test"}, headers=auth(BOB))) == (403, "not_owner")

    assert client.delete(f"/namespaces/{GLOBEX}/billing/managers/{ERIN}", headers=auth(ALICE)).status_code == 204
    assert code(client.get(f"/namespaces/{GLOBEX}/billing", headers=erin)) == (404, "namespace_not_found")
    with Session(app.extensions["checkout"].ctx.engine) as s:
        trail = [(a.action, a.actor_id) for a in s.scalars(select(BillingAuditEntry).order_by(BillingAuditEntry.id))]
    assert trail == [("manager_invited", ALICE), ("manager_joined", ERIN), ("auto_renew_off", ERIN),
                     ("manager_removed", ALICE)]


def test_links_expire_and_bad_tokens_are_refused(client: FlaskClient, app: Flask, clock: FixedClock) -> None:
    token = invite(client, app)
    clock.advance(timedelta(hours=73))
    erin = as_user(ERIN, ERIN_EMAIL)
    assert code(client.post("/billing-invitations/accept", json={"token": token}, headers=erin)) == (
        409, "invitation_expired")
    assert code(client.post("/billing-invitations/accept", json={"token": "x" * 43}, headers=erin)) == (
        404, "invitation_not_valid")
    assert code(client.post("/billing-invitations/accept", json={"token": "short"}, headers=erin)) == (
        422, "validation_failed")


def test_a_withdrawn_invitation_does_not_work(client: FlaskClient, app: Flask) -> None:
    token = invite(client, app)
    [pending] = client.get(f"/namespaces/{GLOBEX}/billing/managers", headers=auth(ALICE)).json["invitations"]
    withdrawn = client.delete(f"/namespaces/{GLOBEX}/billing/managers/invitations/{pending['id']}",
                              headers=auth(ALICE))
    assert withdrawn.status_code == 204
    assert code(client.post("/billing-invitations/accept", json={"token": token},
                            headers=as_user(ERIN, ERIN_EMAIL))) == (404, "invitation_not_valid")


def test_an_address_the_provider_did_not_verify_does_not_accept(client: FlaskClient, app: Flask) -> None:
    token = invite(client, app)
    now = SystemClock().now()
    unverified = jwt.encode({"sub": str(ERIN), "email": ERIN_EMAIL, "email_verified": False, "iss": ISSUER,
                             "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp())},
                            TEST_SECRET, algorithm="HS256")
    refused = client.post("/billing-invitations/accept", json={"token": token},
                          headers={"Authorization": f"Bearer {unverified}"})
    assert code(refused) == (403, "invitation_for_someone_else")
    assert client.post("/billing-invitations/accept", json={"token": token},
                       headers=as_user(ERIN, ERIN_EMAIL)).status_code == 200  # the link still works once
