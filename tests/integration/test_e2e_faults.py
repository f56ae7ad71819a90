"""Broker faults end to end: nats-server killed and restarted under a running bridge, and the
single-box mode that runs its own nats-server."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import nats
import pytest
from harness.bridge import BridgeProcess, Bridges, run_cli
from harness.nats import NatsServer
from harness.ports import free_port
from harness.publish import job_event, publish_event, publish_events_async
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def _job_ids(receiver: Receiver, path: str) -> set[str]:
    return {r.json()["job_id"] for r in receiver.received(path)}


async def _readyz(bridge: BridgeProcess) -> int:
    return (await bridge.get("/readyz"))[0]


async def test_nats_killed_and_restarted_mid_stream_loses_nothing(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    total = 1000
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/bulk"), "NATS_ACK_WAIT": "3s"}
    bridge = await bridges.start(env)
    events = ((f"evt-{i}", job_event("job.progress", f"job-{i}")) for i in range(total))
    await publish_events_async(js, events)
    await bridges.wait_for(lambda: len(_job_ids(receiver, "/bulk")) >= 150, 30, "no progress")

    await nats_server.kill()
    await bridges.wait_for(
        lambda: _not_ready(bridge), 20, "/readyz kept answering 200 while NATS was down"
    )
    await nats_server.start()
    await bridges.wait_for(lambda: _ready(bridge), 30, "/readyz never came back to 200")
    await bridges.wait_for(
        lambda: len(_job_ids(receiver, "/bulk")) == total,
        60,
        lambda: f"lost events: {total - len(_job_ids(receiver, '/bulk'))} never arrived",
    )
    duplicates = receiver.count("/bulk") - total
    print(f"nats-server kill -9 and restart: {duplicates} duplicate deliveries of {total}")


async def _not_ready(bridge: BridgeProcess) -> bool:
    return await _readyz(bridge) == 503


async def _ready(bridge: BridgeProcess) -> bool:
    return await _readyz(bridge) == 200


async def test_embedded_nats_single_box(
    receiver: Receiver, tmp_path: Path, bridge_env: dict[str, str]
) -> None:
    nats_url = f"nats://127.0.0.1:{free_port()}"
    env = bridge_env | {"NATS_URL": nats_url, "DEFAULT_WEBHOOK_URLS": receiver.url("/one")}
    command = (*Bridges(env, tmp_path).command, "--embedded-nats", "--data-dir", str(tmp_path))
    bridges = Bridges(env, tmp_path, command)
    try:
        bridge = await bridges.start()
        nc = await nats.connect(nats_url)
        try:
            await publish_event(nc.jetstream(), job_event("job.completed", "j-box"), "evt-box")
        finally:
            await nc.close()
        await bridges.wait_for(lambda: receiver.count("/one") == 1, 20, "no delivery")
        assert await bridge.terminate() == 0
    finally:
        await bridges.cleanup()
    assert (tmp_path / "jetstream").is_dir(), "the store is not in --data-dir"


@pytest.mark.parametrize("args", [("publish", "job.completed"), ("dlq", "list")])
async def test_client_commands_fail_fast_when_nats_is_down(args: tuple[str, ...]) -> None:
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    result = await run_cli(args, {"NATS_URL": url}, timeout_s=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert url in lines[0]


async def test_starts_before_nats_and_connects_when_it_comes(
    nats_server: NatsServer, receiver: Receiver, bridges: Bridges
) -> None:
    await nats_server.stop()
    bridge = bridges.new({"DEFAULT_WEBHOOK_URLS": receiver.url("/late")})
    await bridge.start()

    async def alive_not_ready() -> bool:
        try:
            return (await bridge.get("/healthz"))[0] == 200 and await _not_ready(bridge)
        except aiohttp.ClientError:
            return False  # not listening yet

    await bridges.wait_for(alive_not_ready, 20, "expected /healthz 200 and /readyz 503")
    await nats_server.start()
    await bridge.wait_ready(30)
    nc = await nats.connect(nats_server.url)
    try:
        await publish_event(nc.jetstream(), job_event("job.completed", "j-late"), "evt-late")
    finally:
        await nc.close()
    await bridges.wait_for(lambda: receiver.count("/late") == 1, 20, "no delivery")
