"""The OpenAPI 3.1 document of the HTTP server (served at `GET /openapi.json`).

Its schemas are generated from the types the routes encode (bridge/admin/responses.py), never
written here; this module only lists the routes: path, parameters, answers, who may call.
OpenAPI 3.1, because its schemas are JSON Schema, which is what msgspec generates.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from bridge import __version__
from bridge.admin.responses import (
    MAX_LIMIT,
    AuditTrail,
    Caller,
    DeadLetters,
    Deliveries,
    Endpoints,
    Error,
    History,
    Readiness,
    ReplayRequest,
    ReplayResult,
    Rotated,
    RotateRequest,
    Stats,
    Status,
    Tested,
    WebhookDetail,
    WebhookInput,
    Webhooks,
)
from bridge.config.webhooks import ID_PATTERN

_TYPES: tuple[type, ...] = (Status, Error, Webhooks, Deliveries, DeadLetters, ReplayRequest)
_TYPES += (ReplayResult, AuditTrail, Readiness, WebhookInput, WebhookDetail, RotateRequest)
_TYPES += (Rotated, Tested, Caller, Stats, History, Endpoints)
_REF_TEMPLATE = "#/components/schemas/{name}"
_STRING = {"type": "string"}
Security = list[dict[str, list[str]]]
# admin routes: a token (ADMIN_TOKEN, VIEWER_TOKEN or a YAML `tokens:` one), or none at all
# while no token is configured (read-only routes)
_ADMIN: Security = [{"bearer": []}, {}]
_MUTATING: Security = [{"bearer": []}]


def _ref(kind: type) -> dict[str, str]:
    return {"$ref": _REF_TEMPLATE.format(name=kind.__name__)}


def _answer(
    description: str, schema: dict[str, Any], media: str = "application/json"
) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] = _STRING) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_LIMIT = _query(
    "limit",
    "Most recent entries to return",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
)
_FILTERS = [
    _query("event", "Event name, e.g. job.completed"),
    _query("endpoint", "Webhook id, URL or host"),
    _query("since", "Only dead letters newer than this duration, e.g. 1h"),
    _query("all", "Include dead letters already replayed", {"type": "boolean"}),
]
_READ_ONLY = (
    "The token may only read (role viewer: VIEWER_TOKEN or a viewer in YAML tokens), "
    "or no token is configured (ADMIN_TOKEN is not set)"
)
_ADMIN_ERRORS = {
    "400": _answer("Invalid parameter", _ref(Error)),
    "401": _answer(
        "Missing or wrong bearer token (when ADMIN_TOKEN, VIEWER_TOKEN or YAML tokens are set)",
        _ref(Error),
    ),
    "503": _answer("Not connected to NATS", _ref(Error)),
}


def _operation(
    summary: str,
    ok: dict[str, Any],
    security: Security | None = None,
    answers: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One operation; `ok` is its 200 answer, admin ones (`security`) add the admin errors."""
    answers = {"200": ok, **(answers or {})}
    if security is not None:
        answers, fields = {**answers, **_ADMIN_ERRORS}, {**fields, "security": security}
    return {"summary": summary, **fields, "responses": answers}


def _get(
    summary: str, kind: type, security: Security | None = None, **fields: Any
) -> dict[str, Any]:
    return {"get": _operation(summary, _answer(summary, _ref(kind)), security, **fields)}


def _paths() -> dict[str, Any]:
    replay_body = {
        "required": False,
        "content": {"application/json": {"schema": _ref(ReplayRequest)}},
    }
    return {
        "/healthz": _get("Process alive", Status),
        "/readyz": _get(
            "Connected to NATS with consumers bound, the API's webhooks loaded",
            Readiness,
            answers={"503": _answer("Not ready", _ref(Readiness))},
        ),
        "/metrics": {
            "get": _operation(
                "Prometheus metrics", _answer("Prometheus text format", _STRING, "text/plain")
            )
        },
        "/openapi.json": {
            "get": _operation("This document", _answer("OpenAPI 3.1", {"type": "object"}))
        },
        "/deliveries": _get(
            "Delivery log of one job or event",
            Deliveries,
            _ADMIN,
            parameters=[_query("job_id", "Job id"), _query("event_id", "Event id"), _LIMIT],
        ),
        "/dlq": _get("Dead letters", DeadLetters, _ADMIN, parameters=[*_FILTERS, _LIMIT]),
        "/endpoints": _get(
            "Endpoints (origins) down, probing, recovering or holding deliveries", Endpoints, _ADMIN
        ),
        "/audit": _get(
            "Audit trail: the latest changes, tests and replays the caller may see",
            AuditTrail,
            _ADMIN,
            parameters=[_query("webhook", "Only the records of this webhook id"), _LIMIT],
        ),
        "/dlq/replay": {
            "post": _operation(
                "Replay dead letters matching the filter (fresh retry budget)",
                _answer("Replayed", _ref(ReplayResult)),
                _MUTATING,
                {"403": _answer(_READ_ONLY, _ref(Error))},
                requestBody=replay_body,
            )
        },
        **_webhook_paths(),
        **_console_paths(),
    }


def _body(kind: type, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(kind)}}}


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{ID_PATTERN.pattern}$"},
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the webhook as last read; another revision answers 412",
    "schema": _STRING,
}


def _refusals(*codes: str) -> dict[str, Any]:
    meaning = {
        "403": "Not allowed for this token",
        "404": "No such webhook (or not one of this token's tenants)",
        "409": "A configured (YAML) webhook, or the id exists",
        "412": "If-Match names another revision",
    }
    return {code: _answer(meaning[code], _ref(Error)) for code in codes}


def _webhook_paths() -> dict[str, Any]:
    """SPEC §9: webhooks managed at run time."""
    detail = _answer("The webhook", _ref(WebhookDetail))
    one = {"parameters": [_ID]}
    change = {"parameters": [_ID, _IF_MATCH]}
    return {
        "/webhooks": {
            **_get("Effective config, per-webhook status, recent attempts", Webhooks, _ADMIN),
            "post": _operation(
                "Create a webhook (201; its secret shown once when generated)",
                detail,
                _MUTATING,
                _refusals("403", "409"),
                requestBody=_body(WebhookInput),
            ),
        },
        "/webhooks/{id}": {
            "get": _operation(
                "One webhook and its recent attempts", detail, _ADMIN, _refusals("404"), **one
            ),
            "patch": _operation(
                "Change a webhook (JSON merge patch)",
                detail,
                _MUTATING,
                _refusals("403", "404", "409", "412"),
                requestBody=_body(WebhookInput),
                **change,
            ),
            "delete": _operation(
                "Delete a webhook (204)",
                {"description": "Deleted"},
                _MUTATING,
                _refusals("403", "404", "409", "412"),
                **change,
            ),
        },
        "/webhooks/{id}/secret/rotate": {
            "post": _operation(
                "Rotate the secret; the previous one signs beside it for the grace period",
                _answer("Rotated", _ref(Rotated)),
                _MUTATING,
                _refusals("403", "404", "409", "412"),
                requestBody=_body(RotateRequest, required=False),
                **change,
            )
        },
        "/webhooks/{id}/test": {
            "post": _operation(
                "Send one webhook.test event, no retry",
                _answer("How the attempt went", _ref(Tested)),
                _MUTATING,
                _refusals("403", "404"),
                **one,
            )
        },
    }


def _console_paths() -> dict[str, Any]:
    """What the console (SPEC §10) reads beside the routes above."""
    scoped = {"403": _answer("A tenant-scoped token: the figures cover every tenant", _ref(Error))}
    return {
        "/whoami": _get(
            "Who the bearer token stands for, and whether it may write", Caller, _ADMIN
        ),
        "/webhooks/{id}/history": _get(
            "A webhook's attempts and successes over time, in 60 equal buckets",
            History,
            _ADMIN,
            answers=_refusals("404"),
            parameters=[_ID, _query("within", "How far back, from 1m to 24h (default 24h)")],
        ),
        "/stats": _get(
            "Overview: this replica's delivery rates, success ratio, backlog, dead letters",
            Stats,
            _ADMIN,
            answers=scoped,
        ),
    }


@functools.cache
def document() -> dict[str, Any]:
    _roots, schemas = msgspec.json.schema_components(_TYPES, ref_template=_REF_TEMPLATE)
    return {
        "openapi": "3.1.0",
        "info": {"title": "webhook-bridge admin API", "version": __version__},
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
