"""A stand-in for the admin API's `/webhooks` routes (SPEC §9), in memory on 127.0.0.1:0.

The CLI's tests run against it while the real routes are being built: it keeps the contract
the CLI codes against (ETag revisions, JSON merge patch, If-Match → 412, write-only secrets
shown once when generated, config webhooks read-only → 409, unknown fields → 400, errors as
`{"error": "<one line>"}`) and records every request. Only the HTTP API is faked; nothing
here stands in for NATS, and the end-to-end test (tests/integration/test_cli_webhooks.py)
runs the same commands against a real bridge.

    api = FakeAdminApi(token="t")
    await api.start()
    api.seed("erp", "https://erp.example.com/hooks", source="config")
    api.test_answer = {"status": "error", ...}   # what POST /webhooks/{id}/test answers
    api.fail_with = 503                          # every request answers this, until reset
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridge.policy.merge_patch import merge_patch
from harness.ports import LOOPBACK

ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULTS: dict[str, Any] = {
    "description": "",
    "scope": "on_demand",
    "events": [],
    "tenants": [],
    "active": True,
    "headers": {},
    "transform": None,
    "rate_limit": None,
    "timeout": None,
    "max_retry": None,
    "ordering": "none",
}
WRITABLE = {"id", "url", "secret", *DEFAULTS}
SUCCESS = {
    "status": "success",
    "status_code": 200,
    "message": "status code: 200",
    "duration_ms": 12,
}


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it; `body` is its JSON (None when empty)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class FakeAdminApi:
    """The `/webhooks` routes of SPEC §9 over a dict; see the module docstring."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.stored: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.test_answer: dict[str, Any] = dict(SUCCESS)
        self.fail_with: int | None = None
        self.last_body = b""  # the body of the latest answer, as sent
        self._revision = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record, self._guard])
        app.router.add_get("/webhooks", self._list)
        app.router.add_post("/webhooks", self._create)
        app.router.add_get("/webhooks/{id}", self._show)
        app.router.add_patch("/webhooks/{id}", self._patch)
        app.router.add_delete("/webhooks/{id}", self._delete)
        app.router.add_post("/webhooks/{id}/secret/rotate", self._rotate)
        app.router.add_post("/webhooks/{id}/test", self._test)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def seed(self, webhook_id: str, url: str, source: str = "api", **fields: Any) -> None:
        """A webhook as if created earlier (`source="config"`: from the YAML file)."""
        self.stored[webhook_id] = self._new(webhook_id, url, source, fields)

    def _new(self, webhook_id: str, url: str, source: str, fields: dict[str, Any]) -> Any:
        hook = {**DEFAULTS, **fields, "id": webhook_id, "url": url, "source": source}
        hook.setdefault("secret", "whsec_" + secrets.token_urlsafe(32))
        hook["revision"] = self._next_revision() if source == "api" else None
        return hook

    def _next_revision(self) -> int:
        self._revision += 1
        return self._revision

    # --- middlewares ------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        response: web.Response = await handler(request)
        self.last_body = response.body if isinstance(response.body, bytes) else b""
        return response

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.fail_with is not None:
            return _error(self.fail_with, "NATS is not connected")
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "missing or wrong bearer token")
        response: web.StreamResponse = await handler(request)
        return response

    # --- routes -----------------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        env_entry = {"id": "erp.example.com", "source": "env", "default": True}
        env_entry |= {"url": "https://erp.example.com/h", "status": "pending", "message": ""}
        hooks = [self._listed(hook) for hook in self.stored.values()] + [env_entry]
        return web.json_response({"config": {}, "webhooks": hooks, "recent_attempts": []})

    async def _show(self, request: web.Request) -> web.Response:
        hook = self.stored.get(request.match_info["id"])
        if hook is None:
            return _error(404, f"no webhook {request.match_info['id']!r}")
        return web.json_response({**self._public(hook), "attempts": []}, headers=_etag(hook))

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        refused = _refusal(body) or (body.get("id") in self.stored and "id: already exists")
        if refused:
            return _error(409 if "exists" in refused else 400, refused)
        webhook_id = body.pop("id", None) or f"wh_{secrets.token_hex(4)}"
        generated = "secret" not in body
        hook = self._new(webhook_id, body.pop("url"), "api", body)
        self.stored[webhook_id] = hook
        shown = self._public(hook) | ({"secret": hook["secret"]} if generated else {})
        location = {"Location": f"/webhooks/{webhook_id}", **_etag(hook)}
        return web.json_response(shown, status=201, headers=location)

    async def _patch(self, request: web.Request) -> web.Response:
        hook, refused = self._writable(request)
        if hook is None:
            return refused
        patch = await request.json()
        if not isinstance(patch, dict) or (why := _unknown(patch)) or "id" in patch:
            return _error(400, why or "id: cannot be changed")
        merged = merge_patch(hook, patch)
        self.stored[hook["id"]] = {**DEFAULTS, **merged, "revision": self._next_revision()}
        new = self.stored[hook["id"]]
        return web.json_response(self._public(new), headers=_etag(new))

    async def _delete(self, request: web.Request) -> web.Response:
        hook, refused = self._writable(request)
        if hook is None:
            return refused
        del self.stored[hook["id"]]
        return web.Response(status=204)

    async def _rotate(self, request: web.Request) -> web.Response:
        hook, refused = self._writable(request)
        if hook is None:
            return refused
        hook["secret"] = "whsec_" + secrets.token_urlsafe(32)
        hook["revision"] = self._next_revision()
        return web.json_response({"id": hook["id"], "secret": hook["secret"]})

    async def _test(self, request: web.Request) -> web.Response:
        if request.match_info["id"] not in self.stored:
            return _error(404, f"no webhook {request.match_info['id']!r}")
        return web.json_response(self.test_answer)

    # --- helpers ----------------------------------------------------------------------------

    def _writable(self, request: web.Request) -> tuple[Any, web.Response]:
        """(the webhook, _) when it may change; (None, the refusal) otherwise."""
        webhook_id = request.match_info["id"]
        hook = self.stored.get(webhook_id)
        if hook is None:
            return None, _error(404, f"no webhook {webhook_id!r}")
        if hook["source"] == "config":
            return None, _error(409, f"{webhook_id}: from the config file, read-only at run time")
        expected = request.headers.get("If-Match")
        if expected is not None and expected != f'"{hook["revision"]}"':
            return None, _error(412, f"{webhook_id}: changed since revision {expected}")
        return hook, web.Response()

    def _public(self, hook: dict[str, Any]) -> dict[str, Any]:
        shown = {name: value for name, value in hook.items() if name != "secret"}
        shown["headers"] = dict.fromkeys(hook["headers"], "[redacted]")
        return shown | {"status": "pending", "message": ""}

    def _listed(self, hook: dict[str, Any]) -> dict[str, Any]:
        public = self._public(hook)
        return {**public, "default": hook["scope"] == "global", "last": None}


def _etag(hook: dict[str, Any]) -> dict[str, str]:
    return {} if hook["revision"] is None else {"ETag": f'"{hook["revision"]}"'}


def _unknown(body: dict[str, Any]) -> str | None:
    unknown = sorted(set(body) - WRITABLE)
    return f"{unknown[0]}: unknown field" if unknown else None


def _refusal(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "expected a JSON object"
    if why := _unknown(body):
        return why
    if not isinstance(body.get("url"), str) or not body["url"].startswith(("http://", "https://")):
        return "url: expected an http:// or https:// URL"
    if "id" in body and not ID.match(str(body["id"])):
        return "id: expected 1-64 of A-Z a-z 0-9 _ . -"
    return None
