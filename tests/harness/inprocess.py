"""The bridge running inside the test's event loop, for tests that look at its state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bridge.app import Bridge
from bridge.config.settings import load_settings
from harness.waiting import wait_for

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0


@asynccontextmanager
async def running_bridge(env: dict[str, str]) -> AsyncIterator[Bridge]:
    """Start the bridge, wait until ready, and stop it (the SIGTERM path) when the block ends."""
    bridge, stopping = Bridge(load_settings(env)), asyncio.Event()
    task = asyncio.create_task(bridge.run(stopping))
    try:
        await wait_for(lambda: bridge.ready() or task.done(), START_TIMEOUT_S, "bridge ready")
        assert not task.done(), "the bridge stopped during start-up"
        yield bridge
    finally:
        stopping.set()
        await asyncio.wait_for(task, STOP_TIMEOUT_S)
