"""Who is calling the admin API: bearer tokens, roles and tenant scopes (SPEC §9 Roles).

Tokens come from `ADMIN_TOKEN` (principal `admin`), `VIEWER_TOKEN` (`viewer`) and YAML
`tokens:` (their own names, optionally scoped to tenants). The guard middleware compares the
presented bearer token with every configured one in constant time, without stopping at a
match, so the answer's timing tells neither which token matched nor how many there are.

- Public paths (health, readiness, metrics, the OpenAPI document, the console's static
  files under `/ui/`) need no token.
- With no token configured at all, reads are open (principal `anonymous`, a viewer of every
  tenant) and writes answer 403, as before roles existed.
- Otherwise a missing or unknown token is 401 (`WWW-Authenticate: Bearer`), and a viewer's
  write is 403.

Handlers read the caller with `principal(request)`. A tenant-scoped principal sees only its
tenants' deliveries and dead letters, and only webhooks whose tenants all lie within its own:
never an all-tenants webhook.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from bridge.admin.responses import Error
from bridge.config.settings import Settings
from bridge.config.tokens import Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/ui"})
PUBLIC_PREFIX = "/ui/"  # the console's static files (bridge/admin/console_routes.py)
READ_METHODS = frozenset({"GET", "HEAD"})
NO_TOKEN_MESSAGE = "ADMIN_TOKEN is not set: mutating admin routes are disabled"
VIEWER_MESSAGE = "this token may only read (role viewer)"
UNAUTHORIZED_MESSAGE = "missing or wrong bearer token"


class Principal(msgspec.Struct, frozen=True):
    """The caller: its name (the audit trail's actor), role, and tenants (None = all)."""

    name: str
    role: Role
    tenants: frozenset[str] | None = None

    @property
    def can_write(self) -> bool:
        return self.role == "admin"

    @property
    def scoped(self) -> bool:
        return self.tenants is not None

    def sees_tenant(self, tenant_id: str | None) -> bool:
        """A delivery or dead letter of `tenant_id` (None: an event without a tenant)."""
        return self.tenants is None or (tenant_id is not None and tenant_id in self.tenants)

    def sees_webhook(self, tenants: tuple[str, ...]) -> bool:
        """A webhook (or audit record) of `tenants`; empty means every tenant, which only an
        unscoped principal sees."""
        if self.tenants is None:
            return True
        return bool(tenants) and self.tenants.issuperset(tenants)


ANONYMOUS = Principal("anonymous", "viewer")
PRINCIPAL = web.RequestKey("principal", Principal)  # request[PRINCIPAL]: who is calling


class Keyring:
    """The configured tokens, as bytes, each with the principal it stands for."""

    def __init__(self, settings: Settings) -> None:
        keys: list[tuple[bytes, Principal]] = []
        if settings.admin_token is not None:
            keys.append((settings.admin_token.reveal().encode(), Principal("admin", "admin")))
        if settings.viewer_token is not None:
            keys.append((settings.viewer_token.reveal().encode(), Principal("viewer", "viewer")))
        for entry in settings.tokens:
            tenants = frozenset(entry.tenants) if entry.tenants else None
            keys.append((entry.token.reveal().encode(), Principal(entry.name, entry.role, tenants)))
        self._keys = tuple(keys)

    @property
    def empty(self) -> bool:
        return not self._keys

    def identify(self, presented: bytes) -> Principal | None:
        """The principal whose token is `presented`; every token is compared, always."""
        matched: Principal | None = None
        for key, who in self._keys:
            if hmac.compare_digest(presented, key) and matched is None:
                matched = who
        return matched


def guard(settings: Settings) -> Any:
    """The middleware that authenticates and authorises every non-public request."""
    keyring = Keyring(settings)

    @web.middleware
    async def authorise(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIX):
            return await handler(request)
        who = _identify(keyring, request)
        if who is None:
            return _refuse(401, UNAUTHORIZED_MESSAGE, **{"WWW-Authenticate": "Bearer"})
        if request.method not in READ_METHODS and not who.can_write:
            return _refuse(403, NO_TOKEN_MESSAGE if keyring.empty else VIEWER_MESSAGE)
        request[PRINCIPAL] = who
        return await handler(request)

    return authorise


def _identify(keyring: Keyring, request: web.Request) -> Principal | None:
    if keyring.empty:
        return ANONYMOUS
    presented = _bearer(request.headers.get("Authorization", ""))
    return keyring.identify(presented) if presented else None


def principal(request: web.Request) -> Principal:
    """The caller of a request that passed the guard (public paths: anonymous)."""
    who: Principal = request.get(PRINCIPAL, ANONYMOUS)
    return who


def _bearer(authorization: str) -> bytes:
    """The token's bytes as sent (aiohttp keeps undecodable bytes as surrogates); a value
    that cannot be bytes again matches no token."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return b""
    try:
        return credentials.strip().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return b""


def _refuse(status: int, message: str, **headers: str) -> web.Response:
    body = msgspec.json.encode(Error(message))
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)
