"""Self-test of the harness: it must be trustworthy before it judges the bridge."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import nats
import pytest
from harness.bridge import BridgeProcess, Bridges, run_cli
from harness.nats import NatsServer
from harness.publish import DLQ_STREAM, publish_raw, read_dead_letters
from harness.receiver import Receiver
from harness.waiting import stays_true, wait_for
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

pytestmark = pytest.mark.timeout(60)

# A stand-in for `webhook-bridge run`: answers /readyz on HTTP_PORT, exits 0 on SIGTERM.
FAKE_BRIDGE = """
import http.server, os, signal, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("fake bridge up", flush=True)
print("fake bridge warning", file=sys.stderr, flush=True)
address = (os.environ["HTTP_HOST"], int(os.environ["HTTP_PORT"]))
http.server.HTTPServer(address, Handler).serve_forever()
"""


async def _stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


async def test_nats_restart_and_kill_keep_streams(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="HARNESS", subjects=["harness.>"]))
    for i in range(3):
        await publish_raw(js, "harness.x", b"m", msg_id=f"m-{i}")
    await nc.close()
    port = nats_server.port

    await nats_server.restart()
    assert nats_server.port == port
    assert await _stream_messages(nats_server.url, "HARNESS") == 3

    await nats_server.kill()
    assert not nats_server.running
    await nats_server.start()
    assert await _stream_messages(nats_server.url, "HARNESS") == 3


async def _post(session: aiohttp.ClientSession, url: str, body: bytes = b"{}") -> int:
    async with session.post(url, data=body, headers={"X-Test": "yes"}) as response:
        return response.status


async def test_receiver_scripted_replies(receiver: Receiver) -> None:
    receiver.reply("/a", 500, 502, 200)
    receiver.reply("/b", 503, headers={"Retry-After": "7"})
    async with aiohttp.ClientSession() as session:
        statuses = [await _post(session, receiver.url("/a")) for _ in range(4)]
        assert statuses == [500, 502, 200, 200]
        async with session.post(receiver.url("/b")) as response:
            assert (response.status, response.headers["Retry-After"]) == (503, "7")
        assert await _post(session, receiver.url("/unset"), b'{"k": 1}') == 200
        receiver.reply("/a", 410)  # the policy can change mid-test
        assert await _post(session, receiver.url("/a")) == 410

    assert [r.path for r in receiver.received()] == ["/a"] * 4 + ["/b", "/unset", "/a"]
    unset = receiver.received("/unset")[0]
    assert (unset.method, unset.body, unset.json()) == ("POST", b'{"k": 1}', {"k": 1})
    assert unset.headers["x-test"] == "yes"
    arrivals = [r.at for r in receiver.received()]
    assert arrivals == sorted(arrivals)


async def test_receiver_hang_is_recorded_and_never_answered(receiver: Receiver) -> None:
    receiver.hang("/slow")
    timeout = aiohttp.ClientTimeout(total=0.3)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with pytest.raises(asyncio.TimeoutError):
            await _post(session, receiver.url("/slow"))
    assert receiver.count("/slow") == 1


async def test_wait_for_and_stays_true_fail_with_message() -> None:
    with pytest.raises(AssertionError, match="never true"):
        await wait_for(lambda: False, 0.1, "never true")
    flag = {"value": True}

    async def flip_later() -> bool:
        flag["value"] = False
        return True

    await wait_for(flip_later, 1, "async predicate")
    with pytest.raises(AssertionError, match="flipped"):
        await stays_true(lambda: flag["value"], 0.2, lambda: "flipped")


async def test_read_dead_letters(js: JetStreamContext) -> None:
    assert await read_dead_letters(js) == []
    config = StreamConfig(name=DLQ_STREAM, subjects=["greenlight.webhooks.dlq.>"])
    await js.add_stream(config)
    await publish_raw(js, "greenlight.webhooks.dlq.job.failed", b'{"reason": "gone"}', "d-1")
    [letter] = await read_dead_letters(js)
    assert letter.subject == "greenlight.webhooks.dlq.job.failed"
    assert (letter.msg_id, letter.body) == ("d-1", {"reason": "gone"})


async def test_bridge_process_machinery(tmp_path: Path) -> None:
    script = tmp_path / "fake_bridge.py"
    script.write_text(FAKE_BRIDGE)
    fake = BridgeProcess({}, tmp_path, name="fake", command=(sys.executable, str(script)))
    await fake.start()
    await fake.wait_ready(timeout_s=10)
    assert await fake.get("/nope") == (404, "")
    assert await fake.terminate() == 0
    assert "fake bridge up" in fake.stdout_text()
    assert "fake bridge warning" in fake.stderr_text()

    again = BridgeProcess({}, tmp_path, name="fake-2", command=(sys.executable, str(script)))
    await again.start()
    await again.wait_ready(timeout_s=10)
    assert await again.kill() == -9


async def _dying_bridges(tmp_path: Path) -> Bridges:
    bridges = Bridges({}, tmp_path, command=(sys.executable, "-c", "import sys; sys.exit(3)"))
    await bridges.new().start()
    return bridges


async def test_bridges_fail_fast_once_when_a_bridge_dies(tmp_path: Path) -> None:
    bridges = await _dying_bridges(tmp_path / "wait")
    with pytest.raises(AssertionError, match="bridge-1 died"):
        await bridges.wait_for(lambda: False, 10, "should have failed early")
    bridges.check_alive()  # reported once: the fixture's teardown check stays quiet

    bridges = await _dying_bridges(tmp_path / "quiet")
    with pytest.raises(AssertionError, match="bridge-1 died"):
        await bridges.stays_true(lambda: True, 10, "a dead bridge must not pass a quiet period")


async def test_run_cli_passes_only_path_and_the_given_env() -> None:
    code = "import os, sys; print(' '.join(sorted(os.environ))); sys.exit(3)"
    result = await run_cli(["-c", code], {"X_TEST": "1"}, program=Path(sys.executable))
    assert result.returncode == 3
    assert set(result.stdout.split()) <= {"PATH", "X_TEST", "LC_CTYPE"}
    assert "X_TEST" in result.stdout.split()
