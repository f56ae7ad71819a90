"""The audit trail of admin actions (placeholder until the audit stream lands)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.admin.backend import Backend
from bridge.config.webhooks import NamedWebhook


async def write(
    request: web.Request, backend: Backend, action: str, hook: NamedWebhook, change: dict[str, Any]
) -> None:
    return None
