"""Metrics (SPEC §7) and structured logs, set up in one place."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from bridge.delivery import AttemptResult
    from bridge.tasks import Task

log: Any = structlog.get_logger("webhook_bridge")
MAX_ENDPOINT_LABELS = 200
OTHER_ENDPOINT = "other"


def configure_logging(level: str, fmt: str) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            # the log message goes under "message"; "event" is the webhook event (`_event=`)
            structlog.processors.EventRenamer("message", replace_by="_event"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class Metrics:
    """The bridge's Prometheus series, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._endpoints: set[str] = set()
        prefix = "webhook_bridge_"
        reg = self.registry
        self.events_received = Counter(
            f"{prefix}events_received", "Events consumed", ["event"], registry=reg
        )
        self.events_invalid = Counter(
            f"{prefix}events_invalid", "Events that could not be routed", ["reason"], registry=reg
        )
        self.attempts = Counter(
            f"{prefix}delivery_attempts",
            "HTTP attempts",
            ["endpoint", "outcome"],
            registry=reg,
        )
        self.deliveries = Counter(
            f"{prefix}deliveries",
            "Deliveries that ended",
            ["endpoint", "result"],
            registry=reg,
        )
        self.dead_letters = Counter(
            f"{prefix}dead_letters", "Dead letters by reason", ["reason"], registry=reg
        )
        self.duration = Histogram(
            f"{prefix}delivery_duration_seconds",
            "Duration of one HTTP attempt",
            ["endpoint"],
            registry=reg,
        )
        self.event_to_delivery = Histogram(
            f"{prefix}event_to_delivery_seconds",
            "From publish to the 2xx",
            registry=reg,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
        )
        self.inflight_deliveries = Gauge(
            f"{prefix}inflight_deliveries", "HTTP attempts in flight", registry=reg
        )
        self.consumer_pending = Gauge(
            f"{prefix}consumer_pending", "Messages not yet delivered", ["consumer"], registry=reg
        )
        self.nats_connected = Gauge(
            f"{prefix}nats_connected", "1 while connected to NATS", registry=reg
        )

    def endpoint_label(self, endpoint: str) -> str:
        """Cap the label's cardinality: the first MAX_ENDPOINT_LABELS endpoints, then `other`."""
        if endpoint in self._endpoints:
            return endpoint
        if len(self._endpoints) >= MAX_ENDPOINT_LABELS:
            return OTHER_ENDPOINT
        self._endpoints.add(endpoint)
        return endpoint

    @contextmanager
    def inflight(self) -> Iterator[None]:
        self.inflight_deliveries.inc()
        try:
            yield
        finally:
            self.inflight_deliveries.dec()

    def received(self, event: str) -> None:
        self.events_received.labels(event=event).inc()

    def invalid(self, reason: str) -> None:
        self.events_invalid.labels(reason=reason).inc()

    def attempted(self, task: Task, result: AttemptResult) -> None:
        label = self.endpoint_label(task.target.endpoint)
        self.attempts.labels(endpoint=label, outcome=result.outcome).inc()
        self.duration.labels(endpoint=label).observe(result.duration_s)

    def delivered(self, task: Task) -> None:
        label = self.endpoint_label(task.target.endpoint)
        self.deliveries.labels(endpoint=label, result="delivered").inc()
        self.event_to_delivery.observe(max(0.0, time.time() - task.published_at_s))

    def dead_lettered(self, endpoint: str, reason: str) -> None:
        label = self.endpoint_label(endpoint)
        self.deliveries.labels(endpoint=label, result="dead_lettered").inc()
        self.dead_letters.labels(reason=reason).inc()
