"""Every discount rule and rejection, as a pure function."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.checkout.domain.catalog import Catalog
from services.checkout.domain.discounts import (
    BULK_ALPHABET,
    Buyer,
    CampaignRules,
    CampaignStatus,
    CodeState,
    DiscountType,
    apply,
    check,
    describe,
    discount_amounts,
    generate_code,
    is_well_formed,
    normalise_code,
    validate_rules,
)
from services.checkout.domain.pricing import (
    AddOnSelection,
    NamespaceFacts,
    Selection,
    assemble_quote,
    price_lines,
)

CATALOG = Catalog.load()
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
NS = NamespaceFacts(100, True, "free", 1)
SMB = CampaignRules(name="SMB", discount_type=DiscountType.UNIT_PRICE, value=1900, applies_to=("premium",),
                    max_redemptions=50, once_per_namespace=True, once_per_billing_account=True,
                    new_customers_only=True, max_seats=50, card_only=True)


def lines(plan: str = "premium", seats: int = 10, addons: tuple[AddOnSelection, ...] = ()) -> list:
    return price_lines(CATALOG, Selection(plan, seats, addons), NS)


def state(rules: CampaignRules = SMB, **changes: object) -> CodeState:
    base = CodeState(code="SMB2026", status=CampaignStatus.ACTIVE, campaign_redeemed=0,
                     code_max_redemptions=None, code_redeemed=0, rules=rules)
    return replace(base, **changes)  # type: ignore[arg-type]


def buyer(**changes: object) -> Buyer:
    base = Buyer(now=NOW, plan="premium", seats=10, is_new_customer=True, namespace_redeemed=False,
                 account_redeemed=False, payment_method="card")
    return replace(base, **changes)  # type: ignore[arg-type]


def reason(s: CodeState | None = None, b: Buyer | None = None, ls: list | None = None) -> str | None:
    rejection = check(s if s is not None else state(), b or buyer(), ls if ls is not None else lines())
    return rejection.reason if rejection else None


def test_the_smb_offer_applies_to_a_new_premium_customer() -> None:
    assert reason() is None
    applied = apply(state(), lines(seats=10))
    # $29 -> $19 per user per month for 12 months: $120 off per seat.
    assert applied.amounts == {"premium": 10 * 12000}
    assert applied.first_term_only
    quote = assemble_quote(CATALOG, Selection("premium", 10), NS, NOW.date(), applied)
    assert quote.total == 10 * 1900 * 12


def test_unknown_code() -> None:
    rejection = check(None, buyer(), lines())
    assert rejection and rejection.reason == "code_unknown"


@pytest.mark.parametrize("status,expected", [(CampaignStatus.PAUSED, "campaign_paused"),
                                             (CampaignStatus.ENDED, "campaign_ended")])
def test_campaign_status(status: CampaignStatus, expected: str) -> None:
    assert reason(state(status=status)) == expected


def test_validity_window_edges() -> None:
    window = replace(SMB, valid_from=NOW, valid_until=datetime(2026, 12, 1, tzinfo=UTC))
    assert reason(state(window), buyer(now=NOW)) is None
    assert reason(state(window), buyer(now=datetime(2026, 11, 21, 11, 59, tzinfo=UTC))) == "code_not_started"
    assert reason(state(window), buyer(now=datetime(2026, 12, 1, tzinfo=UTC))) == "code_expired"


def test_exhausted_by_campaign_cap_or_single_use_code() -> None:
    assert reason(state(campaign_redeemed=49)) is None
    assert reason(state(campaign_redeemed=50)) == "code_exhausted"
    assert reason(state(code_max_redemptions=1, code_redeemed=1)) == "code_exhausted"
    unlimited = replace(SMB, max_redemptions=None)
    assert reason(state(unlimited, campaign_redeemed=10**6)) is None


def test_plan_not_eligible() -> None:
    assert reason(b=buyer(plan="ultimate"), ls=lines("ultimate")) == "plan_not_eligible"


def test_addon_only_codes_need_the_addon() -> None:
    duo = replace(SMB, applies_to=("duo_pro",), discount_type=DiscountType.PERCENT, value=50,
                  new_customers_only=False)
    assert reason(state(duo)) == "plan_not_eligible"
    with_duo = lines(addons=(AddOnSelection("duo_pro", 3),))
    assert reason(state(duo), ls=with_duo) is None
    assert discount_amounts(duo, with_duo) == {"duo_pro": 3 * 22800 // 2}


@pytest.mark.parametrize("seats,expected", [(50, None), (51, "too_many_seats")])
def test_max_seats(seats: int, expected: str | None) -> None:
    assert reason(b=buyer(seats=seats), ls=lines(seats=seats)) == expected


def test_min_seats() -> None:
    rules = replace(SMB, min_seats=5)
    assert reason(state(rules), buyer(seats=4), lines(seats=4)) == "too_few_seats"


def test_new_customers_only() -> None:
    assert reason(b=buyer(is_new_customer=False)) == "not_a_new_customer"
    open_to_all = replace(SMB, new_customers_only=False)
    assert reason(state(open_to_all), buyer(is_new_customer=False)) is None


def test_once_per_namespace_and_per_account() -> None:
    assert reason(b=buyer(namespace_redeemed=True)) == "already_redeemed"
    assert reason(b=buyer(account_redeemed=True)) == "already_redeemed"
    per_namespace_only = replace(SMB, once_per_billing_account=False)
    assert reason(state(per_namespace_only), buyer(account_redeemed=True)) is None


def test_minimum_amount_counts_eligible_lines() -> None:
    rules = replace(SMB, min_amount=5 * 34800)
    assert reason(state(rules), buyer(seats=4), lines(seats=4)) == "below_minimum_amount"
    assert reason(state(rules), buyer(seats=5), lines(seats=5)) is None


def test_card_only() -> None:
    assert reason(b=buyer(payment_method="invoice")) == "card_payment_only"


def test_rules_are_checked_in_a_useful_order() -> None:
    # Paused beats everything else the buyer might also break.
    everything_wrong = buyer(plan="ultimate", seats=99, is_new_customer=False, namespace_redeemed=True)
    assert reason(state(status=CampaignStatus.PAUSED), everything_wrong, lines("ultimate", 99)) == "campaign_paused"
    assert reason(state(campaign_redeemed=50), everything_wrong, lines("ultimate", 99)) == "code_exhausted"


def test_percent_rounds_to_the_cent_and_amount_spreads_over_lines() -> None:
    pct = replace(SMB, discount_type=DiscountType.PERCENT, value=33)
    assert discount_amounts(pct, lines(seats=1)) == {"premium": 11484}  # 34800 * 0.33
    fixed = replace(SMB, discount_type=DiscountType.AMOUNT, value=50_000, applies_to=("premium", "duo_pro"))
    two = lines(seats=1, addons=(AddOnSelection("duo_pro", 1),))
    assert discount_amounts(fixed, two) == {"premium": 34800, "duo_pro": 15200}


def test_unit_price_above_list_gives_nothing() -> None:
    dear = replace(SMB, value=5000)
    assert discount_amounts(dear, lines(seats=2)) == {"premium": 0}


@pytest.mark.parametrize("raw,normal,ok", [
    ("  smb2026 ", "SMB2026", True),
    ("Summit-ABCD-EFGH-JKMN", "SUMMIT-ABCD-EFGH-JKMN", True),
    ("ＳＭＢ２０２６", "ＳＭＢ２０２６", False),          # full-width look-alikes
    ("SМB2026", "SМB2026", False),                  # Cyrillic М
    ("SMB\u200b2026", "SMB\u200b2026", False),      # zero-width space
    ("' OR 1=1 --", "' OR 1=1 --", False),
    ("x" * 10_000, "X" * 10_000, False),
    ("AB", "AB", False),
    ("-LEADINGDASH", "-LEADINGDASH", False),
])
def test_normalising_and_well_formedness(raw: str, normal: str, ok: bool) -> None:
    assert normalise_code(raw) == normal
    assert is_well_formed(normalise_code(raw)) is ok


def test_generated_codes_are_readable_and_unguessable() -> None:
    codes = {generate_code("SUMMIT") for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        prefix, *groups = code.split("-")
        assert prefix == "SUMMIT" and len(groups) == 3
        assert all(len(g) == 4 and set(g) <= set(BULK_ALPHABET) for g in groups)
        assert is_well_formed(code)
    assert not set("01OIL") & set(BULK_ALPHABET)


@pytest.mark.parametrize("change,message", [
    ({"discount_type": DiscountType.PERCENT, "value": 101}, "between 1 and 100"),
    ({"applies_to": ()}, "Say which"),
    ({"applies_to": ("platinum",)}, "Unknown plans"),
    ({"valid_from": NOW, "valid_until": NOW}, "before"),
    ({"min_seats": 10, "max_seats": 5}, "min_seats"),
])
def test_invalid_campaigns_are_explained(change: dict, message: str) -> None:
    known = set(CATALOG.plans) | set(CATALOG.addons)
    assert validate_rules(SMB, known) is None
    problem = validate_rules(replace(SMB, **change), known)
    assert problem and message in problem


def test_descriptions() -> None:
    assert describe(SMB) == "$19.00 per user per month for the first year"
    assert describe(replace(SMB, discount_type=DiscountType.PERCENT, value=20, first_term_only=False)) \
        == "20% off every year"
