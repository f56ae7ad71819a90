"""The admin server without NATS: `build_app` over a router of the settings of `env`, served on
loopback by aiohttp's test server, for the unit tests of its routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer

from bridge.admin.server import Backend, build_app
from bridge.config.settings import load_settings
from bridge.observability.metrics import Metrics
from bridge.policy.routing import Router


@asynccontextmanager
async def admin_client(env: dict[str, str]) -> AsyncIterator[TestClient[object, object]]:
    settings = load_settings(env)
    backend = Backend(settings, Router(settings), Metrics())
    client: TestClient[object, object] = TestClient(TestServer(build_app(backend, lambda: False)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
