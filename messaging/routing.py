"""Who hears what: the one table of which service's events go to which other
service. Each publisher's relay sends by it (messaging/jobs.py) and each
subscriber's inbox accepts a topic only from the service that owns it
(messaging/inbox.py), so the two sides can not drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from messaging.relay import Subscriber
from services.common.config import Settings


@dataclass(frozen=True)
class Route:
    publisher: str
    subscriber: str
    topics: tuple[str, ...]  # topic prefixes: "subscription." takes "subscription.created"


ROUTES = (
    Route("checkout", "trials", ("subscription.", "directory.")),
    Route("checkout", "notifications", ("order.", "subscription.", "card.", "billing.")),
    Route("trials", "checkout", ("trial.",)),
    Route("trials", "notifications", ("trial.",)),
)


def subscribers(publisher: str, settings: Settings) -> list[Subscriber]:
    """Where `publisher`'s relay sends its events (the URLs from its settings)."""
    return [Subscriber(route.subscriber, settings.service_urls[route.subscriber], route.topics)
            for route in ROUTES if route.publisher == publisher]


def owners(subscriber: str) -> dict[str, str]:
    """{topic prefix: the one service allowed to publish it} for `subscriber`'s inbox."""
    return {topic: route.publisher for route in ROUTES if route.subscriber == subscriber
            for topic in route.topics}
