"""The routes the console needs beside the admin API of SPEC §6 and §9: who the caller is
(`GET /whoami`, so the console shows write controls only to those who may write) and the
overview (`GET /stats`, bridge/admin/stats.py).

`/stats` covers every tenant (the counters are not kept per tenant), so a tenant-scoped token
is refused it (403) rather than shown other tenants' volumes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from bridge.admin import auth
from bridge.admin.backend import Backend
from bridge.admin.responses import Caller, Error
from bridge.admin.stats import Overview
from bridge.jetstream import dlq
from bridge.jetstream.bus import BusError, nats_errors

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SCOPED_STATS = "stats cover every tenant: this token is scoped to tenants"


def add_routes(app: web.Application, backend: Backend) -> None:
    app.router.add_get("/whoami", _whoami)
    app.router.add_get("/stats", _stats(backend, Overview(backend.metrics, time.time())))


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


async def _whoami(request: web.Request) -> web.Response:
    who = auth.principal(request)
    tenants = tuple(sorted(who.tenants)) if who.tenants is not None else None
    return _json(Caller(who.name, who.role, tenants, who.can_write))


def _stats(backend: Backend, overview: Overview) -> Handler:
    async def stats(request: web.Request) -> web.Response:
        if auth.principal(request).scoped:
            return _json(Error(SCOPED_STATS), 403)
        if backend.js is None:
            raise BusError("not connected to NATS yet")
        async with nats_errors("cannot read the dead-letter stream"):
            stored = await dlq.stored_count(backend.js, backend.settings.dlq_stream)
        return _json(overview.read(time.time(), stored))

    return stats
