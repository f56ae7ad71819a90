"""Spans exported by OTLP/HTTP with the OpenTelemetry SDK: the only module that imports it.

Imported by `bridge.observability.tracing.start_spans` only when an endpoint is set, so a
bridge without the `otel` extra, or without OTEL_EXPORTER_OTLP_ENDPOINT, never loads it.
Spans are parented explicitly on the trace context a delivery carries (never on ambient
context), so an attempt made on a retry, on another replica or after a replay joins the
event's trace. A delivery of a trace the bridge started while exporting nothing (no parent
span to name) gets a made-up parent id under its trace id: a span whose parent is missing.

The SDK reads the standard variables itself: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
(the service name defaults to webhook-bridge here), OTEL_EXPORTER_OTLP_HEADERS,
OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_BSP_SCHEDULE_DELAY and the other OTEL_BSP_* settings,
OTEL_TRACES_SAMPLER.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, OTELResourceDetector
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState

from bridge import __version__
from bridge.config.secret import redact_url
from bridge.observability.logs import log
from bridge.observability.tracing import shown_url
from bridge.policy import trace_context
from bridge.policy.dead_letter import DeadLetter
from bridge.policy.events import Event, InvalidEvent
from bridge.policy.tasks import DeliveryTask
from bridge.policy.trace_context import TraceContext

TRACES_PATH = "/v1/traces"  # appended to OTEL_EXPORTER_OTLP_ENDPOINT, as the SDK does
SDK_LOG_CHARS = 500


class _SdkLog(logging.Handler):
    """The SDK's own warnings (a collector that does not answer) as the bridge's log lines,
    not as plain text among them."""

    def emit(self, record: logging.LogRecord) -> None:
        text = redact_url(record.getMessage())[:SDK_LOG_CHARS]
        log.warning("span export", error=text, logger=record.name)


def _route_sdk_logs() -> None:
    sdk = logging.getLogger("opentelemetry")
    if not any(isinstance(handler, _SdkLog) for handler in sdk.handlers):
        sdk.addHandler(_SdkLog(logging.WARNING))
        sdk.propagate = False


class OtlpSpans:
    """`bridge.observability.tracing.Spans`, exported in batches by a thread of the SDK."""

    def __init__(self, endpoint: str, default_service: str) -> None:
        _route_sdk_logs()
        self._provider = TracerProvider(resource=_resource(default_service))
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + TRACES_PATH)
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("webhook-bridge", __version__)

    @contextmanager
    def consume(self, event: Event | InvalidEvent) -> Iterator[TraceContext]:
        attributes = {"messaging.system": "nats", "messaging.message.id": event.id}
        if isinstance(event, Event):
            attributes["webhook.event"] = event.name
        with self._tracer.start_as_current_span(
            "consume", _parent(event.trace), SpanKind.CONSUMER, attributes
        ) as span:
            if isinstance(event, InvalidEvent):
                span.set_status(Status(StatusCode.ERROR, event.error))
            yield _context_of(span, event.trace)

    @contextmanager
    def route(self, event: Event) -> Iterator[None]:
        with self._tracer.start_as_current_span("route", attributes={"webhook.event": event.name}):
            yield

    def attempt(self, task: DeliveryTask) -> Attempt:
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.full": shown_url(task.target.url),
            "webhook.attempt": task.attempt,
            "webhook.delivery_id": task.delivery_id,
            "webhook.event": task.event,
        }
        span = self._tracer.start_span("attempt", _parent(task.trace), SpanKind.CLIENT, attributes)
        return Attempt(span)

    def dead_letter(self, record: DeadLetter) -> None:
        attributes = {"webhook.reason": record.reason, "webhook.delivery_id": record.delivery_id}
        if record.endpoint.url:
            attributes["url.full"] = shown_url(record.endpoint.url)
        self._tracer.start_span("dead letter", _parent(record.trace), attributes=attributes).end()

    def close(self) -> None:
        self._provider.shutdown()  # exports what the batch holds


class Attempt:
    """One attempt's span; `traceparent` names it as the receiver's parent."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        context = span.get_span_context()
        self.traceparent = trace_context.traceparent(*_ids(context))

    def end(self, status_code: int | None, outcome: str, error: str | None) -> None:
        span = self._span
        if status_code is not None:
            span.set_attribute("http.response.status_code", status_code)
        span.set_attribute("webhook.outcome", outcome)
        if error is not None:
            span.set_attribute("error.type", outcome)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()


def _resource(default_service: str) -> SdkResource:
    """The SDK's resource from the environment, its service name defaulting to ours."""
    detected = OTELResourceDetector().detect().attributes.get(SERVICE_NAME)
    name = str(detected) if detected else default_service
    return SdkResource.create({SERVICE_NAME: name, SERVICE_VERSION: __version__})


def _parent(carried: TraceContext | None) -> Context:
    """The context a span starts in: under the carried trace, or a new trace (empty)."""
    if carried is None:
        return Context()
    parent_id = carried.parent_id or trace_context.new_span_id()
    state = TraceState.from_header([carried.state]) if carried.state else None
    remote = trace.SpanContext(
        int(carried.trace_id, 16),
        int(parent_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(carried.flags, 16)),
        trace_state=state,
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(remote), Context())


def _context_of(span: trace.Span, carried: TraceContext | None) -> TraceContext:
    """What the event's deliveries carry: the consume span as their parent."""
    trace_id, span_id, flags = _ids(span.get_span_context())
    return TraceContext(trace_id, flags, span_id, carried.state if carried else None)


def _ids(context: trace.SpanContext) -> tuple[str, str, str]:
    """(trace id, span id, flags) in traceparent's hex."""
    return (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        f"{int(context.trace_flags):02x}",
    )
