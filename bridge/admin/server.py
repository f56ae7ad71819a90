"""The HTTP server: health, readiness, metrics, the admin API of SPEC §6, the console of §10.

Who may call which route, and which tenants' data a caller sees, is bridge/admin/auth.py's:
its guard runs before every route, and each handler scopes its answer to `principal(request)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.admin import (
    audit_trail,
    auth,
    console_api,
    console_routes,
    openapi,
    queries,
    scope,
    webhook_routes,
)
from bridge.admin.backend import Backend
from bridge.admin.responses import (
    MAX_LIMIT,
    Endpoints,
    Error,
    Readiness,
    ReplayRequest,
    Status,
)
from bridge.config.durations import parse_duration_s
from bridge.jetstream.bus import BusError, JetStream, nats_errors
from bridge.jetstream.dlq import Filter
from bridge.observability.metrics import Metrics

Ready = Callable[[], bool]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEFAULT_LIMIT = 100
REPLAY_KEYS = frozenset(ReplayRequest.__struct_fields__)


class BadRequest(Exception):
    """A query parameter or body is invalid; the message is one line."""


def build_app(backend: Backend, ready: Ready) -> web.Application:
    app = web.Application(middlewares=[auth.guard(backend.settings), _errors])
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz(ready, backend))
    app.router.add_get("/metrics", _metrics(backend.metrics))
    app.router.add_get("/openapi.json", _openapi)
    app.router.add_get("/audit", _audit(backend))
    app.router.add_get("/webhooks", _webhooks(backend))
    app.router.add_get("/deliveries", _deliveries(backend))
    app.router.add_get("/dlq", _dlq(backend))
    app.router.add_get("/endpoints", _endpoints(backend))
    app.router.add_post("/dlq/replay", _replay(backend))
    webhook_routes.add_routes(app, backend)
    console_api.add_routes(app, backend)
    console_routes.add_routes(app)
    return app


def _json(data: object, status: int = 200, **headers: str) -> web.Response:
    body = msgspec.json.encode(data)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _problem(status: int, message: str, **headers: str) -> web.Response:
    return _json(Error(message), status, **headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as error:
        return _problem(400, str(error))
    except BusError as error:
        return _problem(503, str(error))


async def _healthz(_request: web.Request) -> web.Response:
    return _json(Status("ok"))


def _readyz(ready: Ready, backend: Backend) -> Handler:
    async def readyz(_request: web.Request) -> web.Response:
        webhooks = backend.store.state if backend.store else None
        if ready():
            return _json(Readiness("ready", webhooks))
        return _json(Readiness("not ready", webhooks), 503)

    return readyz


def _metrics(metrics: Metrics) -> Handler:
    async def metrics_text(_request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics_text


async def _openapi(_request: web.Request) -> web.Response:
    return _json(openapi.document())


def _jetstream(backend: Backend) -> JetStream:
    if backend.js is None:
        raise BusError("not connected to NATS yet")
    return backend.js


def _webhooks(backend: Backend) -> Handler:
    async def webhooks(request: web.Request) -> web.Response:
        who = auth.principal(request)
        async with nats_errors("cannot read the delivery log"):
            keep = scope.keep(who)
            found = await queries.webhooks(
                _jetstream(backend), backend.settings, backend.router, keep
            )
            return _json(scope.webhooks(found, who))

    return webhooks


def _deliveries(backend: Backend) -> Handler:
    async def deliveries(request: web.Request) -> web.Response:
        query = _query(request)
        job_id, event_id = query.get("job_id") or None, query.get("event_id") or None
        limit = _limit(query.get("limit"))
        async with nats_errors("cannot read the delivery log"):
            js = _jetstream(backend)
            keep = scope.keep(auth.principal(request))
            settings = backend.settings
            found = await queries.deliveries(js, settings, job_id, event_id, limit, keep=keep)
            return _json(found)

    return deliveries


def _dlq(backend: Backend) -> Handler:
    async def dlq(request: web.Request) -> web.Response:
        query = _query(request)
        wanted, limit = _filter(query, auth.principal(request)), _limit(query.get("limit"))
        async with nats_errors("cannot read the dead-letter stream"):
            js = _jetstream(backend)
            return _json(await queries.dead_letters(js, backend.settings, wanted, limit))

    return dlq


def _replay(backend: Backend) -> Handler:
    async def replay(request: web.Request) -> web.Response:
        body, who = await _body(request), auth.principal(request)
        wanted, dry_run = _filter(body, who), _flag("dry_run", body.get("dry_run", False))
        async with nats_errors("cannot replay dead letters"):
            js = _jetstream(backend)
            settings, router = backend.settings, backend.router
            done = await queries.replay(js, settings, router, wanted, dry_run=dry_run)
            if not dry_run:
                given = {key: value for key, value in body.items() if key != "dry_run"}
                change = {"filter": given, "replayed": done.replayed, "skipped": done.skipped}
                tenants = tuple(sorted(who.tenants or ()))
                await audit_trail.audit(
                    request, backend, "replay", None, tenants=tenants, change=change
                )
            return _json(done)

    return replay


def _endpoints(backend: Backend) -> Handler:
    async def endpoints(request: web.Request) -> web.Response:
        if backend.health is None:
            raise BusError("not connected to NATS yet")
        answer = Endpoints(tuple(backend.health.statuses()))
        return _json(scope.endpoints(answer, auth.principal(request), backend.router))

    return endpoints


def _audit(backend: Backend) -> Handler:
    async def audit(request: web.Request) -> web.Response:
        query = _query(request)
        webhook, limit = query.get("webhook") or None, _limit(query.get("limit"))
        async with nats_errors("cannot read the audit trail"):
            js = _jetstream(backend)
            return _json(await audit_trail.trail(js, auth.principal(request), webhook, limit))

    return audit


def _query(request: web.Request) -> dict[str, str]:
    """The query parameters, each given at most once."""
    query = request.query
    if repeated := sorted({key for key in query if len(query.getall(key)) > 1}):
        raise BadRequest(f"{', '.join(repeated)}: given more than once")
    return dict(query)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}  # no body: replay everything not yet replayed
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if unknown := sorted(set(body) - REPLAY_KEYS):
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; expected {sorted(REPLAY_KEYS)}")
    return {key: value for key, value in body.items() if value is not None}


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit: expected a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _filter(given: dict[str, Any], who: auth.Principal) -> Filter:
    """`event`, `endpoint`, `since` (a duration) and `all` (include replayed), within the
    tenants `who` sees."""
    for key in ("event", "endpoint", "since"):
        if key in given and not isinstance(given[key], str):
            raise BadRequest(f"{key}: expected a string")
    return Filter(
        event=given.get("event") or None,
        endpoint=given.get("endpoint") or None,
        since_s=_since(given.get("since")),
        include_replayed=_flag("all", given.get("all", False)),
        tenants=who.tenants,
    )


def _since(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        return parse_duration_s(raw)
    except ValueError as error:
        raise BadRequest(f"since: {error}") from None


def _flag(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "0", "false", "no", ""):
        return raw.lower() in ("1", "true", "yes")
    raise BadRequest(f"{name}: expected true or false")


async def start_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app`; returns the runner to clean up. Raises OSError if the port is taken."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        return int(address[1])
    return 0
