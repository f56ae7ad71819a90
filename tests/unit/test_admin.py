"""The admin server's guard and parameter checks, served on loopback without NATS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from harness.admin_app import admin_client

TOKEN = "s3cret-admin-token"


@pytest.fixture
async def guarded() -> AsyncIterator[TestClient[object, object]]:
    async with admin_client({"ADMIN_TOKEN": TOKEN}) as client:
        yield client


@pytest.fixture
async def open_admin() -> AsyncIterator[TestClient[object, object]]:
    async with admin_client({}) as client:
        yield client


ADMIN_GETS = ["/webhooks", "/deliveries", "/dlq"]


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, 401),
        ("", 401),
        (TOKEN, 401),
        (f"Basic {TOKEN}", 401),
        (f"Bearer {TOKEN}x", 401),
        (f"Bearer {TOKEN[:-1]}", 401),
        (f"Bearer{TOKEN}", 401),
        ("Bearer ", 401),
        (f"bearer  {TOKEN}", 503),
        (f"Bearer {TOKEN}", 503),  # authorised; not connected to NATS in this test
    ],
)
@pytest.mark.parametrize("path", ADMIN_GETS)
async def test_token_guard(
    guarded: TestClient[object, object], path: str, authorization: str | None, expected: int
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await guarded.get(path, headers=headers)
    assert response.status == expected
    if expected == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert TOKEN not in await response.text()


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/openapi.json"])
async def test_public_routes_need_no_token(guarded: TestClient[object, object], path: str) -> None:
    assert (await guarded.get(path)).status == 200


async def test_readyz_is_public_and_503_until_ready(guarded: TestClient[object, object]) -> None:
    assert (await guarded.get("/readyz")).status == 503


async def test_without_token_reads_open_and_writes_refused(
    open_admin: TestClient[object, object],
) -> None:
    for path in ADMIN_GETS:
        assert (await open_admin.get(path)).status == 503, "open, but NATS is not connected"
    response = await open_admin.post("/dlq/replay", json={})
    assert response.status == 403
    assert "ADMIN_TOKEN" in (await response.json())["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/deliveries?limit=0",
        "/deliveries?limit=1001",
        "/deliveries?limit=-1",
        "/deliveries?limit=ten",
        "/dlq?since=yesterday",
        "/dlq?since=100000000d",  # overflowed datetime arithmetic (500) before
        "/dlq?all=maybe",
        "/dlq?limit=1.5",
    ],
)
async def test_bad_parameters(guarded: TestClient[object, object], path: str) -> None:
    response = await guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 400
    assert "\n" not in (await response.json())["error"]


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'"text"', b'{"since": 5}', b'{"all": "perhaps"}']
)
async def test_bad_replay_bodies(guarded: TestClient[object, object], body: bytes) -> None:
    response = await guarded.post(
        "/dlq/replay", data=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status == 400


CONSOLE_FILES = {"/ui", "/ui/", "/ui/{name}"}  # the console's static files: not the JSON API


async def test_openapi_document_lists_every_route(guarded: TestClient[object, object]) -> None:
    document = await (await guarded.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    served = {route.resource.canonical for route in guarded.app.router.routes() if route.resource}
    assert served == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/webhooks",
        "/deliveries",
        "/dlq",
        "/dlq/replay",
        "/webhooks/{id}",
        "/webhooks/{id}/secret/rotate",
        "/webhooks/{id}/test",
        "/webhooks/{id}/history",
        "/audit",
        "/whoami",
        "/stats",
        *CONSOLE_FILES,
        "/endpoints",
    }
    assert set(document["paths"]) == served - CONSOLE_FILES


@pytest.mark.parametrize("token", [b"\xff\xfe", b"s3cret-admin-toke\xff", b"\xc3(", b"\x80"])
async def test_non_utf8_bearer_token_is_401_not_500(
    guarded: TestClient[object, object], token: bytes
) -> None:
    """aiohttp hands undecodable header bytes on as surrogates; encoding them again raised."""
    reader, writer = await asyncio.open_connection(guarded.host, guarded.port)
    head = b"GET /webhooks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    writer.write(head + b"Authorization: Bearer " + token + b"\r\n\r\n")
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"401"
