"""Spans by OTLP, or nothing: decided once at start, so that without them the hot path pays
nothing (not even an import of opentelemetry).

`start_spans` returns None unless OTEL_EXPORTER_OTLP_ENDPOINT is set and the `otel` extra is
installed; then the `Spans` of `bridge.observability.otel`, the only module that imports
opentelemetry. Callers hold a `Spans | None` and test it where a span would start: consume
(one per event message), route, each attempt and each dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Protocol

from yarl import URL

from bridge.observability.logs import log
from bridge.policy.dead_letter import DeadLetter
from bridge.policy.events import Event, InvalidEvent
from bridge.policy.tasks import DeliveryTask
from bridge.policy.trace_context import TraceContext

SERVICE_NAME = "webhook-bridge"  # unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say


class AttemptSpan(Protocol):
    """The span of one attempt; `traceparent` names it, for the request's header."""

    traceparent: str

    def end(self, status_code: int | None, outcome: str, error: str | None) -> None: ...


class Spans(Protocol):
    def consume(self, event: Event | InvalidEvent) -> AbstractContextManager[TraceContext]:
        """Around the handling of one event message; gives the context its deliveries carry
        (the consume span's), under the message's own trace when it had one."""
        ...

    def route(self, event: Event) -> AbstractContextManager[None]: ...

    def attempt(self, task: DeliveryTask) -> AttemptSpan:
        """Started now, under the delivery's trace context."""
        ...

    def dead_letter(self, record: DeadLetter) -> None: ...

    def close(self) -> None:
        """Export what is left; blocks (call it off the event loop)."""
        ...


def start_spans(endpoint: str | None) -> Spans | None:
    """The spans to record, or None: no endpoint, or the `otel` extra is not installed."""
    if not endpoint:
        return None
    try:
        from bridge.observability import otel  # noqa: PLC0415  (only when asked for)
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed: "
            "no spans are exported (pip install 'webhook-bridge[otel]')"
        )
        return None
    return otel.OtlpSpans(endpoint, SERVICE_NAME)


async def close_spans(spans: Spans, timeout_s: float) -> None:
    """Export what is left, for `timeout_s` at most. The SDK blocks (up to its export timeout
    and retries when the collector is down), so it runs in a daemon thread that the process
    does not wait for at exit."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if not done.done():
            done.set_result(None)

    def close() -> None:
        try:
            spans.close()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(settle)

    threading.Thread(target=close, name="span-export", daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, timeout_s)


@lru_cache(maxsize=4096)
def shown_url(url: str) -> str:
    """The URL as a span shows it: no user info, no query or fragment (they may hold
    secrets)."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except ValueError:
        return "(unparsable URL)"
