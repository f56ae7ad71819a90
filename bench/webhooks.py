"""Scenario 8's webhooks: a catalog of API webhooks of which exactly MATCHING want each event.

Of `count` webhooks (scope global, one receiver, a path each), a tenth are decoys that want
no published event: half name a published event but only tenant `globex` (the index finds
them, the tenant check drops them), half a glob no event name matches. The others come in
fives per event name `bench.kNNN.done`: an exact name, the name with tenant `acme` (every
event's), the name beside a name never published, the name with `globex` and `acme`, and
the glob `bench.kNNN.*`. Events cycle over the names, so each goes to its five.

`wait_live` waits for every process to follow the bucket, `create` posts the webhooks to the
admin API, `wait_listed` polls every process's `GET /webhooks` until it lists them all, so
no event is published before every process routes with them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

MATCHING = 5
TENANT = "acme"
OTHER_TENANT = "globex"
ADMIN_TOKEN = "bench-admin-token"
AUTHORIZATION = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CREATE_CONCURRENCY = 16
LISTED_TIMEOUT_S = 60.0
POLL_S = 0.2
LISTENING = b"http server listening"


@dataclass(frozen=True)
class Hook:
    """One API webhook: the body of its POST /webhooks, its path, the names it receives."""

    id: str
    events: tuple[str, ...]
    tenants: tuple[str, ...] = ()
    receives: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"/hooks/{self.id}"

    def body(self, url_of: Callable[[str], str]) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "url": url_of(self.path), "scope": "global"}
        return body | {"events": list(self.events), "tenants": list(self.tenants)}


def event_names(count: int) -> list[str]:
    """The published event names: one per MATCHING webhooks that are not decoys."""
    return [_name(k) for k in range((count - _decoys(count)) // MATCHING)]


def catalog(count: int) -> list[Hook]:
    names = event_names(count)
    hooks = [hook for k, name in enumerate(names) for hook in _five(k, name)]
    return hooks + _decoy_hooks(count - len(hooks), names)


def routes(hooks: list[Hook], url_of: Callable[[str], str]) -> dict[str, list[str]]:
    """Event name → the URLs that receive it: what the raw baseline posts to."""
    found: dict[str, list[str]] = {}
    for hook in hooks:
        for name in hook.receives:
            found.setdefault(name, []).append(url_of(hook.path))
    return found


def _name(k: int) -> str:
    return f"bench.k{k:03d}.done"


def _decoys(count: int) -> int:
    return count // 10


def _five(k: int, name: str) -> list[Hook]:
    tag = f"n{k:03d}"
    return [
        Hook(f"{tag}-exact", (name,), receives=(name,)),
        Hook(f"{tag}-tenant", (name,), (TENANT,), receives=(name,)),
        Hook(f"{tag}-pair", (name, f"bench.k{k:03d}.started"), receives=(name,)),
        Hook(f"{tag}-tenants", (name,), (OTHER_TENANT, TENANT), receives=(name,)),
        Hook(f"{tag}-glob", (f"bench.k{k:03d}.*",), receives=(name,)),
    ]


def _decoy_hooks(count: int, names: list[str]) -> list[Hook]:
    """Half indexed under a published name but for another tenant, half an unmatched glob."""
    return [
        Hook(f"d{i:03d}-tenant", (names[i % len(names)],), (OTHER_TENANT,))
        if i % 2 == 0
        else Hook(f"d{i:03d}-glob", (f"other.k{i:03d}.*",))
        for i in range(count)
    ]


def expected_by_path(hooks: list[Hook], events: int) -> dict[str, int]:
    """Path → deliveries it should get when `events` events cycle over the names."""
    names = event_names(len(hooks))
    per_name = {
        name: events // len(names) + (k < events % len(names)) for k, name in enumerate(names)
    }
    return {hook.path: sum(per_name[name] for name in hook.receives) for hook in hooks}


def admin_ports(log_path: Path, workers: int) -> list[int] | None:
    """The admin ports the bridge's processes logged (HTTP_PORT=0), once all have."""
    lines = log_path.read_bytes().splitlines()
    ports = [_PORT.decode(line).port for line in lines if LISTENING in line]
    return ports if len(ports) >= workers else None


async def create(session: aiohttp.ClientSession, port: int, bodies: list[dict[str, Any]]) -> None:
    slots = asyncio.Semaphore(CREATE_CONCURRENCY)
    url = f"http://127.0.0.1:{port}/webhooks"

    async def post(body: dict[str, Any]) -> None:
        async with slots, session.post(url, json=body, headers=AUTHORIZATION) as response:
            if response.status != 201:
                raise RuntimeError(f"POST /webhooks {body['id']}: {await response.text()}")

    await asyncio.gather(*(post(body) for body in bodies))


class _Port(msgspec.Struct):
    port: int


_PORT = msgspec.json.Decoder(_Port)


class _Listed(msgspec.Struct):
    id: str
    source: str


class _Webhooks(msgspec.Struct):
    webhooks: list[_Listed]


_WEBHOOKS = msgspec.json.Decoder(_Webhooks)


class _Readiness(msgspec.Struct):
    webhooks: str | None = None


_READINESS = msgspec.json.Decoder(_Readiness)


async def wait_live(session: aiohttp.ClientSession, ports: list[int]) -> None:
    """Until every process follows the bucket (`/readyz` says the catalog is live)."""
    deadline_s = time.monotonic() + LISTED_TIMEOUT_S
    for port in ports:
        while await _catalog(session, port) != "live":
            if time.monotonic() > deadline_s:
                raise RuntimeError(f"the bridge on port {port} never followed the webhooks")
            await asyncio.sleep(POLL_S)


async def _catalog(session: aiohttp.ClientSession, port: int) -> str | None:
    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
        return _READINESS.decode(await response.read()).webhooks


async def wait_listed(session: aiohttp.ClientSession, ports: list[int], ids: set[str]) -> None:
    """Until every process lists every id as an API webhook."""
    deadline_s = time.monotonic() + LISTED_TIMEOUT_S
    for port in ports:
        while not ids <= await _listed(session, port):
            if time.monotonic() > deadline_s:
                raise RuntimeError(f"the bridge on port {port} never listed all webhooks")
            await asyncio.sleep(POLL_S)


async def _listed(session: aiohttp.ClientSession, port: int) -> set[str]:
    url = f"http://127.0.0.1:{port}/webhooks"
    async with session.get(url, headers=AUTHORIZATION) as response:
        if response.status != 200:
            return set()
        listed = _WEBHOOKS.decode(await response.read()).webhooks
    return {hook.id for hook in listed if hook.source == "api"}
