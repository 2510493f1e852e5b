"""Managing what was bought: the rules of the customer portal.

Plain Python. Who may do what (Owners and billing managers act; other
members read the plan and the seat counts, never card details), which card
may go, when automatic renewal may be turned back on, and what the seats of a
term add up to. The words and numbers are data/portal.toml's.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from services.checkout.domain.renewal import card_flags
from services.common.errors import Conflict, Forbidden, Invalid

PORTAL_FILE = Path(__file__).resolve().parents[1] / "data" / "portal.toml"


@dataclass(frozen=True)
class PortalRules:
    # reason id -> the words a person picks
    auto_renew_off_reasons: dict[str, str]
    expiring_within_days: int
    invitation_ttl_hours: int

    @classmethod
    def load(cls, path: Path = PORTAL_FILE) -> PortalRules:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        reasons = {str(k): str(v) for k, v in data["auto_renew_off_reasons"].items()}
        if not reasons:
            raise ValueError(f"{path}: auto_renew_off_reasons needs at least one reason")
        return cls(reasons, int(data["cards"]["expiring_within_days"]),
                   int(data["managers"]["invitation_ttl_hours"]))

    def check_reason(self, enabled: bool, reason: str | None) -> str | None:
        """Turning automatic renewal off needs one of the known reasons; on needs none."""
        if enabled:
            return None
        if reason is None:
            raise Invalid("reason_required", "Tell us why",
                          "Say why automatic renewal is turned off: one of "
                          f"{', '.join(self.auto_renew_off_reasons)}.",
                          reasons=list(self.auto_renew_off_reasons))
        if reason not in self.auto_renew_off_reasons:
            raise Invalid("unknown_reason", "Unknown reason",
                          f"{reason!r} is not one of {', '.join(self.auto_renew_off_reasons)}.",
                          reasons=list(self.auto_renew_off_reasons))
        return reason

    def card_marks(self, exp_month: int, exp_year: int, today: date,
                   renewal_date: date | None) -> dict[str, bool]:
        """`expired`, and `expiring`: it ends within the window, or before the renewal it would pay."""
        horizon = today + timedelta(days=self.expiring_within_days)
        if renewal_date is not None and renewal_date > horizon:
            horizon = renewal_date
        flags = card_flags(exp_month, exp_year, today, horizon)
        return {"expired": flags["expired"],
                "expiring": flags["expires_before_renewal"] and not flags["expired"]}


# --- who may do what -------------------------------------------------------------------
OWNER = "owner"


@dataclass(frozen=True)
class BillingRole:
    """The caller's standing on one namespace's billing."""

    role: str | None  # the membership role, None for a billing manager or admin who is not a member
    billing_manager: bool
    admin: bool

    @property
    def can_manage(self) -> bool:
        return self.admin or self.billing_manager or self.role == OWNER

    @property
    def can_read(self) -> bool:
        return self.can_manage or self.role is not None


def require_manager(standing: BillingRole, path: str) -> None:
    if not standing.can_manage:
        raise Forbidden("billing_manager_required", "Owner or billing manager required",
                        f"Only Owners and billing managers of {path} can see and change its billing "
                        "(cards, orders, renewal). Ask an Owner to invite you as a billing manager.")


# --- cards -----------------------------------------------------------------------------
def check_card_removal(is_default: bool, cards_left: int, renewing: list[str]) -> None:
    """The card a renewal will charge can not go: `renewing` names the namespaces whose
    automatic renewal this account pays. Any other card may be removed."""
    if not renewing or not (is_default or cards_left <= 1):
        return
    which = "last card" if cards_left <= 1 else "default card"
    raise Conflict("card_needed_for_renewal", "This card pays for a renewal",
                   f"This is the {which} and the automatic renewal of {', '.join(renewing)} charges it. "
                   "Add another card and make it the default first, or turn automatic renewal off.",
                   renewing=renewing,
                   instead=["add_card_and_make_default", "turn_auto_renew_off"])


# --- automatic renewal ------------------------------------------------------------------
def check_auto_renew_change(enabled: bool, term_end: date, today: date) -> None:
    """Back on only while the term runs: after its end the subscription can be renewed by hand."""
    if enabled and today >= term_end:
        raise Conflict("term_ended", "The term has ended",
                       f"The term ended on {term_end:%B %-d, %Y}; automatic renewal can no longer be "
                       "turned on. Renew now (POST /namespaces/{id}/subscription/renewal) during the "
                       "grace period instead.")
