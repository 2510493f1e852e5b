"""Billing managers: an Owner invites a person by email to manage a namespace's
billing (cards, orders, renewal); the invited person accepts with the link; the
Owner removes them. Every change is audited and tracked.

The link carries a random 256-bit token; only its SHA-256 is kept, so neither a
leaked database nor a guess makes a working link. It expires
(`invitation_ttl_hours`, data/portal.toml) and works once: accepting is a
conditional UPDATE of an unaccepted, unrevoked, unexpired row.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from contracts import events
from funnel.telemetry import Step
from identity.auth import Principal, verified_email_matches
from services.checkout.adapters.models import BillingInvitation, BillingManager, Namespace
from services.checkout.domain.portal import OWNER
from services.checkout.runtime import Checkout
from services.checkout.usecases import access
from services.checkout.usecases.audit import audit
from services.common.errors import Conflict, Forbidden, NotFound, not_found
from services.common.service import ServiceUnitOfWork

INVITATION_NOT_VALID = NotFound("invitation_not_valid", "Invitation not valid",
                                "This invitation link is not valid: it was withdrawn or never existed. "
                                "Ask an Owner for a new one.")
INVITATION_USED = Conflict("invitation_used", "Invitation already used",
                           "This invitation link was used already; each link works once. "
                           "Ask an Owner for a new one.")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _require_owner(role: str | None, admin: bool, path: str) -> None:
    if role != OWNER and not admin:
        raise Forbidden("not_owner", "Owner role required",
                        f"Only Owners of {path} can invite or remove billing managers.")


def invite(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
           email: str) -> dict[str, Any]:
    with uow:
        namespace, standing = access.load_for_billing(uow.session, namespace_id, principal, lock=True)
        _require_owner(standing.role, standing.admin, namespace.path)
        email = email.strip().lower()
        token = secrets.token_urlsafe(32)
        invitation = BillingInvitation(
            namespace_id=namespace_id, email=email, token_hash=_digest(token), invited_by=principal.user_id,
            expires_at=uow.now + timedelta(hours=app.portal.invitation_ttl_hours), created_at=uow.now)
        uow.session.add(invitation)
        uow.session.flush()
        invited: events.ManagerInvited = {
            "invitation_id": invitation.id, "namespace_id": namespace_id, "namespace_path": namespace.path,
            "email": email, "invited_by_email": principal.email,
            # In the query string: access logs keep the path only, so the token stays out of them.
            "accept_url": f"{app.billing_url()}/invitation?token={token}",
            "expires_at": invitation.expires_at.isoformat()}
        uow.publish("billing.manager_invited", invited)
        audit(uow, principal, "manager_invited", namespace_id=namespace_id, email=email,
              invitation_id=invitation.id)
        uow.track(Step.MANAGER_INVITED, user_id=principal.user_id, namespace_id=namespace_id)
        uow.commit()
        return _invitation_view(invitation)


def _invitation_view(invitation: BillingInvitation) -> dict[str, Any]:
    return {"id": invitation.id, "email": invitation.email, "expires_at": invitation.expires_at.isoformat(),
            "created_at": invitation.created_at.isoformat()}


def describe_invitation(uow: ServiceUnitOfWork, token: str) -> dict[str, Any]:
    """What an invitation link is for, before it is accepted (for its page)."""
    with uow:
        found = uow.session.execute(
            select(BillingInvitation, Namespace.path)
            .join(Namespace, Namespace.id == BillingInvitation.namespace_id)
            .where(BillingInvitation.token_hash == _digest(token))).first()
        if found is None or found[0].revoked_at:
            raise INVITATION_NOT_VALID
        if found[0].accepted_at:
            raise INVITATION_USED
        invitation, path = found
        return {**_invitation_view(invitation), "namespace_id": invitation.namespace_id,
                "namespace_path": path, "expired": invitation.expires_at <= uow.now}


def accept(uow: ServiceUnitOfWork, principal: Principal, token: str) -> dict[str, Any]:
    """The signed-in person named by the invitation becomes a billing manager, once."""
    with uow:
        invitation = uow.session.scalar(select(BillingInvitation).where(
            BillingInvitation.token_hash == _digest(token)))
        if invitation is None or invitation.revoked_at is not None:
            raise INVITATION_NOT_VALID
        if invitation.accepted_at is not None:
            raise INVITATION_USED
        if invitation.expires_at <= uow.now:
            raise Conflict("invitation_expired", "Invitation expired",
                           f"This invitation expired on {invitation.expires_at:%B %-d, %Y}. "
                           "Ask an Owner for a new one.")
        if not verified_email_matches(principal, invitation.email):  # the provider must vouch for it
            raise Forbidden("invitation_for_someone_else", "Invitation for someone else",
                            f"This invitation is for {invitation.email}; sign in as that person, "
                            "with that address verified by your sign-in provider.")
        taken = uow.session.execute(
            update(BillingInvitation).where(BillingInvitation.id == invitation.id,
                                            BillingInvitation.accepted_at.is_(None))
            .values(accepted_at=uow.now, accepted_by=principal.user_id))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise INVITATION_USED  # accepted by a concurrent click
        namespace_id = invitation.namespace_id
        if uow.session.get(BillingManager, (namespace_id, principal.user_id)) is None:
            uow.session.add(BillingManager(namespace_id=namespace_id, user_id=principal.user_id,
                                           email=principal.email, invited_by=invitation.invited_by,
                                           created_at=uow.now))
        audit(uow, principal, "manager_joined", namespace_id=namespace_id, invitation_id=invitation.id)
        uow.track(Step.MANAGER_JOINED, user_id=principal.user_id, namespace_id=namespace_id)
        uow.commit()
        return {"namespace_id": namespace_id}


def list_managers(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> dict[str, Any]:
    with uow:
        access.load_for_billing(uow.session, namespace_id, principal, manage=True)
        managers = uow.session.scalars(select(BillingManager)
                                       .where(BillingManager.namespace_id == namespace_id)
                                       .order_by(BillingManager.created_at))
        pending = uow.session.scalars(select(BillingInvitation).where(
            BillingInvitation.namespace_id == namespace_id, BillingInvitation.accepted_at.is_(None),
            BillingInvitation.revoked_at.is_(None), BillingInvitation.expires_at > uow.now)
            .order_by(BillingInvitation.id))
        return {"managers": [{"user_id": m.user_id, "email": m.email, "since": m.created_at.isoformat()}
                             for m in managers],
                "invitations": [_invitation_view(i) for i in pending]}


def remove(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int, user_id: int) -> None:
    with uow:
        namespace, standing = access.load_for_billing(uow.session, namespace_id, principal, lock=True)
        _require_owner(standing.role, standing.admin, namespace.path)
        manager = uow.session.get(BillingManager, (namespace_id, user_id))
        if manager is None:
            raise not_found("billing_manager", user_id)
        uow.session.delete(manager)
        audit(uow, principal, "manager_removed", namespace_id=namespace_id, user_id=user_id,
              email=manager.email)
        uow.track(Step.MANAGER_REMOVED, user_id=principal.user_id, namespace_id=namespace_id)
        uow.commit()


def withdraw(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int, invitation_id: int) -> None:
    with uow:
        namespace, standing = access.load_for_billing(uow.session, namespace_id, principal, lock=True)
        _require_owner(standing.role, standing.admin, namespace.path)
        invitation = uow.session.get(BillingInvitation, invitation_id)
        if invitation is None or invitation.namespace_id != namespace_id or invitation.accepted_at:
            raise not_found("invitation", invitation_id)
        invitation.revoked_at = invitation.revoked_at or uow.now
        audit(uow, principal, "invitation_withdrawn", namespace_id=namespace_id, invitation_id=invitation_id)
        uow.commit()
