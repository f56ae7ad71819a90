"""Spans by OTLP/HTTP (the `otel` extra and OTEL_EXPORTER_OTLP_ENDPOINT): consume, route, each
attempt and the dead letter reach a collector on loopback, in the event's trace, and the
receiver's traceparent names the attempt's span. Without the endpoint nothing loads
opentelemetry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from harness.bridge import Bridges
from harness.otlp import OtlpReceiver
from harness.publish import event_subject, has_dead_letters, job_event
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

TRACE = "0af7651916cd43dd8448eb211c80319c"
UPSTREAM_SPAN = "b7ad6b7169203331"
CLIENT, CONSUMER = 3, 5  # SpanKind in OTLP


@pytest.fixture
async def collector() -> AsyncIterator[OtlpReceiver]:
    server = OtlpReceiver()
    await server.start()
    yield server
    await server.stop()


def _env(collector: OtlpReceiver, url: str) -> dict[str, str]:
    return {
        "DEFAULT_WEBHOOK_URLS": url,
        "WEBHOOK_MAX_RETRY": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: spans leave within moments
    }


async def _publish(js: JetStreamContext, msg_id: str, headers: dict[str, str]) -> None:
    data = json.dumps(job_event("job.completed", f"j-{msg_id}")).encode()
    subject = event_subject("job.completed")
    await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id, **headers})


async def test_spans_of_an_event_join_its_trace_and_name_each_attempt(
    js: JetStreamContext, receiver: Receiver, collector: OtlpReceiver, bridges: Bridges
) -> None:
    receiver.reply("/o", 500)
    url = f"http://user:hunter2@127.0.0.1:{receiver.port}/o?token=s3cret"
    await bridges.start(_env(collector, url))
    await _publish(js, "evt-otel", {"traceparent": f"00-{TRACE}-{UPSTREAM_SPAN}-01"})
    await bridges.wait_for(has_dead_letters(js, 1), 20, "dead-lettered")
    await bridges.wait_for(lambda: len(collector.named("dead letter")) == 1, 20, "spans")

    [consume] = collector.named("consume")
    [route] = collector.named("route")
    attempts = collector.named("attempt")
    [letter] = collector.named("dead letter")
    assert (consume.trace_id, consume.parent_id, consume.kind) == (TRACE, UPSTREAM_SPAN, CONSUMER)
    assert consume.resource["service.name"] == "webhook-bridge"
    assert {s.trace_id for s in (route, *attempts, letter)} == {TRACE}
    assert {s.parent_id for s in (route, *attempts, letter)} == {consume.span_id}
    assert [(s.attributes["webhook.attempt"], s.kind) for s in attempts] == [
        (1, CLIENT),
        (2, CLIENT),
    ]
    for span in attempts:
        assert span.attributes["http.response.status_code"] == 500
        assert span.attributes["url.full"] == f"http://127.0.0.1:{receiver.port}/o"
        assert span.status_code == 2
    assert letter.attributes["webhook.reason"] == "max_retries_exceeded"
    sent = [r.headers["traceparent"] for r in receiver.received("/o")]
    assert sent == [f"00-{TRACE}-{s.span_id}-01" for s in attempts]


async def test_an_event_without_a_traceparent_is_rooted_at_its_consume_span(
    js: JetStreamContext, receiver: Receiver, collector: OtlpReceiver, bridges: Bridges
) -> None:
    await bridges.start(_env(collector, receiver.url("/r")))
    await _publish(js, "evt-root", {})
    await bridges.wait_for(lambda: receiver.count("/r") == 1, 20, "delivered")
    await bridges.wait_for(lambda: len(collector.named("attempt")) == 1, 20, "spans")

    [consume] = collector.named("consume")
    [attempt] = collector.named("attempt")
    assert consume.parent_id == ""
    assert (attempt.trace_id, attempt.parent_id) == (consume.trace_id, consume.span_id)
    assert attempt.status_code == 0
    traceparent = receiver.received("/r")[0].headers["traceparent"]
    # the SDK's flags: sampled, and since W3C level 2 perhaps "random" (03)
    assert traceparent.startswith(f"00-{consume.trace_id}-{attempt.span_id}-0")


def test_without_an_endpoint_opentelemetry_is_never_imported() -> None:
    script = (
        "import sys\n"
        "import bridge.app, bridge.cli.main\n"
        "from bridge.app import Bridge\n"
        "from bridge.config.settings import load_settings\n"
        "assert Bridge(load_settings({})).spans is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.strip() == "[]"
