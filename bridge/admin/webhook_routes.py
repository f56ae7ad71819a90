"""The webhook routes of SPEC §9: create, show, change, delete, rotate the secret, test; and
for the console (§10), a webhook's attempts over time.

API webhooks live in the KV bucket (`bridge.jetstream.webhook_store`); configured ones are
shown and tested but answer 409 to any change. A change is a compare-and-set on the
webhook's revision, which is also its ETag: `If-Match` with another revision answers 412;
without `If-Match`, a change made meanwhile is read again and the patch applied to it. URLs are
vetted like per-job URLs before they are stored, and again at every delivery. Each action is
in the audit trail before it is answered; no answer carries a secret, except a secret the
bridge generated, once.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
from aiohttp import web

from bridge.admin import audit_trail, history
from bridge.admin.auth import principal
from bridge.admin.backend import Backend
from bridge.admin.queries import status_of
from bridge.admin.responses import Error, History, Rotated, Tested, WebhookDetail
from bridge.config.durations import format_duration, parse_duration_s
from bridge.config.secret import REDACTED, Secret, redact_url
from bridge.config.values import ConfigError, as_secret
from bridge.config.webhooks import (
    API_KEYS,
    ID_PATTERN,
    NamedWebhook,
    RetiringSecret,
    parse_webhook,
)
from bridge.delivery.attempt import url_refusal
from bridge.jetstream import delivery_log
from bridge.jetstream.bus import Conflict, nats_errors
from bridge.jetstream.webhook_store import Stored, WebhookStore
from bridge.policy import asymmetric
from bridge.policy.audit import Action
from bridge.policy.merge_patch import merge_patch
from bridge.policy.routing import named_target
from bridge.policy.tasks import DeliveryTask, timestamp

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RECENT_ATTEMPTS = 20
ATTEMPTS_WITHIN_S = 24 * 3600.0
CHANGE_TRIES = 5  # compare-and-set rounds of a change without If-Match
SECRET_BYTES = 32
ID_BYTES = 8
ID_CHANGE = "id: cannot be changed"
SECRET_CHANGE = "secret: change it with POST /webhooks/{id}/secret/rotate"
KEPT_CHANGING = "the webhook kept changing meanwhile; try again"


class Refused(Exception):
    """The request cannot be served; `status` and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def add_routes(app: web.Application, backend: Backend) -> None:
    app.router.add_post("/webhooks", _answering(_create, backend))
    app.router.add_get("/webhooks/{id}", _answering(_show, backend))
    app.router.add_patch("/webhooks/{id}", _answering(_change, backend))
    app.router.add_delete("/webhooks/{id}", _answering(_delete, backend))
    app.router.add_post("/webhooks/{id}/secret/rotate", _answering(_rotate, backend))
    app.router.add_post("/webhooks/{id}/test", _answering(_test, backend))
    app.router.add_get("/webhooks/{id}/history", _answering(_history, backend))


def _answering(
    route: Callable[[web.Request, Backend], Awaitable[web.Response]], backend: Backend
) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        try:
            return await route(request, backend)
        except Refused as refused:
            return _json(Error(str(refused)), refused.status)
        except ConfigError as error:
            return _json(Error(str(error)), 400)

    return handler


def _json(data: object, status: int = 200, **headers: str) -> web.Response:
    body = msgspec.json.encode(data)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


# --- routes ---


async def _create(request: web.Request, backend: Backend) -> web.Response:
    body = await _object(request)
    body.setdefault("id", "wh_" + secrets.token_hex(ID_BYTES))
    generated = None if body.get("secret") is not None else new_secret()
    hook = parse_webhook({**body, "secret": body.get("secret") or generated}, **_API)
    _may_manage(request, hook.tenants)
    await _vet(backend, hook.url)
    configured = backend.router.named(hook.id)
    if configured is not None and configured.source == "config":
        raise Refused(409, f"id: {hook.id} is a configured webhook (YAML)")
    try:
        created, written = await _store(backend).create(hook)
    except Conflict:
        raise Refused(409, f"id: webhook {hook.id} already exists") from None
    await _audit(request, backend, "create", created, body)
    detail = await _detail(backend, created, written, generated)
    return _json(detail, 201, Location=f"/webhooks/{hook.id}", ETag=_etag(created.revision))


async def _show(request: web.Request, backend: Backend) -> web.Response:
    hook, stored = await _visible(request, backend)
    detail = await _detail(backend, hook, stored)
    if hook.source == "api":
        return _json(detail, ETag=_etag(hook.revision))
    return _json(detail)


async def _change(request: web.Request, backend: Backend) -> web.Response:
    patch = await _object(request)
    if "secret" in patch:
        raise Refused(400, SECRET_CHANGE)
    for _ in range(CHANGE_TRIES):
        hook, stored = await _changeable(request, backend)
        if patch.get("id", hook.id) != hook.id:
            raise Refused(400, ID_CHANGE)
        changed = await _patched(request, backend, hook, patch)
        try:
            updated, written = await _store(backend).update(changed, stored.created_at)
        except Conflict:
            _stale_unless_retrying(request)
            continue
        await _audit(request, backend, "update", updated, patch)
        return _json(await _detail(backend, updated, written), ETag=_etag(updated.revision))
    raise Refused(409, KEPT_CHANGING)


async def _delete(request: web.Request, backend: Backend) -> web.Response:
    for _ in range(CHANGE_TRIES):
        hook, _stored = await _changeable(request, backend)
        try:
            await _store(backend).delete(hook.id, hook.revision)
        except Conflict:
            _stale_unless_retrying(request)
            continue
        await _audit(request, backend, "delete", hook, {})
        return web.Response(status=204)
    raise Refused(409, KEPT_CHANGING)


async def _rotate(request: web.Request, backend: Backend) -> web.Response:
    body = await _object(request, allowed=frozenset({"secret"}))
    given = _secret(body["secret"]) if "secret" in body else None
    for _ in range(CHANGE_TRIES):
        hook, stored = await _changeable(request, backend)
        new = given if given is not None else Secret(new_secret(like=hook.secrets[0]))
        rotated = _rotated(hook, new, time.time() + backend.settings.secret_rotation_grace_s)
        try:
            updated, _written = await _store(backend).update(rotated, stored.created_at)
        except Conflict:
            _stale_unless_retrying(request)
            continue
        await _audit(request, backend, "rotate", updated, {"secret": REDACTED})
        return _json(_rotation(updated, None if given is not None else new.reveal()))
    raise Refused(409, KEPT_CHANGING)


async def _test(request: web.Request, backend: Backend) -> web.Response:
    hook, _stored = await _visible(request, backend)
    if backend.dispatcher is None:
        raise Refused(503, "not connected to NATS yet")
    task = _test_task(hook)
    result = await backend.dispatcher.send_test(task)
    status: Literal["success", "error"] = "success" if result.ok else "error"
    answer = Tested(
        status, result.status_code, result.message, result.duration_ms, task.delivery_id
    )
    await _audit(request, backend, "test", hook, msgspec.structs.asdict(answer))
    return _json(answer)


async def _history(request: web.Request, backend: Backend) -> web.Response:
    within_s = _within_s(request.query.get("within", ""))
    hook, _stored = await _visible(request, backend)
    now_s, stream = time.time(), backend.settings.delivery_log_stream
    if backend.js is None:
        raise Refused(503, "not connected to NATS yet")
    async with nats_errors("cannot read the delivery log"):
        attempts = [
            (history.unix_s(entry.at), entry.outcome == "success")
            async for entry in delivery_log.each_of_url(backend.js, stream, hook.url, within_s)
        ]
    found = history.buckets(attempts, now_s, within_s)
    return _json(History(hook.id, within_s, within_s / history.BUCKETS, found))


def _within_s(raw: str) -> float:
    """`?within=`: a duration up to ATTEMPTS_WITHIN_S (24 h, the default)."""
    if not raw:
        return ATTEMPTS_WITHIN_S
    try:
        within_s = parse_duration_s(raw)
    except ValueError as error:
        raise Refused(400, f"within: {error}") from None
    if not 60 <= within_s <= ATTEMPTS_WITHIN_S:
        raise Refused(400, "within: from 1m to 24h")
    return within_s


# --- pieces ---


async def _audit(
    request: web.Request, backend: Backend, action: Action, hook: NamedWebhook, change: Any
) -> None:
    revision = hook.revision if hook.source == "api" else None
    await audit_trail.audit(
        request, backend, action, hook.id, tenants=hook.tenants, change=change, revision=revision
    )


_API: dict[str, Any] = {"source": "api", "allowed": API_KEYS}


def new_secret(like: Secret | None = None) -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes, or a new ed25519 key
    `whsk_` when the secret it replaces (`like`) is one: a rotation keeps the key type."""
    if like is not None and asymmetric.is_private_key(like.reveal()):
        return asymmetric.new_private_key()
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


async def _object(request: web.Request, allowed: frozenset[str] | None = None) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    if allowed is not None and (unknown := sorted(set(body) - allowed)):
        raise Refused(400, f"{unknown[0]}: unknown field")
    return body


def _secret(value: Any) -> Secret:
    try:
        return as_secret(value)
    except ValueError as error:
        raise Refused(400, f"secret: {error}") from None


def _store(backend: Backend) -> WebhookStore:
    if backend.store is None:
        raise Refused(503, "not connected to NATS yet")
    return backend.store


async def _visible(request: web.Request, backend: Backend) -> tuple[NamedWebhook, Stored | None]:
    """The webhook of the path, from the bucket if it is an API one (another replica may have
    just changed it); 404 also when the caller's tenants do not cover it."""
    webhook_id = request.match_info["id"]
    if not ID_PATTERN.fullmatch(webhook_id):
        raise Refused(404, f"no webhook {webhook_id[:80]!r}")
    hook = backend.router.named(webhook_id)
    if hook is not None and hook.source == "config":
        found: tuple[NamedWebhook, Stored | None] | None = (hook, None)
    else:
        found = await _store(backend).get(webhook_id)
    if found is None or not principal(request).sees_webhook(found[0].tenants):
        raise Refused(404, f"no webhook {webhook_id}")
    return found


async def _changeable(request: web.Request, backend: Backend) -> tuple[NamedWebhook, Stored]:
    hook, stored = await _visible(request, backend)
    if stored is None:
        raise Refused(409, f"{hook.id} is a configured webhook (YAML): change it there")
    expected = request.headers.get("If-Match")
    if expected is not None and expected.strip() not in ("*", _etag(hook.revision)):
        raise Refused(412, f"If-Match: the webhook is at revision {hook.revision}")
    return hook, stored


def _stale_unless_retrying(request: web.Request) -> None:
    if "If-Match" in request.headers:
        raise Refused(412, "If-Match: the webhook changed meanwhile")


async def _patched(
    request: web.Request, backend: Backend, hook: NamedWebhook, patch: dict[str, Any]
) -> NamedWebhook:
    merged = merge_patch(editable(hook), patch)
    fields = parse_webhook({**merged, "secret": hook.secrets[0].reveal()}, **_API)
    _may_manage(request, fields.tenants)
    if fields.url != hook.url:
        await _vet(backend, fields.url)
    return msgspec.structs.replace(fields, revision=hook.revision, retiring=hook.retiring)


def editable(hook: NamedWebhook) -> dict[str, Any]:
    """The fields a merge patch applies to, with their real values (header values too)."""
    fields = {key: getattr(hook, key) for key in ("id", "url", "description", "scope", "active")}
    fields["ordering"] = hook.ordering
    optional = {"transform": hook.transform, "rate_limit": hook.rate_limit}
    optional |= {"timeout": hook.timeout_s, "max_retry": hook.max_retry}
    return {
        **fields,
        "events": list(hook.events),
        "tenants": list(hook.tenants),
        "headers": {name: value.reveal() for name, value in hook.headers},
        "format": hook.format,
        **{key: value for key, value in optional.items() if value is not None},
    }


def _may_manage(request: web.Request, tenants: tuple[str, ...]) -> None:
    if not principal(request).sees_webhook(tenants):
        raise Refused(403, "tenants: this token may only manage webhooks of its own tenants")


async def _vet(backend: Backend, url: str) -> None:
    settings = backend.settings
    reason = await url_refusal(
        url,
        require_https=settings.require_https,
        allow_private=settings.allow_private_urls,
        allowed_cidrs=settings.allowed_cidrs,
    )
    if reason is not None:
        raise Refused(400, f"url: {reason}")


def _rotated(hook: NamedWebhook, new: Secret, until_s: float) -> NamedWebhook:
    """The new secret signs first; the previous one, and any still retiring, sign beside it."""
    now_s = time.time()
    kept = tuple(old for old in hook.retiring if old.until_s > now_s)
    retiring = (RetiringSecret(hook.secrets[0], until_s), *kept)
    return msgspec.structs.replace(hook, secrets=(new,), retiring=retiring)


def _rotation(hook: NamedWebhook, generated: str | None) -> Rotated:
    until = timestamp(hook.retiring[0].until_s)
    if (key := public_key(hook)) is not None:
        return Rotated(hook.id, hook.revision, until, public_key=key)
    if generated is None:
        return Rotated(hook.id, hook.revision, until)
    return Rotated(hook.id, hook.revision, until, secret=generated)


def public_key(hook: NamedWebhook) -> str | None:
    """`whpk_...` when the webhook's current secret is an ed25519 key: what receivers need."""
    current = hook.secrets[0].reveal() if hook.secrets else ""
    return asymmetric.public_key(current) if asymmetric.is_private_key(current) else None


def _etag(revision: int) -> str:
    return f'"{revision}"'


def _test_task(hook: NamedWebhook) -> DeliveryTask:
    now_s, token = time.time(), secrets.token_hex(16)
    body = {"event": "webhook.test", "webhook_id": hook.id, "timestamp": timestamp(now_s)}
    return DeliveryTask(
        delivery_id=f"dlv_{token}",
        event_id=f"test-{token}",
        event="webhook.test",
        job_id=None,
        tenant_id=hook.tenants[0] if len(hook.tenants) == 1 else None,
        target=named_target(hook),
        body=msgspec.json.encode(body),
        published_at_s=now_s,
    )


async def _detail(
    backend: Backend, hook: NamedWebhook, stored: Stored | None, secret: str | None = None
) -> WebhookDetail:
    attempts = await _attempts(backend, hook.url)
    status, message = status_of(attempts[-1] if attempts else None)
    revision = hook.revision if hook.source == "api" else None
    retiring = [old.until_s for old in hook.retiring if old.until_s > time.time()]
    detail = WebhookDetail(
        id=hook.id,
        source=hook.source,
        url=redact_url(hook.url),
        description=hook.description,
        scope=hook.scope,
        events=hook.events,
        tenants=hook.tenants,
        active=hook.active,
        disabled_reason=hook.disabled_reason,
        headers={name: REDACTED for name, _value in hook.headers},
        transform=hook.transform,
        rate_limit=hook.rate_limit,
        timeout=format_duration(hook.timeout_s) if hook.timeout_s else None,
        max_retry=hook.max_retry,
        format=hook.format,
        ordering=hook.ordering,
        revision=revision,
        created_at=stored.created_at if stored else None,
        updated_at=stored.updated_at if stored else None,
        previous_secret_until=timestamp(max(retiring)) if retiring else None,
        public_key=public_key(hook),
        status=status,
        message=message,
        attempts=tuple(attempts),
    )
    return detail if secret is None else msgspec.structs.replace(detail, secret=secret)


async def _attempts(backend: Backend, url: str) -> list[delivery_log.Entry]:
    if backend.js is None:
        return []
    stream = backend.settings.delivery_log_stream
    async with nats_errors("cannot read the delivery log"):
        return await delivery_log.of_url(
            backend.js, stream, url, RECENT_ATTEMPTS, ATTEMPTS_WITHIN_S
        )
