"""The OpenAPI 3.0 document of the HTTP server (served at `GET /openapi.json`)."""

from __future__ import annotations

from typing import Any

from bridge import __version__

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_NULLABLE_INT = {"type": "integer", "nullable": True}
_ERROR = {"$ref": "#/components/schemas/Error"}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or _STRING,
    }


_LIMIT = _query(
    "limit", "Most recent entries to return", {"type": "integer", "minimum": 1, "maximum": 1000}
)
_FILTERS = [
    _query("event", "Event name, e.g. job.completed"),
    _query("endpoint", "Webhook id, URL or host"),
    _query("since", "Only dead letters newer than this duration, e.g. 1h"),
    _query("all", "Include dead letters already replayed", {"type": "boolean"}),
]

_ADMIN_ERRORS = {
    "400": _json_response("Invalid parameter", _ERROR),
    "401": _json_response("Missing or wrong bearer token (when ADMIN_TOKEN is set)", _ERROR),
    "503": _json_response("Not connected to NATS", _ERROR),
}

_ENDPOINT = _object(
    ["id", "url", "source"],
    id=_NULLABLE_STRING,
    url=_NULLABLE_STRING,
    source={"type": "string", "nullable": True, "enum": ["named", "default", "job", None]},
)

_ATTEMPT = _object(
    [
        "delivery_id",
        "event_id",
        "event",
        "endpoint",
        "attempt",
        "at",
        "outcome",
        "message",
        "duration_ms",
        "result",
    ],
    delivery_id=_STRING,
    event_id=_STRING,
    event=_STRING,
    job_id=_NULLABLE_STRING,
    tenant_id=_NULLABLE_STRING,
    endpoint=_ref("Endpoint"),
    attempt={"type": "integer"},
    at=_STRING,
    status_code=_NULLABLE_INT,
    outcome={
        "type": "string",
        "enum": ["success", "http_error", "timeout", "connection_error", "blocked"],
    },
    message=_STRING,
    duration_ms={"type": "integer"},
    result={"type": "string", "enum": ["delivered", "retry", "dead_letter"]},
    retry_at=_NULLABLE_STRING,
    reason=_NULLABLE_STRING,
)

_DEAD_LETTER = {
    **_object(
        [
            "seq",
            "replayed_at",
            "delivery_id",
            "event_id",
            "endpoint",
            "reason",
            "attempts",
            "dead_lettered_at",
        ],
        seq={"type": "integer"},
        replayed_at=_NULLABLE_STRING,
        delivery_id=_STRING,
        event_id=_STRING,
        event=_NULLABLE_STRING,
        job_id=_NULLABLE_STRING,
        tenant_id=_NULLABLE_STRING,
        endpoint=_ref("Endpoint"),
        reason={
            "type": "string",
            "enum": [
                "max_retries_exceeded",
                "gone",
                "invalid_event",
                "blocked_url",
                "unknown_webhook",
                "too_many_webhooks",
                "handler_error",
            ],
        },
        attempts=_array({"type": "object"}),
        dead_lettered_at=_STRING,
    ),
    "additionalProperties": True,
}

_WEBHOOK = _object(
    ["id", "url", "source", "default", "status", "message", "last"],
    id=_STRING,
    url=_STRING,
    source={"type": "string", "enum": ["named", "default"]},
    default={"type": "boolean"},
    status={"type": "string", "enum": ["pending", "success", "error"]},
    message=_STRING,
    last={**_ref("Attempt"), "nullable": True},
)

_SCHEMAS = {
    "Error": _object(["error"], error=_STRING),
    "Endpoint": _ENDPOINT,
    "Attempt": _ATTEMPT,
    "DeadLetter": _DEAD_LETTER,
    "Webhook": _WEBHOOK,
    "Webhooks": _object(
        ["config", "webhooks", "recent_attempts"],
        config={"type": "object"},
        webhooks=_array(_ref("Webhook")),
        recent_attempts=_array(_ref("Attempt")),
    ),
    "Deliveries": _object(
        ["job_id", "event_id", "deliveries"],
        job_id=_NULLABLE_STRING,
        event_id=_NULLABLE_STRING,
        deliveries=_array(_ref("Attempt")),
    ),
    "DeadLetters": _object(
        ["count", "dead_letters"],
        count={"type": "integer"},
        dead_letters=_array(_ref("DeadLetter")),
    ),
    "ReplayRequest": {
        # null means "not given", like an absent field
        **_object(
            [],
            event=_NULLABLE_STRING,
            endpoint=_NULLABLE_STRING,
            since=_NULLABLE_STRING,
            all={"type": "boolean", "nullable": True},
            dry_run={"type": "boolean", "nullable": True},
        ),
        "additionalProperties": False,
    },
    "ReplayResult": _object(
        ["dry_run", "replayed", "skipped", "delivery_ids"],
        dry_run={"type": "boolean"},
        replayed={"type": "integer"},
        skipped={"type": "integer"},
        delivery_ids=_array(_STRING),
    ),
    "Status": _object(["status"], status=_STRING),
}


def _get(summary: str, schema: str, parameters: list[Any], admin: bool) -> dict[str, Any]:
    responses = {"200": _json_response(summary, _ref(schema)), **(_ADMIN_ERRORS if admin else {})}
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters,
        "responses": responses,
    }
    if admin:
        operation["security"] = [{"bearer": []}, {}]
    return {"get": operation}


def _paths() -> dict[str, Any]:
    metrics = {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": _STRING}},
                }
            },
        }
    }
    ready = _get("Connected to NATS with consumers bound", "Status", [], admin=False)
    ready["get"]["responses"]["503"] = _json_response("Not ready", _ref("Status"))
    replay = {
        "summary": "Replay dead letters matching the filter (fresh retry budget)",
        "security": [{"bearer": []}],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _ref("ReplayRequest")}},
        },
        "responses": {
            "200": _json_response("Replayed", _ref("ReplayResult")),
            **_ADMIN_ERRORS,
            "403": _json_response("ADMIN_TOKEN is not set", _ERROR),
        },
    }
    return {
        "/healthz": _get("Process alive", "Status", [], admin=False),
        "/readyz": ready,
        "/metrics": metrics,
        "/webhooks": _get(
            "Effective config, per-webhook status, recent attempts", "Webhooks", [], admin=True
        ),
        "/deliveries": _get(
            "Delivery log of one job or event",
            "Deliveries",
            [_query("job_id", "Job id"), _query("event_id", "Event id"), _LIMIT],
            admin=True,
        ),
        "/dlq": _get("Dead letters", "DeadLetters", [*_FILTERS, _LIMIT], admin=True),
        "/dlq/replay": {"post": replay},
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "webhook-bridge admin API", "version": __version__},
        "paths": _paths(),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
