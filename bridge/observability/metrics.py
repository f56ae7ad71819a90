"""Metrics (SPEC §7): the bridge's Prometheus series on a registry of its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge import __version__
from bridge.policy.audit import CONFIG_ACTIONS
from bridge.policy.breaker import STATES
from bridge.policy.dead_letter import Reason
from bridge.policy.events import InvalidReason
from bridge.policy.signals import DISABLED_REASONS, Signal

PREFIX = "webhook_bridge_"
MAX_ENDPOINT_LABELS = 200
MAX_EVENT_LABELS = 200
OTHER_LABEL = "other"

WEBHOOK_SOURCES = ("config", "api", "env")
EVENT_TO_DELIVERY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class EndpointView(Protocol):
    """An endpoint's health as the metrics read it (`bridge.jetstream.endpoint_health`)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def concurrency_limit(self) -> int: ...
    @property
    def held(self) -> int: ...


class _EndpointHealth(Collector):
    """endpoint_state, endpoint_concurrency_limit and held_deliveries, read at scrape time
    from the endpoints that are not plainly healthy: a recovered one's series go away, and
    at most MAX_ENDPOINT_LABELS endpoints are shown (those in trouble first)."""

    def __init__(self, read: Callable[[], Sequence[EndpointView]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        shown = sorted(self._read(), key=lambda s: (s.state == "healthy", -s.held))
        shown = shown[:MAX_ENDPOINT_LABELS]
        state = GaugeMetricFamily(
            f"{PREFIX}endpoint_state",
            "1 for the endpoint's breaker state",
            labels=["endpoint", "state"],
        )
        limit = GaugeMetricFamily(
            f"{PREFIX}endpoint_concurrency_limit",
            "Adaptive limit of attempts in flight to the endpoint",
            labels=["endpoint"],
        )
        held = GaugeMetricFamily(
            f"{PREFIX}held_deliveries",
            "Deliveries waiting for the endpoint to recover, as this process saw them lately",
            labels=["endpoint"],
        )
        for status in shown:
            for name in STATES:
                state.add_metric([status.endpoint, name], 1.0 if status.state == name else 0.0)
            limit.add_metric([status.endpoint], status.concurrency_limit)
            held.add_metric([status.endpoint], status.held)
        yield from (state, limit, held)


class _CappedLabel:
    """Label values from producers' data: the first `limit` distinct ones, then `other`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER_LABEL
        self._seen.add(value)
        return value


class Metrics:
    """The bridge's Prometheus series (SPEC §7), on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self.endpoint_label = _CappedLabel(MAX_ENDPOINT_LABELS)
        self.event_label = _CappedLabel(MAX_EVENT_LABELS)
        self.events_received = self._counter("events_received", "Events consumed", "event")
        self.events_invalid = self._counter("events_invalid", "Unroutable events", "reason")
        self.attempts = self._counter("delivery_attempts", "HTTP attempts", "endpoint", "outcome")
        self.deliveries = self._counter("deliveries", "Deliveries ended", "endpoint", "result")
        self.dead_letters = self._counter("dead_letters", "Dead letters by reason", "reason")
        self.duration = Histogram(
            f"{PREFIX}delivery_duration_seconds",
            "Duration of one HTTP attempt",
            ["endpoint"],
            registry=self.registry,
        )
        self.event_to_delivery = Histogram(
            f"{PREFIX}event_to_delivery_seconds",
            "From publish to the 2xx",
            registry=self.registry,
            buckets=EVENT_TO_DELIVERY_BUCKETS_S,
        )
        self.webhooks = self._gauge(
            "webhooks", "Webhooks by source (config, api, env) and state", "source", "active"
        )
        self.inflight = 0  # read at scrape time: a gauge's inc/dec take a lock each
        self._gauge("inflight_deliveries", "HTTP attempts in flight").set_function(
            lambda: self.inflight
        )
        self.consumer_pending = self._gauge(
            "consumer_pending", "Messages not yet delivered", "consumer"
        )
        self.nats_connected = self._gauge("nats_connected", "1 while connected to NATS")
        self.consumer_ack_pending = self._gauge(
            "consumer_ack_pending", "Messages delivered and not yet acked", "consumer"
        )
        self.oldest_pending_age = self._gauge(
            "oldest_pending_event_age_seconds", "Age of the oldest event not yet acked"
        )
        self.retries_pending = self._gauge("retries_pending", "Deliveries waiting for a retry")
        self.event_loop_tasks = self._gauge(
            "event_loop_tasks", "asyncio tasks alive in the bridge's event loop"
        )
        self.retries = self._counter("retries", "Retries scheduled", "endpoint")
        self.log_suppressed = self._counter("log_lines_suppressed", "Repeated log lines dropped")
        self.delivery_log_errors = self._counter(
            "delivery_log_errors", "Delivery log records that could not be written"
        )
        self.config_changes = self._counter(
            "config_changes", "Webhook changes through the admin API, audited", "action"
        )
        self.receiver_signals = self._counter(
            "receiver_signals",
            "Receiver signals acted on (gone, abort, disable) and webhooks disabled after "
            "failing too long (failing)",
            "signal",
        )
        self.webhooks_disabled = self._counter(
            "webhooks_disabled", "Webhooks the bridge disabled, by disabled_reason", "reason"
        )
        self._zeroes()
        self._gauge("build_info", "Version of the running bridge", "version").labels(
            version=__version__
        ).set(1)

    def watch_endpoints(self, read: Callable[[], Sequence[EndpointView]]) -> None:
        """Export the endpoints' health as `read` gives it at each scrape."""
        self.registry.register(_EndpointHealth(read))

    def receiver_signal(self, signal: str) -> None:
        self.receiver_signals.labels(signal=signal).inc()

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        """`metric.labels(*values)`, memoised: labels() takes a lock and builds a key each
        call, and a delivery needs four. Bounded: every label value here is capped."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def _counter(self, name: str, text: str, *labels: str) -> Counter:
        return Counter(f"{PREFIX}{name}", text, labels, registry=self.registry)

    def _gauge(self, name: str, text: str, *labels: str) -> Gauge:
        return Gauge(f"{PREFIX}{name}", text, labels, registry=self.registry)

    def received(self, event: str) -> None:
        self._child(self.events_received, self.event_label(event)).inc()

    def invalid(self, reason: str) -> None:
        self.events_invalid.labels(reason=reason).inc()

    def attempted(self, endpoint: str, outcome: str, duration_s: float) -> None:
        label = self.endpoint_label(endpoint)
        self._child(self.attempts, label, outcome).inc()
        self._child(self.duration, label).observe(duration_s)

    def delivered(self, endpoint: str, published_at_s: float) -> None:
        label = self.endpoint_label(endpoint)
        self._child(self.deliveries, label, "delivered").inc()
        self.event_to_delivery.observe(max(0.0, time.time() - published_at_s))

    def retry_scheduled(self, endpoint: str) -> None:
        self.retries.labels(endpoint=self.endpoint_label(endpoint)).inc()

    def dead_lettered(self, endpoint: str | None, reason: str) -> None:
        if endpoint is not None:
            label = self.endpoint_label(endpoint)
            self.deliveries.labels(endpoint=label, result="dead_lettered").inc()
        self.dead_letters.labels(reason=reason).inc()

    def count_webhooks(self, counts: Mapping[tuple[str, bool], int]) -> None:
        """Set the webhook counts; (source, active) pairs not given are 0."""
        for source in WEBHOOK_SOURCES:
            for active in (True, False):
                value = counts.get((source, active), 0)
                self.webhooks.labels(source=source, active=str(active).lower()).set(value)

    def _zeroes(self) -> None:
        """Known label values start at 0, so the first increase() of each is exact."""
        for reason in get_args(Reason):
            self.dead_letters.labels(reason=reason)
        for invalid in get_args(InvalidReason):
            self.events_invalid.labels(reason=invalid)
        for action in CONFIG_ACTIONS:
            self.config_changes.labels(action=action)
        for signal in get_args(Signal):
            self.receiver_signals.labels(signal=signal)
        for reason in DISABLED_REASONS.values():
            self.webhooks_disabled.labels(reason=reason)
