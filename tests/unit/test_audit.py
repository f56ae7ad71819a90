"""The audit record: redaction of the change (a table), subjects, and the stream against a
real nats-server (write, then read back by webhook, limit and visibility)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from nats.js import JetStreamContext

from bridge.admin import audit_trail
from bridge.admin.auth import ANONYMOUS, PRINCIPAL, Principal
from bridge.admin.server import Backend
from bridge.config.secret import REDACTED
from bridge.config.settings import load_settings
from bridge.jetstream import audit
from bridge.jetstream.bus import BusError, ensure_topology
from bridge.observability.metrics import Metrics
from bridge.policy.audit import (
    AUDIT_STREAM,
    AuditRecord,
    decode,
    encode,
    redact_change,
    subject_filter,
    subject_for,
)
from bridge.policy.routing import Router


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {}),
        ({"id": "erp", "active": False}, {"id": "erp", "active": False}),
        ({"secret": "whsec_abc"}, {"secret": REDACTED}),
        ({"secrets": ["new", "old"]}, {"secrets": [REDACTED, REDACTED]}),
        ({"secret": None}, {"secret": None}),
        ({"token": "t"}, {"token": REDACTED}),
        (
            {"headers": {"Authorization": "Bearer x", "X-Gone": None}},
            {"headers": {"Authorization": REDACTED, "X-Gone": None}},
        ),
        ({"url": "https://u:pw@h.example/x"}, {"url": f"https://u:{REDACTED}@h.example/x"}),
        ({"url": "https://h.example/x?y=1"}, {"url": "https://h.example/x?y=1"}),
        ({"events": ["job.*"], "tenants": ["acme"]}, {"events": ["job.*"], "tenants": ["acme"]}),
        (
            {"filter": {"endpoint": "https://a:b@h.example/", "since": "1h"}, "replayed": 2},
            {
                "filter": {"endpoint": f"https://a:{REDACTED}@h.example/", "since": "1h"},
                "replayed": 2,
            },
        ),
        ({"nested": [{"Secret": "s"}]}, {"nested": [{"Secret": REDACTED}]}),
        ({"rate_limit": 5, "timeout": "2s"}, {"rate_limit": 5, "timeout": "2s"}),
    ],
)
def test_redact_change(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert redact_change(fields) == expected


def test_redact_change_leaves_its_input_alone() -> None:
    fields = {"secret": "s", "headers": {"A": "b"}}
    redact_change(fields)
    assert fields == {"secret": "s", "headers": {"A": "b"}}


@pytest.mark.parametrize(
    ("action", "webhook_id", "matches"),
    [("create", "erp", True), ("rotate", "erp", True), ("create", "erp.eu", False)],
)
def test_one_webhooks_subject_filter(action: Any, webhook_id: str, matches: bool) -> None:
    subject, wanted = subject_for(action, webhook_id), subject_filter("erp")
    assert subject.count(".") == wanted.count(".") == 4  # dots in ids never add tokens
    assert (subject.split(".")[-1] == wanted.split(".")[-1]) is matches


def test_replay_without_a_webhook() -> None:
    assert subject_for("replay", None) == "greenlight.webhooks.audit.replay._"
    assert subject_filter(None) == "greenlight.webhooks.audit.>"


def _record(action: Any, webhook_id: str | None, tenants: tuple[str, ...] = ()) -> AuditRecord:
    return AuditRecord(
        at="2026-01-14T10:30:00.000Z",
        actor="ops",
        action=action,
        webhook_id=webhook_id,
        tenants=tenants,
        revision=1 if webhook_id else None,
        change={"id": webhook_id} if webhook_id else {},
    )


def test_record_round_trips() -> None:
    record = _record("create", "erp", ("acme",))
    assert decode(encode(record)) == record


@pytest.fixture
async def audit_js(js: JetStreamContext, nats_server: Any) -> JetStreamContext:
    await ensure_topology(js, load_settings({"NATS_URL": nats_server.url}))
    return js


@pytest.fixture
def backend_on(audit_js: JetStreamContext) -> Backend:
    settings = load_settings({})
    backend = Backend(settings, Router(settings), Metrics())
    backend.js = audit_js
    return backend


async def test_write_then_read_back(audit_js: JetStreamContext) -> None:
    written = [
        _record("create", "erp", ("acme",)),
        _record("create", "crm", ("globex",)),
        _record("update", "erp", ("acme",)),
        _record("replay", None, ("acme",)),
        _record("delete", "erp.eu", ()),
        _record("rotate", "erp", ("acme",)),
    ]
    for record in written:
        await audit.write(audit_js, record)
    info = await audit_js.stream_info(AUDIT_STREAM)
    assert info.state.messages == len(written)

    def everything(_record: AuditRecord) -> bool:
        return True

    def acme_only(record: AuditRecord) -> bool:
        return bool(record.tenants) and set(record.tenants) <= {"acme"}

    read = audit.read
    assert await read(audit_js, webhook=None, limit=100, visible=everything) == written
    assert await read(audit_js, webhook=None, limit=2, visible=everything) == written[-2:]
    erp = [written[0], written[2], written[5]]
    assert await read(audit_js, webhook="erp", limit=100, visible=everything) == erp
    assert await read(audit_js, webhook="erp", limit=1, visible=everything) == erp[-1:]
    assert await read(audit_js, webhook="nobody", limit=5, visible=everything) == []
    acme = [written[0], written[2], written[3], written[5]]
    assert await read(audit_js, webhook=None, limit=100, visible=acme_only) == acme
    # a sparse filter over a longer stream still finds the oldest match
    assert await read(audit_js, webhook=None, limit=4, visible=acme_only) == acme


async def test_read_of_an_empty_trail(audit_js: JetStreamContext) -> None:
    assert await audit.read(audit_js, webhook=None, limit=10, visible=lambda _r: True) == []


async def test_the_facade_records_the_principal_redacts_and_counts(
    audit_js: JetStreamContext, backend_on: Backend
) -> None:
    backend = backend_on
    request = make_mocked_request("PATCH", "/webhooks/erp")
    request[PRINCIPAL] = Principal("acme-ops", "admin", frozenset({"acme"}))
    change = {"url": "https://u:pw@h.example/", "secret": "whsec_x", "headers": {"A": "b"}}
    await audit_trail.audit(request, backend, "update", "erp", tenants=("acme",), change=change)
    await audit_trail.audit(request, backend, "test", "erp", tenants=("acme",), change={})

    (updated, tested) = (await audit_trail.trail(audit_js, ANONYMOUS, None, 10)).audit
    assert (updated.actor, updated.action, updated.webhook_id) == ("acme-ops", "update", "erp")
    assert updated.change == {
        "url": f"https://u:{REDACTED}@h.example/",
        "secret": REDACTED,
        "headers": {"A": REDACTED},
    }
    assert tested.action == "test"
    counted = {
        action: backend.metrics.registry.get_sample_value(
            "webhook_bridge_config_changes_total", {"action": action}
        )
        for action in ("create", "update", "delete", "rotate")
    }
    assert counted == {"create": 0.0, "update": 1.0, "delete": 0.0, "rotate": 0.0}


async def test_the_facade_needs_nats() -> None:
    settings = load_settings({})
    backend = Backend(settings, Router(settings), Metrics())
    with pytest.raises(BusError):
        await audit_trail.audit(
            make_mocked_request("DELETE", "/webhooks/erp"),
            backend,
            "delete",
            "erp",
            tenants=(),
            change={},
        )
