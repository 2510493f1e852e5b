"""The response schemas serialise what the use cases return: a field a view adds
and its schema lacks would silently vanish from the answer (and the OpenAPI)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.checkout.adapters.models import Order, Subscription
from services.checkout.api.schemas import OrderSchema, SubscriptionSchema
from services.checkout.usecases.views import order_view, subscription_view

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_the_order_schema_has_every_field_of_an_order_view() -> None:
    order = Order(id=1, namespace_id=2, status="pending", plan="premium", seats=5, currency="usd",
                  lines=[], subtotal=100, discount_total=0, total=100, term_start=date(2026, 5, 1),
                  term_end=date(2027, 5, 1), created_at=NOW)
    assert list(OrderSchema().dump(order_view(order))) == list(order_view(order))


def test_the_subscription_schema_has_every_field_of_a_subscription_view() -> None:
    sub = Subscription(id=1, namespace_id=2, plan="premium", seats=5, status="active", auto_renew=True,
                       term_start=date(2026, 5, 1), term_end=date(2027, 5, 1), addons=[])
    assert list(SubscriptionSchema().dump(subscription_view(sub))) == list(subscription_view(sub))
