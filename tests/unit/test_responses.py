"""The admin API's typed bodies encode to the public shapes, and the OpenAPI document's
schemas are the ones generated from them."""

from __future__ import annotations

from typing import Any

import msgspec

from bridge.admin import openapi, queries
from bridge.admin.responses import Error, ReplayRequest, Status, Webhook
from bridge.jetstream.dlq import Stored
from bridge.policy.dead_letter import DeadLetter, Endpoint
from bridge.policy.tasks import Attempt


def _dead_letter(**fields: Any) -> DeadLetter:
    return DeadLetter(
        delivery_id="dlv_1",
        event_id="evt-1",
        event="job.failed",
        job_id="j-1",
        tenant_id=None,
        endpoint=Endpoint(None, "https://user:pw@erp.example.com/hook", "default"),
        reason="max_retries_exceeded",
        attempts=(Attempt(1, "2026-01-14T10:30:00.000Z", 500, "boom", 3, "http_error"),),
        dead_lettered_at="2026-01-14T10:30:01.000Z",
        **fields,
    )


def test_a_listed_dead_letter_leads_with_seq_and_mark_and_leaves_defaults_out() -> None:
    record = _dead_letter(payload=msgspec.Raw(b'{"event":"job.failed"}'))
    view = msgspec.json.decode(msgspec.json.encode(queries.stored_view(Stored(7, record, None))))
    assert list(view)[:3] == ["seq", "replayed_at", "delivery_id"]
    assert (view["seq"], view["replayed_at"]) == (7, None)
    assert view["payload"] == {"event": "job.failed"}
    assert view["endpoint"]["url"] == "https://user:***@erp.example.com/hook"
    assert not {"raw", "raw_encoding", "raw_size", "raw_truncated", "error", "generation"} & set(
        view
    )


def test_a_listed_dead_letter_keeps_every_field_of_the_record() -> None:
    record = _dead_letter(raw="x", raw_encoding="utf-8", raw_size=1, generation=3)
    view = msgspec.to_builtins(queries.stored_view(Stored(1, record, "2026-01-14T11:00:00.000Z")))
    assert set(view) - {"seq", "replayed_at"} == set(msgspec.to_builtins(record))


def test_small_bodies() -> None:
    assert msgspec.json.encode(Status("ok")) == b'{"status":"ok"}'
    assert msgspec.json.encode(Error("bad")) == b'{"error":"bad"}'
    assert set(ReplayRequest.__struct_fields__) == {"event", "endpoint", "since", "all", "dry_run"}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def test_every_reference_in_the_document_resolves() -> None:
    document = openapi.document()
    schemas = document["components"]["schemas"]
    prefix = "#/components/schemas/"
    assert {ref.removeprefix(prefix) for ref in _refs(document)} <= set(schemas)
    assert {"Webhooks", "Webhook", "Entry", "StoredDeadLetter", "ReplayRequest"} <= set(schemas)


def test_the_schemas_are_generated_from_the_types() -> None:
    schemas = openapi.document()["components"]["schemas"]
    assert schemas["Webhook"]["required"] == list(Webhook.__struct_fields__)
    assert schemas["ReplayRequest"]["additionalProperties"] is False
    stored = schemas["StoredDeadLetter"]["properties"]
    assert set(stored) == {"seq", "replayed_at", *DeadLetter.__struct_fields__}
