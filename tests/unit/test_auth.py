"""Principals and the guard: who sees which tenants, which token may do what (no NATS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from harness.admin_app import admin_client

from bridge.admin.auth import ANONYMOUS, Keyring, Principal
from bridge.config.settings import load_settings

ACME = frozenset({"acme"})
ACME_GLOBEX = frozenset({"acme", "globex"})


@pytest.mark.parametrize(
    ("tenants", "tenant_id", "sees"),
    [
        (None, "acme", True),
        (None, None, True),
        (ACME, "acme", True),
        (ACME, "globex", False),
        (ACME, None, False),  # an event without a tenant is no scoped token's
        (ACME, "", False),
        (ACME_GLOBEX, "globex", True),
    ],
)
def test_sees_tenant(tenants: frozenset[str] | None, tenant_id: str | None, sees: bool) -> None:
    assert Principal("p", "viewer", tenants).sees_tenant(tenant_id) is sees


@pytest.mark.parametrize(
    ("tenants", "webhook_tenants", "sees"),
    [
        (None, (), True),
        (None, ("acme",), True),
        (ACME, (), False),  # an all-tenants webhook is never a scoped token's
        (ACME, ("acme",), True),
        (ACME, ("acme", "globex"), False),  # partly another tenant's
        (ACME, ("globex",), False),
        (ACME_GLOBEX, ("acme", "globex"), True),
        (ACME_GLOBEX, ("globex",), True),
    ],
)
def test_sees_webhook(
    tenants: frozenset[str] | None, webhook_tenants: tuple[str, ...], sees: bool
) -> None:
    assert Principal("p", "admin", tenants).sees_webhook(webhook_tenants) is sees


@pytest.mark.parametrize(
    ("who", "can_write"),
    [
        (Principal("a", "admin"), True),
        (Principal("a", "admin", ACME), True),
        (Principal("v", "viewer"), False),
        (ANONYMOUS, False),
    ],
)
def test_only_admins_write(who: Principal, can_write: bool) -> None:
    assert who.can_write is can_write


TOKENS_YAML = """tokens:
  - {name: acme-admin, token: t-acme-admin, role: admin, tenants: [acme]}
  - {name: auditor, token: t-auditor, role: viewer}
"""


def test_keyring_identifies_every_kind_of_token(tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(TOKENS_YAML)
    env = {"BRIDGE_CONFIG": str(config), "ADMIN_TOKEN": "t-admin", "VIEWER_TOKEN": "t-viewer"}
    keyring = Keyring(load_settings(env))
    assert keyring.identify(b"t-admin") == Principal("admin", "admin")
    assert keyring.identify(b"t-viewer") == Principal("viewer", "viewer")
    assert keyring.identify(b"t-acme-admin") == Principal("acme-admin", "admin", ACME)
    assert keyring.identify(b"t-auditor") == Principal("auditor", "viewer")
    assert keyring.identify(b"t-admi") is None
    assert keyring.identify(b"") is None
    assert Keyring(load_settings({})).empty


@pytest.fixture
async def viewer_only() -> AsyncIterator[TestClient[object, object]]:
    """Only VIEWER_TOKEN: a token is configured, so nothing is open, and nobody may write."""
    async with admin_client({"VIEWER_TOKEN": "t-viewer"}) as client:
        yield client


async def test_with_only_a_viewer_token(viewer_only: TestClient[object, object]) -> None:
    viewer = {"Authorization": "Bearer t-viewer"}
    assert (await viewer_only.get("/dlq")).status == 401
    assert (await viewer_only.get("/dlq", headers=viewer)).status == 503  # no NATS here
    assert (await viewer_only.get("/audit", headers=viewer)).status == 503
    response = await viewer_only.post("/dlq/replay", json={}, headers=viewer)
    assert response.status == 403
    assert await response.json() == {"error": "this token may only read (role viewer)"}
    assert (await viewer_only.post("/dlq/replay", json={})).status == 401
