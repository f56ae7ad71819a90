"""The audit record: redaction of the change (a table), subjects, and the stream against a
real nats-server (write, then read back by webhook, limit and visibility)."""

from __future__ import annotations

from typing import Any

import pytest
from nats.js import JetStreamContext

from bridge.config.secret import REDACTED
from bridge.config.settings import load_settings
from bridge.jetstream import audit
from bridge.jetstream.bus import ensure_topology
from bridge.policy.audit import (
    AUDIT_STREAM,
    AuditRecord,
    decode,
    encode,
    redact_change,
    subject_filter,
    subject_for,
)


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
