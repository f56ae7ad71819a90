"""Metrics (SPEC §7) and structured logs, set up in one place."""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO, get_args

import msgspec
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from structlog.typing import FilteringBoundLogger

from bridge import __version__
from bridge.deadletter import Reason
from bridge.events import InvalidReason

if TYPE_CHECKING:
    from bridge.delivery import AttemptResult
    from bridge.tasks import Task

log: FilteringBoundLogger = structlog.get_logger("webhook_bridge")
_JSON = msgspec.json.Encoder(enc_hook=repr)
PREFIX = "webhook_bridge_"
MAX_ENDPOINT_LABELS = 200
MAX_EVENT_LABELS = 200
OTHER_LABEL = "other"
EVENT_TO_DELIVERY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def _json_line(event_dict: Any, **_options: Any) -> str:
    """JSON for structlog: msgspec encodes an attempt's line many times faster than json.dumps,
    and every attempt logs one at info; anything it cannot encode is written as its repr."""
    return _JSON.encode(event_dict).decode()


class _Timestamp:
    """structlog processor: `timestamp` as RFC 3339 UTC with microseconds, like TimeStamper
    (fmt="iso", utc=True) but with the date and time formatted once per second, not per line."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


class _LineWriter:
    """structlog logger: the lines of one event-loop iteration leave in one write.

    A busy bridge logs a line per attempt; writing and flushing each on its own cost a system
    call apiece. Lines are flushed at the end of the iteration that logged them (and at exit),
    so nothing waits longer than one iteration; outside a running loop each line goes at once.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lines: list[str] = []
        atexit.register(self.flush)  # once per configure_logging call: a handful per process

    def msg(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) > 1:
            return  # a flush is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:
            self.flush()

    debug = info = warning = warn = error = err = critical = exception = fatal = failure = msg

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()


def configure_logging(level: str, fmt: str) -> None:
    writer = _LineWriter(sys.stderr)
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _Timestamp(),
            structlog.processors.format_exc_info,
            # the log message goes under "message"; "event" is the webhook event (`_event=`)
            structlog.processors.EventRenamer("message", replace_by="_event"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *_args: writer,
        cache_logger_on_first_use=True,
    )


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
        self._zeroes()
        self._gauge("build_info", "Version of the running bridge", "version").labels(
            version=__version__
        ).set(1)

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

    def attempted(self, task: Task, result: AttemptResult) -> None:
        label = self.endpoint_label(task.target.endpoint)
        self._child(self.attempts, label, result.outcome).inc()
        self._child(self.duration, label).observe(result.duration_s)

    def delivered(self, task: Task) -> None:
        label = self.endpoint_label(task.target.endpoint)
        self._child(self.deliveries, label, "delivered").inc()
        self.event_to_delivery.observe(max(0.0, time.time() - task.published_at_s))

    def retry_scheduled(self, task: Task) -> None:
        self.retries.labels(endpoint=self.endpoint_label(task.target.endpoint)).inc()

    def dead_lettered(self, endpoint: str | None, reason: str) -> None:
        if endpoint is not None:
            label = self.endpoint_label(endpoint)
            self.deliveries.labels(endpoint=label, result="dead_lettered").inc()
        self.dead_letters.labels(reason=reason).inc()

    def _zeroes(self) -> None:
        """Known label values start at 0, so the first increase() of each is exact."""
        for reason in get_args(Reason):
            self.dead_letters.labels(reason=reason)
        for invalid in get_args(InvalidReason):
            self.events_invalid.labels(reason=invalid)
