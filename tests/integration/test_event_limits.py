"""No event is redelivered for ever (SPEC §13): per-job webhook limits, records that fit the
server's max_payload, and events whose handling keeps failing (bridge in-process).

Each test here looped for ever before these limits: the event was never acked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest
from harness.bridge import FAST_ENV
from harness.inprocess import running_bridge
from harness.nats import NatsServer
from harness.publish import event_subject, job_event, publish_raw, read_dead_letters
from harness.receiver import Receiver
from harness.settled import events_settled, events_state
from harness.waiting import wait_for
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig

from bridge.jetstream.job_webhooks import job_key

pytestmark = pytest.mark.timeout(120)

SETTLE_S = 30.0
ENTRY_CHARS = 2000
ENTRIES_PER_EVENT = 445  # about 890 KB of webhook entries per event
SMALL_MAX_PAYLOAD = 128 * 1024


def bridge_env(server: NatsServer, receiver: Receiver, **extra: str) -> dict[str, str]:
    return {
        **FAST_ENV,
        "NATS_URL": server.url,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "SHUTDOWN_TIMEOUT": "1s",
        "DEFAULT_WEBHOOK_URLS": receiver.url("/ok"),
        **extra,
    }


async def publish(js: JetStreamContext, event: dict[str, Any], msg_id: str) -> int:
    data = json.dumps(event).encode()
    return (await publish_raw(js, event_subject(event["event"]), data, msg_id)).seq


async def settle(js: JetStreamContext, last_seq: int) -> None:
    try:
        await wait_for(lambda: events_settled(js, last_seq), SETTLE_S, "events never acked")
    except AssertionError as error:
        raise AssertionError(f"{error}: {await events_state(js)}") from None


async def test_a_600kb_webhook_string_is_dead_lettered_not_looped(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver
) -> None:
    """Before: its unknown_webhook dead letter was over max_payload, refused every ~11 s."""
    entry = "x" * 600_000
    async with running_bridge(bridge_env(nats_server, receiver)):
        seq = await publish(js, job_event("job.completed", "j-600k", webhook=entry), "evt-600k")
        await settle(js, seq)
        await wait_for(lambda: receiver.count("/ok") == 1, SETTLE_S, "default URL reached")
    [letter] = [letter.body for letter in await read_dead_letters(js)]
    assert letter["reason"] == "too_many_webhooks"
    assert letter["dropped_webhooks"] == [entry]
    assert letter["job_id"] == "j-600k"
    assert "webhook" not in letter["payload"]


def long_urls(receiver: Receiver, event: int) -> list[str]:
    pad = "p" * ENTRY_CHARS
    urls = [receiver.url(f"/hook/{event}/{i}?pad={pad}") for i in range(ENTRIES_PER_EVENT)]
    return [url[:ENTRY_CHARS] for url in urls]


async def test_huge_webhook_lists_of_one_job_stay_within_its_memory(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver
) -> None:
    """Before: the job's KV value grew past max_payload and `remember` failed for ever."""
    env = bridge_env(nats_server, receiver, WEBHOOK_ALLOW_PRIVATE_URLS="true", JOB_WEBHOOK_MAX="10")
    first, second = long_urls(receiver, 1), long_urls(receiver, 2)
    async with running_bridge(env):
        await publish(js, job_event("job.started", "j-big", webhook=first), "evt-big-1")
        seq = await publish(js, job_event("job.completed", "j-big", webhook=second), "evt-big-2")
        await settle(js, seq)
        kept = [f"/hook/1/{i}" for i in range(10)]
        await wait_for(
            lambda: all(receiver.count(path) == 2 for path in kept), SETTLE_S, "kept hooks"
        )
    assert not [r for r in receiver.requests if r.path.startswith("/hook/2/")]
    letters = [letter.body for letter in await read_dead_letters(js)]
    assert [letter["reason"] for letter in letters] == ["too_many_webhooks"] * 2
    assert letters[0]["dropped_webhooks"] == first[10:]
    assert letters[1]["dropped_webhooks"] == second
    stored = await (await js.key_value("webhook-bridge-jobs")).get(job_key("j-big"))
    assert msgspec.json.decode(stored.value or b"") == first[:10]


@pytest.fixture
async def small_server(tmp_path: Path) -> Any:
    server = NatsServer(
        store_dir=tmp_path / "small-store",
        log_path=tmp_path / "small.log",
        config=f"max_payload: {SMALL_MAX_PAYLOAD}\n",
    )
    await server.start()
    yield server
    await server.stop()


async def test_dead_letters_fit_a_small_max_payload(
    small_server: NatsServer, receiver: Receiver
) -> None:
    """Before: an oversized event's raw bytes, base64-encoded, made a record over
    max_payload: refused, and the event looped."""
    nc = await nats.connect(small_server.url)
    js = nc.jetstream()
    try:
        async with running_bridge(bridge_env(small_server, receiver)):
            raw = b"\xff" * (SMALL_MAX_PAYLOAD - 8 * 1024)  # not UTF-8, over MAX_EVENT_BYTES
            seq = (await publish_raw(js, event_subject("job.x"), raw, "evt-raw")).seq
            await settle(js, seq)
        [letter] = await read_dead_letters(js)
    finally:
        await nc.close()
    record = letter.body
    assert record["reason"] == "invalid_event"
    assert record["truncated"] == ["raw"]
    assert record["raw_truncated"] is True
    assert record["raw_size"] == len(raw)
    assert len(json.dumps(record)) <= SMALL_MAX_PAYLOAD


async def test_an_event_that_keeps_failing_is_dead_lettered_and_acked(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver
) -> None:
    """The job bucket refuses every value (the server's own limit): `remember` fails at each
    delivery; the second failure gives up. Before: the event was handed back for ever."""
    config = KeyValueConfig(bucket="webhook-bridge-jobs", max_value_size=16, history=1)
    await js.create_key_value(config)
    env = bridge_env(nats_server, receiver, EVENT_MAX_FAILURES="2")
    event = job_event("job.completed", "j-refused", webhook="not-a-configured-webhook")
    async with running_bridge(env):
        seq = await publish(js, event, "evt-refused")
        await settle(js, seq)
        good = await publish(js, job_event("job.completed", "j-fine"), "evt-fine")
        await settle(js, good)
    letters = [letter.body for letter in await read_dead_letters(js)]
    [failed] = [letter for letter in letters if letter["reason"] == "handler_error"]
    assert failed["event_id"] == "evt-refused"
    assert failed["event"] == "job.completed"
    assert json.loads(failed["raw"]) == event
    assert "cannot remember" in failed["error"]
    assert receiver.count("/ok") == 1  # the good event; the failed one never got that far
