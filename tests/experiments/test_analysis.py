"""The funnel counts (SQL, on SQLite and PostgreSQL) and the statistics on them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic
from gbstats.utils import check_srm
from sqlalchemy.engine import Engine

from experiments.analysis import ExperimentReport, analyse
from experiments.definitions import STOPPED, ExperimentDefinition
from experiments.metrics import ExperimentMetrics, FunnelStep
from tests.experiments.helpers import CHECKOUT_FUNNEL, T0, EventWriter, days, fifty_fifty, user_metrics

SECOND = timedelta(seconds=1)


def reached(report: ExperimentReport, variation: int) -> list[int]:
    return [s.units for s in report.variations[variation].steps]


# --- known counts -------------------------------------------------------------------
# (units, chose a plan, added a card, purchased) per variation, written unit by unit.
KNOWN = {0: (400, 120, 60, 30), 1: (410, 150, 82, 45)}


@pytest.fixture
def known_report(writer: EventWriter, store: Engine) -> ExperimentReport:
    unit = 0
    for variation, (units, chose, card, bought) in KNOWN.items():
        for i in range(units):
            unit += 1
            at = T0 + timedelta(minutes=unit)
            writer.exposure(unit, variation, at)
            if i < chose:
                writer.add("plan_chosen", at + timedelta(minutes=1), user=unit, namespace=1000 + unit)
            if i < card:
                writer.add("card_captured", at + timedelta(minutes=2), user=unit)
            if i < bought:
                writer.add("purchase_completed", at + timedelta(hours=3), user=unit, namespace=1000 + unit)
    writer.save()
    return analyse(store, user_metrics(), fifty_fifty())


def test_counts_and_rates_are_the_hand_computed_ones(known_report: ExperimentReport) -> None:
    for variation, (units, *steps) in KNOWN.items():
        result = known_report.variations[variation]
        assert result.units == units
        assert [s.units for s in result.steps] == steps
        assert [s.rate for s in result.steps] == pytest.approx([n / units for n in steps])
    assert [v.name for v in known_report.variations] == ["Control", "Treatment"]
    assert known_report.exposed_units == 810
    assert known_report.multi_variant_units == 0


def test_uplift_p_value_and_chance_to_win_are_gbstats_own(known_report: ExperimentReport) -> None:
    (n_a, *control), (n_b, *treatment) = KNOWN[0], KNOWN[1]
    assert len(known_report.comparisons) == 3
    for comparison, a, b in zip(known_report.comparisons, control, treatment, strict=True):
        stat_a, stat_b = ProportionStatistic(n=n_a, sum=a), ProportionStatistic(n=n_b, sum=b)
        frequentist = TwoSidedTTest(stat_a, stat_b, FrequentistConfig()).compute_result()
        bayesian = EffectBayesianABTest(stat_a, stat_b, EffectBayesianConfig()).compute_result()
        assert comparison.uplift == pytest.approx((b / n_b - a / n_a) / (a / n_a))
        assert comparison.uplift == pytest.approx(frequentist.expected)
        assert (comparison.ci_low, comparison.ci_high) == pytest.approx(tuple(frequentist.ci))
        assert comparison.p_value == pytest.approx(frequentist.p_value)
        assert comparison.chance_to_win == pytest.approx(bayesian.chance_to_win)
        assert comparison.note is None
    assert known_report.srm_p_value == pytest.approx(check_srm([400, 410], [0.5, 0.5]))
    assert not known_report.srm_warning


# --- what counts ------------------------------------------------------------------
def test_a_step_after_the_window_is_not_counted(writer: EventWriter, store: Engine) -> None:
    writer.exposure(1, 0)
    writer.add("plan_chosen", T0 + days(7), user=1)  # on the edge: counted
    writer.exposure(2, 0)
    writer.add("plan_chosen", T0 + days(7) + SECOND, user=2)  # a second late
    writer.exposure(3, 0, T0)
    writer.exposure(3, 0, T0 + days(5))  # a later exposure does not restart the window
    writer.add("plan_chosen", T0 + days(8), user=3)
    writer.save()
    assert reached(analyse(store, user_metrics(window_days=7), fifty_fifty()), 0) == [1, 0, 0]


def test_card_first_buyers_count_as_purchased(writer: EventWriter, store: Engine) -> None:
    """Issue 18: 8 of 8 new customers who saved a card before choosing a plan
    were counted at "Chose a plan" and never at "Added a card" or "Purchased".
    The quote exposes them and records the plan in one request, so the card
    they saved first predates the exposure."""
    for user in range(1, 9):
        writer.add("card_captured", T0 - SECOND, user=user)
        writer.exposure(user, 0, T0)
        writer.add("plan_chosen", T0, user=user, namespace=100 + user)
        writer.add("purchase_completed", T0 + SECOND, user=user, namespace=100 + user, total=2900)
    for user in range(9, 13):  # a card saved after the exposure but before the plan counts too
        writer.exposure(user, 0, T0)
        writer.add("card_captured", T0 + SECOND, user=user)
        writer.add("plan_chosen", T0 + 2 * SECOND, user=user, namespace=100 + user)
        writer.add("purchase_completed", T0 + 3 * SECOND, user=user, namespace=100 + user, total=2900)
    writer.save()
    assert reached(analyse(store, user_metrics(), fifty_fifty()), 0) == [12, 4, 12]


def test_a_strict_step_needs_the_previous_one_and_nothing_counts_before_the_exposure(
        writer: EventWriter, store: Engine) -> None:
    strict = (CHECKOUT_FUNNEL[0], FunnelStep("card_captured", "Card after plan", after="previous"))
    writer.exposure(1, 0, T0)
    writer.add("card_captured", T0 + SECOND, user=1)  # before choosing a plan: not "after the plan"
    writer.add("plan_chosen", T0 + 2 * SECOND, user=1)
    writer.add("plan_chosen", T0 - SECOND, user=2)  # before the exposure
    writer.exposure(2, 0, T0)
    writer.exposure(3, 0, T0)  # the whole funnel in the exposure's own request: all in order
    for step in ("plan_chosen", "card_captured"):
        writer.add(step, T0, user=3)
    writer.save()
    assert reached(analyse(store, user_metrics(steps=strict), fifty_fifty()), 0) == [2, 1]


def test_synthetic_traffic_is_left_out_and_demo_traffic_counts(writer: EventWriter, store: Engine) -> None:
    writer.exposure(1, 0, traffic="synthetic")  # a load test user: not in the experiment
    writer.add("plan_chosen", T0 + SECOND, user=1)
    writer.exposure(2, 0)
    writer.add("plan_chosen", T0 + SECOND, user=2, traffic="synthetic")  # a synthetic step: not counted
    writer.exposure(3, 1, traffic="demo")
    writer.add("plan_chosen", T0 + SECOND, user=3, traffic="demo")
    writer.save()
    report = analyse(store, user_metrics(), fifty_fifty())
    assert [v.units for v in report.variations] == [1, 1]
    assert reached(report, 0)[0] == 0 and reached(report, 1)[0] == 1


def test_a_unit_seen_in_two_variations_counts_once_in_its_first_and_is_flagged(
        writer: EventWriter, store: Engine) -> None:
    writer.exposure(1, 1, T0, service="checkout")
    writer.exposure(1, 0, T0 + days(1), service="trials")  # after a payload change
    writer.add("plan_chosen", T0 + days(2), user=1)
    writer.exposure(2, 0, T0, service="checkout")
    writer.exposure(2, 0, T0 + SECOND, service="trials")  # the same variation twice: not flagged
    writer.save()
    report = analyse(store, user_metrics(), fifty_fifty())
    assert [v.units for v in report.variations] == [1, 1]
    assert report.multi_variant_units == 1
    assert [v.multi_variant_units for v in report.variations] == [0, 1]
    assert reached(report, 1)[0] == 1


def test_namespace_experiments_follow_the_namespace_and_filter_on_properties(
        writer: EventWriter, store: Engine) -> None:
    metrics = ExperimentMetrics(key="exp", unit="namespace", window_days=90, steps=(
        FunnelStep("trial_started", "Ultimate trial", {"kind": "ultimate"}),
        FunnelStep("trial_converted", "Converted", {"kind": "ultimate"})))
    definition = fifty_fifty()
    for namespace in (10, 11, 12, 13):
        writer.exposure(namespace, 0, hash_attribute="namespace_id")
    writer.add("trial_started", T0 + days(1), user=5, namespace=10, kind="ultimate", duration_days=60)
    writer.add("trial_converted", T0 + days(50), user=5, namespace=10, kind="ultimate")
    writer.add("trial_started", T0 + days(1), user=5, namespace=11, kind="duo_pro")  # another trial
    writer.add("trial_started", T0 + days(1), user=13, namespace=None, kind="ultimate")  # no namespace
    writer.add("trial_started", T0 + days(91), user=5, namespace=12, kind="ultimate")  # too late
    writer.exposure(14, 0, hash_attribute="id")  # a user-hashed exposure: not this experiment's unit
    writer.save()
    report = analyse(store, metrics, definition)
    assert report.variations[0].units == 4
    assert reached(report, 0) == [1, 1]


def test_boolean_and_integer_property_filters(writer: EventWriter, store: Engine) -> None:
    metrics = user_metrics(steps=(FunnelStep("plan_chosen", "Five seats, new", {"seats": 5, "new": True}),))
    for user, seats, new in ((1, 5, True), (2, 5, False), (3, 6, True), (4, "5", True), (5, 5, 1)):
        writer.exposure(user, 0)
        writer.add("plan_chosen", T0 + SECOND, user=user, seats=seats, new=new)
    writer.save()
    assert reached(analyse(store, metrics, fifty_fifty()), 0) == [1]


def test_units_in_a_variation_the_payload_lacks_are_left_out_and_counted(
        writer: EventWriter, store: Engine) -> None:
    writer.exposure(1, 0)
    writer.exposure(2, 1)
    writer.exposure(3, 2)
    writer.save()
    report = analyse(store, user_metrics(), fifty_fifty())
    assert [v.units for v in report.variations] == [1, 1]
    assert report.unknown_variation_units == 1


def test_a_stopped_experiment_takes_its_variations_from_the_exposures(writer: EventWriter, store: Engine) -> None:
    writer.exposure(1, 0)
    writer.exposure(2, 1)
    writer.save()
    report = analyse(store, user_metrics(), ExperimentDefinition(key="exp", name="exp", status=STOPPED))
    assert report.weights_assumed and report.status == STOPPED
    assert [(v.name, v.weight, v.units) for v in report.variations] == [
        ("variation 0", 0.5, 1), ("variation 1", 0.5, 1)]


def test_no_exposures_gives_an_empty_report_without_statistics(store: Engine) -> None:
    report = analyse(store, user_metrics(), fifty_fifty())
    assert report.exposed_units == 0
    assert all(c.uplift is None and c.note for c in report.comparisons)
    assert report.srm_p_value == 1 and not report.srm_warning
    assert report.collected_at is None


def test_other_experiments_do_not_leak_in(writer: EventWriter, store: Engine) -> None:
    writer.exposure(1, 0, experiment="exp")
    writer.exposure(2, 0, experiment="other")
    writer.add("plan_chosen", T0 + SECOND, user=2)
    writer.save()
    report = analyse(store, user_metrics(), fifty_fifty())
    assert report.exposed_units == 1 and reached(report, 0) == [0, 0, 0]


def test_duo_pro_upsell_counts_duo_pro_purchases_not_ultimate_upgrades(writer: EventWriter, store: Engine) -> None:
    """Its "Purchased" step is a purchase that bought Duo Pro (checkout's `duo_pro` property)."""
    from experiments.metrics import load_metrics

    metrics = load_metrics()["duo-pro-upsell"]
    assert metrics.steps[-1].where == {"duo_pro": True}
    for namespace in (20, 21, 22):
        writer.exposure(namespace, 0, hash_attribute="namespace_id", experiment="duo-pro-upsell")
        writer.add("trial_started", T0 + days(1), user=1, namespace=namespace, kind="duo_pro")
    writer.add("purchase_completed", T0 + days(5), user=1, namespace=20, kind="expansion",
               expansion="addon", sku="duo_pro", duo_pro=True)
    writer.add("purchase_completed", T0 + days(5), user=1, namespace=21, kind="upgrade", plan="ultimate",
               duo_pro=False)
    writer.add("purchase_completed", T0 + days(5), user=1, namespace=22, kind="expansion",
               expansion="seats", sku="premium_seats", duo_pro=False)
    writer.save()
    definition = ExperimentDefinition(key="duo-pro-upsell", name="Duo Pro upsell", status=STOPPED,
                                      feature="duo-pro-upsell", hash_attribute="namespace_id",
                                      coverage=1.0, variations=fifty_fifty().variations)
    assert reached(analyse(store, metrics, definition), 0) == [3, 1]
