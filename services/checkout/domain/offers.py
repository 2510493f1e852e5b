"""What the checkout page offers: the seats it starts with and the SMB prompt.

The experiments pick a variation; this module turns a variation into numbers
and words from data/offers.toml, so the page and the API say the same thing.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from services.checkout.domain.pricing import minimum_seats

OFFERS_FILE = Path(__file__).resolve().parents[1] / "data" / "offers.toml"
BILLABLE, BILLABLE_PLUS_HEADROOM = "billable", "billable_plus_20"


@dataclass(frozen=True)
class SmbPrompt:
    code: str
    headline: str
    body: str


@dataclass(frozen=True)
class OfferRules:
    seat_headroom: float
    smb_prompt: SmbPrompt

    @classmethod
    def load(cls, path: Path = OFFERS_FILE) -> OfferRules:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        headroom = float(data["default_seats"]["headroom"])
        if not 0 <= headroom <= 1:
            raise ValueError(f"{path}: default_seats.headroom must be between 0 and 1")
        return cls(seat_headroom=headroom, smb_prompt=SmbPrompt(**data["smb_prompt"]))


def default_seats(rules: OfferRules, billable_members: int, variation: object) -> int:
    """Seats the page starts with: the minimum, or the minimum plus headroom
    (rounded up: 1 billable member with 20% headroom is offered 2 seats)."""
    minimum = minimum_seats(billable_members)
    if variation == BILLABLE_PLUS_HEADROOM:
        return math.ceil(minimum * (1 + rules.seat_headroom))
    return minimum


def seat_minimum(path: str, billable_members: int, seats_held: int = 0) -> tuple[int, str]:
    """The fewest seats a buyer can choose, and why: every billable member needs
    one, and an upgrade keeps the seats already paid for (pricing._upgrade_lines)."""
    minimum = minimum_seats(billable_members)
    if seats_held > minimum:
        return seats_held, f"{path} has {seats_held} seats already, and an upgrade keeps them."
    if billable_members <= 1:
        return minimum, "Every subscription has at least one seat."
    return minimum, f"{path} has {billable_members} billable members, and each one needs a seat."
