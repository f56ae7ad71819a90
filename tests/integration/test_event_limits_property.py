"""Property (SPEC §13): whatever bytes up to the size limit are published as an event, the
bridge ends with it acked, delivered or dead-lettered, never looping.

One nats-server and one in-process bridge serve every example (a module-scoped event loop);
each example publishes one message and waits, with a deadline, until the events consumer has
acked everything published so far. Per-job URLs all point at loopback, which the URL policy
refuses without a DNS look-up, so no example reaches beyond this machine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from harness.bridge import FAST_ENV
from harness.inprocess import running_bridge
from harness.nats import NatsServer
from harness.receiver import Receiver
from harness.settled import events_settled, events_state
from harness.waiting import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.js import JetStreamContext

pytestmark = [pytest.mark.timeout(300), pytest.mark.asyncio(loop_scope="module")]

# below the server's default 1 MiB max_payload less the bridge's record headroom
MAX_EVENT_BYTES = 900 * 1024
SETTLE_S = 30.0
BIG = [2049, 100_000, 600_000]
LOOPBACK_URL = "http://127.0.0.1:9/hook/"


class Shared:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    tmp: Path = tmp_path_factory.mktemp("property")
    server = NatsServer(store_dir=tmp / "store", log_path=tmp / "nats.log")
    await server.start()
    receiver = Receiver()
    await receiver.start()
    env = {
        **FAST_ENV,
        "NATS_URL": server.url,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "SHUTDOWN_TIMEOUT": "1s",
        "MAX_EVENT_BYTES": str(MAX_EVENT_BYTES),
        "DEFAULT_WEBHOOK_URLS": receiver.url("/ok"),
    }
    nc = await nats.connect(server.url)
    try:
        async with running_bridge(env):
            yield Shared(nc.jetstream())
    finally:
        await nc.close()
        await receiver.stop()
        await server.stop()


entry = st.one_of(
    st.text(max_size=40).map(lambda text: text.replace("://", "")),  # an id, or nothing
    st.integers(0, 3000).map(lambda n: LOOPBACK_URL + "p" * n),  # URLs around the char limit
    st.sampled_from(BIG).map(lambda n: "x" * n),  # one huge entry
)
webhooks = st.one_of(
    entry,
    st.lists(entry, max_size=30),
    st.sampled_from(BIG).map(lambda n: [f"{LOOPBACK_URL}{i}" for i in range(n // 40)]),
)


def as_object(webhook: object, job: str | None, pad: int) -> bytes:
    event = {"event": "job.completed", "job_id": job, "webhook": webhook, "pad": "y" * pad}
    return json.dumps(event).encode()


objects = st.builds(
    as_object, webhooks, st.sampled_from([None, "j-1", "j-2"]), st.sampled_from([0, 300_000])
)
deep = st.integers(1, 200_000).map(lambda d: b'{"event":"job.x","d":' + b"[" * d + b"]" * d + b"}")
invalid_utf8 = st.binary(max_size=2000).map(lambda b: b'{"event":"job.x","s":"' + b + b'\xff"}')
non_objects = st.sampled_from([b"[]", b"1", b'"s"', b"null", b"", b"[" * 100_000])
long_strings = st.sampled_from([0, 1000, MAX_EVENT_BYTES - 20]).map(
    lambda n: b'{"event":"' + b"e" * n + b'"}'
)
hostile = st.one_of(
    st.binary(max_size=4096), objects, deep, invalid_utf8, non_objects, long_strings
)
suffix = st.sampled_from(["job.completed", "x", "a.b.c.d", "-_"])


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=hostile.filter(lambda b: len(b) <= MAX_EVENT_BYTES), event=suffix)
async def test_any_published_bytes_end_acked(shared: Shared, data: bytes, event: str) -> None:
    ack = await shared.js.publish(f"greenlight.events.{event}", data)
    try:
        await wait_for(lambda: events_settled(shared.js, ack.seq), SETTLE_S, "never acked")
    except AssertionError as error:
        raise AssertionError(f"{error}: {await events_state(shared.js)}") from None
