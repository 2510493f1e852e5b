"""Who hears what is one table (messaging/routing.py): the relays send by it and
the inboxes accept by it, so a topic can only come from the service that owns it."""

from __future__ import annotations

from messaging.routing import ROUTES, owners, subscribers
from services.common.config import Settings


def test_each_topic_prefix_has_one_publisher() -> None:
    published = {(topic, route.publisher) for route in ROUTES for topic in route.topics}
    topics = [topic for topic, _ in published]
    assert len(topics) == len(set(topics)), sorted(published)


def test_an_inbox_accepts_exactly_what_the_relays_send_it() -> None:
    settings = Settings(service="checkout", database_url="sqlite://")
    for subscriber in {route.subscriber for route in ROUTES}:
        sent = {(topic, publisher) for publisher in {route.publisher for route in ROUTES}
                for sub in subscribers(publisher, settings) if sub.name == subscriber for topic in sub.topics}
        assert set(owners(subscriber).items()) == sent


def test_the_relays_send_to_the_urls_in_the_publishers_settings() -> None:
    settings = Settings(service="trials", database_url="sqlite://",
                        service_urls={"checkout": "http://checkout:8001", "trials": "http://trials:8002",
                                      "notifications": "http://notifications:8003"})
    assert {(s.name, s.url, s.topics) for s in subscribers("trials", settings)} == {
        ("checkout", "http://checkout:8001", ("trial.",)),
        ("notifications", "http://notifications:8003", ("trial.",))}
    assert owners("notifications") == {"order.": "checkout", "subscription.": "checkout", "card.": "checkout",
                                       "billing.": "checkout", "trial.": "trials"}
    assert subscribers("notifications", settings) == []  # it publishes nothing anyone hears
