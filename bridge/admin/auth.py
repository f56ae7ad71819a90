"""Who is asking: the principal of a request (placeholder until roles land)."""

from __future__ import annotations

import msgspec
from aiohttp import web


class Principal(msgspec.Struct, frozen=True):
    name: str
    role: str
    tenants: frozenset[str] | None = None

    def sees_webhook(self, tenants: tuple[str, ...]) -> bool:
        if self.tenants is None:
            return True
        return bool(tenants) and set(tenants) <= self.tenants


ADMIN = Principal("admin", "admin")


def principal(request: web.Request) -> Principal:
    found = request.get("principal")
    return found if isinstance(found, Principal) else ADMIN
