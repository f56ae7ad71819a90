"""Fixtures shared by all tests: a nats-server, a webhook receiver and bridges, all on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from harness.abuse import AbusiveReceiver
from harness.bridge import FAST_ENV, Bridges
from harness.clock import FakeClock
from harness.nats import NatsServer
from harness.receiver import Receiver
from hypothesis import settings
from nats.js import JetStreamContext

# Property tests (tests/unit/test_hostile_input.py): few examples, the same ones every run, so
# the suite stays fast and CI reproducible; HYPOTHESIS_PROFILE=thorough explores at random.
settings.register_profile("fast", max_examples=300, deadline=None, database=None, derandomize=True)
settings.register_profile("thorough", max_examples=3000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path / "nats-store", log_path=tmp_path / "nats-server.log")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    """A producer's JetStream context on the test's nats-server."""
    nc = await nats.connect(nats_server.url)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def abusive() -> AsyncIterator[AbusiveReceiver]:
    """A hostile receiver (`harness.abuse`): each path misbehaves in its own way."""
    server = AbusiveReceiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def clock() -> FakeClock:
    """For code that takes its clock: moves only when the test sets `now_s`."""
    return FakeClock()


@pytest.fixture
def bridge_env(nats_server: NatsServer) -> dict[str, str]:
    """The env every bridge of a test starts from; tests add or override keys."""
    return {"NATS_URL": nats_server.url, **FAST_ENV}


@pytest.fixture
async def bridges(bridge_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Bridges]:
    """Starts bridges (`await bridges.start(env)`) and kills any left running at teardown."""
    factory = Bridges(bridge_env, tmp_path)
    yield factory
    try:
        factory.check_alive()  # a bridge that died mid-test fails it, even if nothing waited
    finally:
        await factory.cleanup()
        print(factory.report())  # pytest shows it only when the test failed
