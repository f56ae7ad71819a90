"""Roles, tenant scopes and the audit trail end to end (SPEC §9), against a real bridge.

`ROUTES` is the role table: every route with the status each kind of caller gets. Add a row
per new route; the test reports every cell that differs at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness.bridge import TEST_SECRET, BridgeProcess, Bridges, run_cli
from harness.publish import has_dead_letters, job_event, publish_event
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

AUDIT_STREAM = "GREENLIGHT_WEBHOOKS_AUDIT"
NAMED_SECRET = "acme-crm-secret-value"
URL_PASSWORD = "pw-in-a-filter-url"
TOKENS = {
    "admin": "t-admin-value",
    "viewer": "t-viewer-value",
    "scoped_admin": "t-acme-admin-value",
    "scoped_viewer": "t-acme-viewer-value",
    "other_admin": "t-globex-admin-value",
}
SECRETS = (*TOKENS.values(), NAMED_SECRET, TEST_SECRET, URL_PASSWORD)
CONFIG = """webhooks:
  - id: acme-crm
    url: {url}
    secret: {secret}
    tenants: [acme]
tokens:
  - {{name: acme-admin, token: '${{ACME_ADMIN}}', role: admin, tenants: [acme]}}
  - {{name: acme-viewer, token: {scoped_viewer}, role: viewer, tenants: [acme]}}
  - {{name: globex-admin, token: {other_admin}, role: admin, tenants: [globex]}}
"""


def headers(role: str) -> dict[str, str]:
    """The Authorization header of a role; `none` sends none, `wrong` an unknown token."""
    if role == "none":
        return {}
    return {"Authorization": f"Bearer {TOKENS.get(role, 'not-a-configured-token')}"}


ROLES = ("admin", "viewer", "scoped_admin", "scoped_viewer", "none", "wrong")
PUBLIC = dict.fromkeys(ROLES, 200)
READ = {**PUBLIC, "none": 401, "wrong": 401}
WRITE = {**READ, "viewer": 403, "scoped_viewer": 403}
CREATED = {**WRITE, "admin": 201, "scoped_admin": 201}
CONFIGURED = {**WRITE, "admin": 409, "scoped_admin": 409}  # a YAML webhook cannot change
MISSING = {**WRITE, "admin": 404, "scoped_admin": 404}
ALL_TENANTS = {**READ, "scoped_admin": 403, "scoped_viewer": 403}  # figures of every tenant
ACME_HOOK = {"url": "http://127.0.0.1:9/roles", "tenants": ["acme"]}  # never called


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    expected: Mapping[str, int]  # role → status
    body: Any = field(default=None)


ROUTES = [
    Route("GET", "/healthz", PUBLIC),
    Route("GET", "/metrics", PUBLIC),
    Route("GET", "/openapi.json", PUBLIC),
    Route("GET", "/webhooks", READ),
    Route("GET", "/deliveries", READ),
    Route("GET", "/deliveries?job_id=j-acme", READ),
    Route("GET", "/dlq", READ),
    Route("GET", "/audit", READ),
    Route("GET", "/audit?webhook=acme-crm&limit=5", READ),
    Route("GET", "/endpoints", READ),
    Route("POST", "/dlq/replay", WRITE, {"dry_run": True}),
    Route("GET", "/webhooks/acme-crm", READ),
    Route("POST", "/webhooks", CREATED, ACME_HOOK),
    Route("PATCH", "/webhooks/acme-crm", CONFIGURED, {"active": False}),
    Route("DELETE", "/webhooks/acme-crm", CONFIGURED),
    Route("POST", "/webhooks/acme-crm/secret/rotate", CONFIGURED),
    Route("POST", "/webhooks/acme-crm/test", WRITE),
    Route("DELETE", "/webhooks/no-such-hook", MISSING),
    Route("GET", "/webhooks/acme-crm/history?within=1h", READ),
    Route("GET", "/whoami", READ),
    Route("GET", "/stats", ALL_TENANTS),
    Route("GET", "/ui", PUBLIC),  # the console's files: public, its API calls are not
    Route("GET", "/ui/", PUBLIC),
    Route("GET", "/ui/app.js", PUBLIC),
]


async def call(bridge: BridgeProcess, route: Route, role: str) -> tuple[int, str]:
    answer = await bridge.call(route.method, route.path, route.body, headers(role))
    return answer.status, answer.text


async def _bridge_with_two_tenants_dead_letters(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> BridgeProcess:
    """A bridge with every kind of token, after one dead letter of acme's and one of globex's."""
    receiver.reply("/dead", 500)
    config = tmp_path / "bridge.yaml"
    config.write_text(
        CONFIG.format(url=receiver.url("/acme"), secret=NAMED_SECRET, **TOKENS), encoding="utf-8"
    )
    env = {
        "BRIDGE_CONFIG": str(config),
        "ADMIN_TOKEN": TOKENS["admin"],
        "VIEWER_TOKEN": TOKENS["viewer"],
        "ACME_ADMIN": TOKENS["scoped_admin"],
        "DEFAULT_WEBHOOK_URLS": receiver.url("/dead"),
        "WEBHOOK_MAX_RETRY": "0",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",  # the API webhooks of these tests are on loopback
    }
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.failed", "j-acme", tenant_id="acme"), "evt-acme")
    await publish_event(js, job_event("job.failed", "j-globex", tenant_id="globex"), "evt-globex")
    await bridges.wait_for(has_dead_letters(js, 2), 15, "no dead letters of both tenants")
    return bridge


async def test_every_role_on_every_route(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    bridge = await _bridge_with_two_tenants_dead_letters(js, receiver, bridges, tmp_path)
    wrong: list[str] = []
    for route in ROUTES:
        for role, expected in route.expected.items():
            status, body = await call(bridge, route, role)
            if status != expected:
                wrong.append(f"{route.method} {route.path} as {role}: {status}, not {expected}")
            if status == 401:
                assert "bearer token" in body
            leaked = [secret for secret in SECRETS if secret in body]
            assert not leaked, f"{route.method} {route.path} as {role} shows a secret"
    assert not wrong, "\n".join(wrong)


async def _json(bridge: BridgeProcess, path: str, role: str) -> Any:
    status, body = await bridge.get(path, headers=headers(role))
    assert status == 200, f"{path} as {role}: {status} {body}"
    return json.loads(body)


def _tenants(records: list[dict[str, Any]]) -> set[str | None]:
    return {record["tenant_id"] for record in records}


async def test_scoped_tokens_see_and_replay_only_their_tenants(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    bridge = await _bridge_with_two_tenants_dead_letters(js, receiver, bridges, tmp_path)
    assert _tenants((await _json(bridge, "/dlq", "admin"))["dead_letters"]) == {"acme", "globex"}
    for role in ("scoped_admin", "scoped_viewer"):
        dlq = await _json(bridge, "/dlq", role)
        assert (dlq["count"], _tenants(dlq["dead_letters"])) == (1, {"acme"})
        deliveries = (await _json(bridge, "/deliveries", role))["deliveries"]
        assert _tenants(deliveries) == {"acme"}
        assert (await _json(bridge, "/deliveries?job_id=j-globex", role))["deliveries"] == []
        webhooks = await _json(bridge, "/webhooks", role)
        assert webhooks["config"] == {}
        assert [hook["id"] for hook in webhooks["webhooks"]] == ["acme-crm"]
        assert _tenants(webhooks["recent_attempts"]) <= {"acme"}
    assert _tenants((await _json(bridge, "/dlq", "other_admin"))["dead_letters"]) == {"globex"}
    unscoped = await _json(bridge, "/webhooks", "viewer")
    assert unscoped["config"]["webhooks"][0]["id"] == "acme-crm"
    assert len(unscoped["webhooks"]) == 2

    status, body = await bridge.post("/dlq/replay", {}, headers=headers("scoped_admin"))
    assert status == 200, body
    assert json.loads(body)["replayed"] == 1
    everything = (await _json(bridge, "/dlq?all=true", "admin"))["dead_letters"]
    globex = [d for d in everything if d["tenant_id"] == "globex"]
    assert [d["replayed_at"] for d in globex] == [None], "a scoped replay reached globex"
    acme_replayed = [d for d in everything if d["tenant_id"] == "acme" and d["replayed_at"]]
    assert len(acme_replayed) == 1


async def test_the_audit_trail_records_replays_without_secrets(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    bridge = await _bridge_with_two_tenants_dead_letters(js, receiver, bridges, tmp_path)
    dry = {"dry_run": True}
    assert (await bridge.post("/dlq/replay", dry, headers=headers("admin")))[0] == 200
    password_filter = {"endpoint": f"https://ops:{URL_PASSWORD}@elsewhere.example/"}
    for role, body in (("scoped_admin", {}), ("admin", password_filter)):
        status, text = await bridge.post("/dlq/replay", body, headers=headers(role))
        assert status == 200, text

    records = (await _json(bridge, "/audit", "admin"))["audit"]
    assert [(r["actor"], r["action"], r["webhook_id"]) for r in records] == [
        ("acme-admin", "replay", None),
        ("admin", "replay", None),
    ], "a dry run is not audited; each replay is, with its actor"
    scoped, unscoped = records
    assert scoped["tenants"] == ["acme"]
    assert (scoped["change"]["replayed"], unscoped["change"]["replayed"]) == (1, 0)
    assert unscoped["tenants"] == []
    assert unscoped["change"]["filter"]["endpoint"] == "https://ops:***@elsewhere.example/"

    visible = {role: (await _json(bridge, "/audit", role))["audit"] for role in TOKENS}
    assert [r["actor"] for r in visible["scoped_viewer"]] == ["acme-admin"]
    assert visible["other_admin"] == [], "globex sees acme's replay or an all-tenants one"
    assert visible["viewer"] == records

    stored = await _raw_messages(js, AUDIT_STREAM)
    assert len(stored) == 2
    leaked = [secret for secret in SECRETS if any(secret.encode() in raw for raw in stored)]
    assert not leaked, f"the audit stream holds {len(leaked)} secret value(s)"


async def _raw_messages(js: JetStreamContext, stream: str) -> list[bytes]:
    """Every stored message of `stream`: subject, headers and body, as bytes."""
    state = (await js.stream_info(stream)).state
    found = []
    for seq in range(state.first_seq, state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        found.append(f"{msg.subject} {msg.headers}".encode() + (msg.data or b""))
    return found


async def test_config_check_redacts_tokens_and_refuses_bad_ones(tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text("tokens:\n  - {name: ops, token: t-ops-value, role: admin, tenants: [a]}\n")
    env = {"BRIDGE_CONFIG": str(config), "VIEWER_TOKEN": "t-viewer-value"}
    good = await run_cli(["config", "check"], env)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["tokens"] == [
        {"name": "ops", "token": "***", "role": "admin", "tenants": ["a"]}
    ]
    assert "t-ops-value" not in good.stdout + good.stderr
    assert "t-viewer-value" not in good.stdout + good.stderr

    config.write_text("tokens:\n  - {name: ops, token: t-ops-value, role: owner}\n")
    bad = await run_cli(["config", "check"], env)
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .endswith("bridge.yaml: tokens[0].role: expected admin or viewer")
    )
    assert "t-ops-value" not in bad.stderr


async def test_scoped_tokens_see_and_touch_only_their_tenants_webhooks(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    bridge = await _bridge_with_two_tenants_dead_letters(js, receiver, bridges, tmp_path)
    for hook in (
        {"id": "globex-erp", "url": receiver.url("/globex"), "tenants": ["globex"]},
        {"id": "everyone", "url": receiver.url("/all")},
    ):
        created = await bridge.call("POST", "/webhooks", hook, headers("admin"))
        assert created.status == 201, created.text
    acme = headers("scoped_admin")
    for other in ("globex-erp", "everyone"):
        for method, path in (
            ("GET", f"/webhooks/{other}"),
            ("PATCH", f"/webhooks/{other}"),
            ("DELETE", f"/webhooks/{other}"),
            ("POST", f"/webhooks/{other}/test"),
            ("POST", f"/webhooks/{other}/secret/rotate"),
        ):
            answer = await bridge.call(
                method, path, {"active": False} if method == "PATCH" else None, acme
            )
            assert answer.status == 404, f"{method} {path}: {answer.status}"
    for tenants in (["globex"], [], ["acme", "globex"]):
        body = {"url": receiver.url("/x"), "tenants": tenants}
        refused = await bridge.call("POST", "/webhooks", body, acme)
        assert refused.status == 403, tenants
    mine = await bridge.call("POST", "/webhooks", {**ACME_HOOK, "id": "acme-bi"}, acme)
    assert mine.status == 201, mine.text
    widened = await bridge.call("PATCH", "/webhooks/acme-bi", {"tenants": ["globex"]}, acme)
    assert widened.status == 403
    listed = {
        hook["id"] for hook in (await _json(bridge, "/webhooks", "scoped_viewer"))["webhooks"]
    }
    assert listed == {"acme-crm", "acme-bi"}
    seen = {r["webhook_id"] for r in (await _json(bridge, "/audit", "scoped_viewer"))["audit"]}
    assert seen == {"acme-bi"}, "acme sees the audit of other tenants' webhooks"
    everything = await _json(bridge, "/webhooks", "admin")
    assert {"globex-erp", "everyone", "acme-bi"} <= {hook["id"] for hook in everything["webhooks"]}
