"""`webhook-bridge run --workers 2`: two bridge processes under one supervisor.

Both workers share the durable consumers: everything is delivered once each worker is up,
worker i answers on HTTP_PORT + i, and SIGTERM to the supervisor stops both, exit code 0.
"""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import psutil
import pytest
from harness.bridge import BRIDGE_BIN, Bridges
from harness.ports import LOOPBACK
from harness.publish import job_event, publish_events_async
from harness.receiver import Receiver
from nats.js import JetStreamContext

EVENTS = 200
WORKERS = 2


def free_port_pair() -> int:
    """A port P with P + 1 free as well, a moment ago."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind((LOOPBACK, 0))
            port: int = first.getsockname()[1]
            try:
                second.bind((LOOPBACK, port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no two adjacent free ports")


async def ready_status(port: int) -> int | None:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            session.get(f"http://{LOOPBACK}:{port}/readyz") as response,
        ):
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


@pytest.mark.e2e
async def test_two_workers_deliver_everything_and_stop_on_sigterm(
    bridge_env: dict[str, str], tmp_path: Path, js: JetStreamContext, receiver: Receiver
) -> None:
    port = free_port_pair()
    command = (str(BRIDGE_BIN), "run", "--workers", str(WORKERS))
    bridges = Bridges(bridge_env, tmp_path, command)
    env = {"HTTP_PORT": str(port), "DEFAULT_WEBHOOK_URLS": receiver.url("/hook")}
    supervisor = await bridges.start(env)
    try:
        await bridges.wait_for(lambda: _ready(port + 1), 20, "worker 2 ready on HTTP_PORT + 1")
        workers = psutil.Process(supervisor.pid).children()
        assert len(workers) == WORKERS

        events = [(f"e{i}", job_event("job.completed", f"j{i}")) for i in range(EVENTS)]
        await publish_events_async(js, events)
        await bridges.wait_for(
            lambda: len(delivered_jobs(receiver)) == EVENTS, 60, "every event delivered"
        )

        assert await supervisor.terminate() == 0
        assert not any(worker.is_running() for worker in workers)
    finally:
        await bridges.cleanup()


def delivered_jobs(receiver: Receiver) -> set[str]:
    return {r.json()["job_id"] for r in receiver.received("/hook")}


async def _ready(port: int) -> bool:
    return await ready_status(port) == 200
