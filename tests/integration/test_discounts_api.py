"""Discount codes through the HTTP API: admins run campaigns, prospects apply codes."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import DiscountCampaign, DiscountCode, FunnelEventRow
from services.checkout.adapters.ratelimit import AttemptLimiter
from tests.support import auth

ADMIN = auth(9, roles=("admin",))
ALICE, FRANK = 1, 5

CAMPAIGN = {"name": "Spring", "kind": "shared", "code": "spring-26", "discount_type": "percent",
            "value": 25, "applies_to": ["premium", "ultimate"], "max_redemptions": 3}


def quote(client: FlaskClient, code: str | None, user: int = ALICE, **body: Any) -> Any:
    payload = {"namespace_id": 100, "plan": "premium", "seats": 5, "discount_code": code, **body}
    return client.post("/quotes", json=payload, headers=auth(user))


def steps(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return [(r.step, r.properties) for r in s.scalars(select(FunnelEventRow).order_by(FunnelEventRow.id))]


def test_smb_code_shows_discounted_lines(client: FlaskClient, app: Flask) -> None:
    body = quote(client, "  smb2026 ").json
    assert body["code_result"] == {"code": "SMB2026", "applied": True, "reason": None, "message": None}
    [line] = body["lines"]
    assert (line["amount"], line["discount"], line["net"]) == (174000, 60000, 114000)
    assert body["total"] == 5 * 1900 * 12 and body["discount_code"] == "SMB2026"
    assert [s for s, _ in steps(app)] == ["code_applied", "plan_chosen"]


@pytest.mark.parametrize("body,reason", [
    ({"plan": "ultimate"}, "plan_not_eligible"),
    ({"seats": 51}, "too_many_seats"),
])
def test_smb_rejections_keep_the_list_price_and_say_why(client: FlaskClient, app: Flask,
                                                        body: dict[str, Any], reason: str) -> None:
    response = quote(client, "SMB2026", **body)
    assert response.status_code == 200
    assert response.json["code_result"]["reason"] == reason
    assert response.json["code_result"]["message"]
    assert response.json["discount_total"] == 0
    assert ("code_rejected", {"code": "SMB2026", "reason": reason, "campaign_id": 1}) in steps(app)


def test_existing_customers_are_not_new_and_upgrades_take_no_codes(client: FlaskClient, app: Flask) -> None:
    from datetime import date

    from services.checkout.adapters.models import Order

    client.post("/admin/campaigns", headers=ADMIN, json={**CAMPAIGN, "code": "NEW-ONLY", "name": "New",
                                                         "new_customers_only": True})
    # globex already pays for Premium: its upgrade is priced, the code refused.
    upgrade = quote(client, "NEW-ONLY", namespace_id=200, plan="ultimate", seats=5)
    assert upgrade.status_code == 200 and upgrade.json["upgrades_subscription_id"] is not None
    assert upgrade.json["code_result"]["reason"] == "not_for_upgrades"
    assert upgrade.json["discount_total"] == 0
    # An account that paid before is not new, whichever namespace it buys for.
    with Session(app.extensions["checkout"].ctx.engine) as s:
        s.add(Order(billing_account_id=1, namespace_id=200, user_id=ALICE, plan="premium", seats=5,
                    currency="usd", subtotal=100, discount_total=0, total=100, lines=[], catalog_version="x",
                    term_start=date(2025, 1, 1), term_end=date(2026, 1, 1), status="completed",
                    created_at=app.extensions["checkout"].ctx.clock.now()))
        s.commit()
    assert quote(client, "NEW-ONLY").json["code_result"]["reason"] == "not_a_new_customer"


@pytest.mark.parametrize("code,reason", [
    ("NOPE2026", "code_unknown"),
    ("ＳＭＢ２０２６", "code_malformed"),
    ("SMB\u200b2026", "code_malformed"),
    ("'; DROP TABLE discount_codes; --", "code_malformed"),
])
def test_unknown_and_tricky_codes_are_rejected_cleanly(client: FlaskClient, app: Flask, code: str,
                                                       reason: str) -> None:
    response = quote(client, code)
    assert response.status_code == 200 and response.json["code_result"]["reason"] == reason
    with Session(app.extensions["checkout"].ctx.engine) as s:
        assert s.scalar(select(func.count()).select_from(DiscountCode)) == 26  # seeded, untouched


def test_a_ten_kilobyte_code_is_a_validation_error(client: FlaskClient) -> None:
    response = quote(client, "A" * 10_240)
    assert response.status_code == 422 and "discount_code" in response.json["errors"]["json"]


def test_admin_creates_a_shared_campaign_and_prospects_use_it(client: FlaskClient) -> None:
    created = client.post("/admin/campaigns", json=CAMPAIGN, headers=ADMIN)
    assert created.status_code == 201, created.json
    assert (created.json["code"], created.json["status"], created.json["remaining_uses"]) == ("SPRING-26", "active", 3)
    assert created.json["description"] == "25% off for the first year"
    body = quote(client, "Spring-26").json
    assert body["discount_total"] == 174000 // 4 and body["code_result"]["applied"]
    dupe = client.post("/admin/campaigns", json={**CAMPAIGN, "name": "Other"}, headers=ADMIN)
    assert dupe.status_code == 409 and dupe.json["code"] == "code_taken"


def test_admin_lifecycle_pause_resume_end(client: FlaskClient) -> None:
    cid = client.post("/admin/campaigns", json=CAMPAIGN, headers=ADMIN).json["id"]
    assert client.post(f"/admin/campaigns/{cid}/pause", headers=ADMIN).json["status"] == "paused"
    assert quote(client, "SPRING-26").json["code_result"]["reason"] == "code_unknown"
    again = client.post(f"/admin/campaigns/{cid}/pause", headers=ADMIN)
    assert again.status_code == 409 and again.json["code"] == "invalid_transition"
    assert client.post(f"/admin/campaigns/{cid}/resume", headers=ADMIN).json["status"] == "active"
    assert quote(client, "SPRING-26").json["code_result"]["applied"]
    assert client.post(f"/admin/campaigns/{cid}/end", headers=ADMIN).json["status"] == "ended"
    assert quote(client, "SPRING-26").json["code_result"]["reason"] == "code_unknown"
    assert client.post(f"/admin/campaigns/{cid}/resume", headers=ADMIN).status_code == 409
    # The admin report keeps the exact reasons the buyers were not told.
    report = client.get(f"/admin/campaigns/{cid}", headers=ADMIN).json
    assert report["rejections"] == {"campaign_ended": 1, "campaign_paused": 1}


def test_unknown_paused_and_ended_codes_read_alike_to_a_buyer(client: FlaskClient) -> None:
    """An outsider can not tell which codes exist: same reason, same words."""
    cid = client.post("/admin/campaigns", json=CAMPAIGN, headers=ADMIN).json["id"]
    unknown = quote(client, "NOPE-2026").json["code_result"]
    client.post(f"/admin/campaigns/{cid}/pause", headers=ADMIN)
    paused = quote(client, "SPRING-26").json["code_result"]
    client.post(f"/admin/campaigns/{cid}/end", headers=ADMIN)
    ended = quote(client, "SPRING-26").json["code_result"]
    answers = {(r["reason"], r["message"], r["applied"]) for r in (unknown, paused, ended)}
    assert answers == {("code_unknown", "This code isn't valid: it may be mistyped, or the offer may have ended.", False)}


def test_bulk_campaign_exports_unique_single_use_codes_as_csv(client: FlaskClient) -> None:
    created = client.post("/admin/campaigns", headers=ADMIN, json={
        "name": "Meetup", "kind": "bulk", "code_count": 200, "code_prefix": "meet",
        "discount_type": "amount", "value": 10_000, "applies_to": ["premium"]}).json
    assert created["codes"] == 200 and created["remaining_uses"] == 200 and created["code"] is None
    export = client.get(f"/admin/campaigns/{created['id']}/codes.csv", headers=ADMIN)
    assert export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(rows) == 200 and len({r["code"] for r in rows}) == 200
    assert all(r["code"].startswith("MEET-") and r["max_redemptions"] == "1" for r in rows)
    assert quote(client, rows[0]["code"].lower()).json["discount_total"] == 10_000


@pytest.mark.parametrize("change,code", [
    ({"discount_type": "percent", "value": 150}, "invalid_campaign"),
    ({"applies_to": ["platinum"]}, "invalid_campaign"),
    ({"code": "no spaces"}, "code_malformed"),
    ({"kind": "bulk", "code": None}, "invalid_campaign"),  # no code_count
])
def test_bad_campaigns_are_refused_and_nothing_is_written(client: FlaskClient, app: Flask,
                                                          change: dict[str, Any], code: str) -> None:
    response = client.post("/admin/campaigns", json={**CAMPAIGN, **change}, headers=ADMIN)
    assert response.status_code == 422 and response.json["code"] == code
    with Session(app.extensions["checkout"].ctx.engine) as s:
        assert s.scalar(select(func.count()).select_from(DiscountCampaign)) == 2  # the seeded ones


def test_only_admins_manage_campaigns(client: FlaskClient) -> None:
    for method, path in [("get", "/admin/campaigns"), ("post", "/admin/campaigns/1/pause"),
                         ("get", "/admin/campaigns/1/codes.csv"), ("get", "/admin/campaigns/1")]:
        response = getattr(client, method)(path, headers=auth(ALICE))
        assert response.status_code == 403 and response.json["code"] == "admin_required"
    assert client.post("/admin/campaigns", json=CAMPAIGN, headers=auth(ALICE)).status_code == 403
    assert client.get("/admin/campaigns/999", headers=ADMIN).json["code"] == "campaign_not_found"


def test_seeded_campaigns_are_listed_with_their_numbers(client: FlaskClient) -> None:
    listed = {c["name"]: c for c in client.get("/admin/campaigns", headers=ADMIN).json}
    smb = listed["SMB 2026"]
    assert smb["code"] == "SMB2026" and smb["remaining_uses"] == 500 and smb["redemptions"] == 0
    assert smb["revenue"] == {"list_price": 0, "discount_given": 0, "collected": 0}
    assert listed["DevOps Summit 2026"]["codes"] == 25


def test_code_guessing_is_rate_limited_per_account(app: Flask, client: FlaskClient) -> None:
    app.extensions["checkout"].code_attempts = AttemptLimiter("memory://", "100/minute", "3/minute")
    for _ in range(3):
        assert quote(client, "GUESS-1").status_code == 200
    limited = quote(client, "GUESS-2")
    assert limited.status_code == 429 and limited.json["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Quotes without a code are not attempts; another account still has its budget.
    assert quote(client, None).status_code == 200
    assert quote(client, "GUESS-3", user=FRANK).status_code == 200


def test_code_guessing_is_rate_limited_per_client(app: Flask, client: FlaskClient) -> None:
    app.extensions["checkout"].code_attempts = AttemptLimiter("memory://", "2/minute", "100/minute")
    quote(client, "A-GUESS")
    quote(client, "B-GUESS", user=FRANK)
    assert quote(client, "C-GUESS", user=FRANK).status_code == 429


def test_rate_limits_can_live_in_redis() -> None:
    limiter = AttemptLimiter("redis://127.0.0.1:6379/15", "2/minute", "100/minute")
    try:
        limiter.ping()
    except Exception:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    client = f"test-{id(limiter)}"
    limiter.hit(client=client, account="a")
    limiter.hit(client=client, account="b")
    with pytest.raises(Exception, match="Too many"):
        limiter.hit(client=client, account="c")


def test_a_dead_counter_store_does_not_block_checkout(app: Flask, client: FlaskClient) -> None:
    app.extensions["checkout"].code_attempts = AttemptLimiter("redis://127.0.0.1:9/0", "1/minute", "1/minute")
    for _ in range(3):
        assert quote(client, "SMB2026").status_code == 200


def _statements(app: Flask, client: FlaskClient, code: str) -> int:
    engine = app.extensions["checkout"].ctx.engine
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert quote(client, code).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_unknown_exhausted_and_valid_codes_do_the_same_database_work(app: Flask, client: FlaskClient) -> None:
    """Equal work means equal time: the answer's timing tells a guesser nothing."""
    client.post("/admin/campaigns", headers=ADMIN, json={**CAMPAIGN, "code": "GONE-26", "name": "Gone",
                                                         "max_redemptions": 1})
    with Session(app.extensions["checkout"].ctx.engine) as s:
        s.query(DiscountCampaign).filter_by(name="Gone").update({"redeemed_count": 1})
        s.commit()
    quote(client, None)  # warm: the person's variations are cached after their first request
    unknown = _statements(app, client, "NOSUCH-CODE")
    exhausted = _statements(app, client, "GONE-26")
    valid = _statements(app, client, "SPRING-XX")  # unknown too, sanity
    applied = _statements(app, client, "SMB2026")
    assert unknown == exhausted == valid == applied
