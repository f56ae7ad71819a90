"""What the admin routes read and act on: the configuration, the router, the metrics, and
JetStream, the webhook store and the dispatcher once the bridge is connected."""

from __future__ import annotations

from bridge.config.settings import Settings
from bridge.jetstream.bus import JetStream
from bridge.jetstream.dispatch import Dispatcher
from bridge.jetstream.endpoint_health import EndpointHealth
from bridge.jetstream.webhook_store import WebhookStore
from bridge.observability.metrics import Metrics
from bridge.policy.routing import Router


class Backend:
    """What the admin routes read: the configuration, and JetStream once connected."""

    def __init__(self, settings: Settings, router: Router, metrics: Metrics) -> None:
        self.settings = settings
        self.router = router
        self.metrics = metrics
        self.js: JetStream | None = None
        self.store: WebhookStore | None = None  # set once connected, like `js`
        self.dispatcher: Dispatcher | None = None
        self.health: EndpointHealth | None = None
