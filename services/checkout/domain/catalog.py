"""The catalog: plans, add-ons and packs with list prices, loaded from data."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

CATALOG_FILE = Path(__file__).resolve().parents[1] / "data" / "catalog.toml"


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    unit_amount: int  # cents per seat per term
    purchasable: bool
    rank: int
    features: tuple[str, ...]


@dataclass(frozen=True)
class AddOn:
    id: str
    name: str
    unit_amount: int
    requires_plans: tuple[str, ...]
    features: tuple[str, ...]


@dataclass(frozen=True)
class Pack:
    id: str
    name: str
    unit_amount: int  # cents per pack (per year for a recurring pack)
    recurring: bool
    size: int  # units per pack: 1,000 minutes, 10 GiB
    unit: str
    max_quantity: int  # packs per order


@dataclass(frozen=True)
class Catalog:
    version: str
    currency: str
    term_months: int
    max_seats: int
    max_order_amount: int
    plans: MappingProxyType[str, Plan]
    addons: MappingProxyType[str, AddOn]
    packs: MappingProxyType[str, Pack]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        plans = {
            key: Plan(key, v["name"], int(v["unit_amount"]), bool(v["purchasable"]),
                      int(v["rank"]), tuple(v.get("features", ())))
            for key, v in data["plans"].items()
        }
        addons = {
            key: AddOn(key, v["name"], int(v["unit_amount"]), tuple(v["requires_plans"]),
                       tuple(v.get("features", ())))
            for key, v in data.get("addons", {}).items()
        }
        for addon in addons.values():
            unknown = set(addon.requires_plans) - set(plans)
            if unknown:
                raise ValueError(f"add-on {addon.id} requires unknown plans {sorted(unknown)}")
        packs = {
            key: Pack(key, v["name"], int(v["unit_amount"]), bool(v["recurring"]), int(v["size"]),
                      str(v["unit"]), int(v["max_quantity"]))
            for key, v in data.get("packs", {}).items()
        }
        return cls(str(data["version"]), str(data["currency"]), int(data["term_months"]),
                   int(data["max_seats"]), int(data["max_order_amount"]), MappingProxyType(plans),
                   MappingProxyType(addons), MappingProxyType(packs))

    @classmethod
    def load(cls, path: Path = CATALOG_FILE) -> Catalog:
        with path.open("rb") as fh:
            return cls.from_dict(tomllib.load(fh))

    def features_for(self, plan: str, addons: tuple[str, ...] = ()) -> list[str]:
        features = set(self.plans[plan].features) if plan in self.plans else set()
        for addon in addons:
            if addon in self.addons:
                features.update(self.addons[addon].features)
        return sorted(features)

    def plans_above(self, current: str) -> list[Plan]:
        """What a namespace on `current` can buy: the purchasable plans ranked higher."""
        rank = self.plans[current].rank if current in self.plans else 0
        return sorted((p for p in self.plans.values() if p.purchasable and p.rank > rank),
                      key=lambda p: p.rank)

    def plan_name(self, plan: str) -> str:
        """The plan's name; its id if it has left the catalog."""
        return self.plans[plan].name if plan in self.plans else plan
