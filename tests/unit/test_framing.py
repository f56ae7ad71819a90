"""The body on the wire (SPEC §12): raw, a structured CloudEvent, or a binary one."""

from __future__ import annotations

import json

import pytest

from bridge.config.settings import load_settings
from bridge.config.values import ConfigError
from bridge.config.webhooks import parse_webhook
from bridge.policy.framing import framed
from bridge.policy.routing import Target
from bridge.policy.tasks import DeliveryTask

BODY = b'{"event": "job.completed",  "job_id": "j_1", "n": 1.50}'  # spacing kept as published
TARGET = Target(url="https://erp.example/h", endpoint="erp", source="named", webhook_id="erp")
SOURCE = "/webhook-bridge"


def task(job_id: str | None = "j_1", event_id: str = "evt-1") -> DeliveryTask:
    return DeliveryTask(
        delivery_id="dlv_1",
        event_id=event_id,
        event="job.completed",
        job_id=job_id,
        tenant_id=None,
        target=TARGET,
        body=BODY,
        published_at_s=1768386612.25,
    )


def test_raw_is_the_body_as_it_is() -> None:
    body, headers = framed("raw", task(), SOURCE)
    assert body is BODY
    assert dict(headers) == {}, "Content-Type: application/json stays"


def test_structured_wraps_the_body_verbatim() -> None:
    body, headers = framed("cloudevents", task(), SOURCE)
    assert dict(headers) == {"Content-Type": "application/cloudevents+json"}
    assert json.loads(body) == {
        "specversion": "1.0",
        "id": "evt-1",
        "source": SOURCE,
        "type": "job.completed",
        "time": "2026-01-14T10:30:12.250Z",
        "subject": "j_1",
        "datacontenttype": "application/json",
        "data": json.loads(BODY),
    }
    assert body.endswith(b'"data":' + BODY + b"}"), "data is not re-encoded"


def test_binary_sends_the_body_and_attributes_as_headers() -> None:
    body, headers = framed("cloudevents-binary", task(), SOURCE)
    assert body is BODY
    assert dict(headers) == {
        "ce-specversion": "1.0",
        "ce-id": "evt-1",
        "ce-source": SOURCE,
        "ce-type": "job.completed",
        "ce-time": "2026-01-14T10:30:12.250Z",
        "ce-subject": "j_1",
    }


@pytest.mark.parametrize(
    ("event_id", "header"),
    [
        ("evt 1", "evt%201"),
        ('say "hi"', "say%20%22hi%22"),
        ("100%", "100%25"),
        ("é✓", "%C3%A9%E2%9C%93"),
        ("a/b:c?d=e&f", "a/b:c?d=e&f"),
    ],
)
def test_binary_headers_are_percent_encoded_as_the_http_binding_says(
    event_id: str, header: str
) -> None:
    assert framed("cloudevents-binary", task(event_id=event_id), SOURCE)[1]["ce-id"] == header


def test_no_job_no_subject() -> None:
    assert "ce-subject" not in framed("cloudevents-binary", task(job_id=None), SOURCE)[1]
    assert "subject" not in json.loads(framed("cloudevents", task(job_id=None), SOURCE)[0])


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"format": "xml"}, "w.yaml: webhooks[0].format: expected one of raw, cloudevents,"),
        ({"format": 3}, "w.yaml: webhooks[0].format: expected one of raw, cloudevents,"),
        ({"headers": {"ce-id": "x"}}, "w.yaml: webhooks[0].headers: ce-id is set by the bridge"),
    ],
)
def test_bad_format_fields_name_the_path(node: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_webhook({"id": "erp", "url": "https://erp.example/h", **node}, "w.yaml: webhooks[0]")
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("value", ["", "has space", "/a\tb", "x" * 2049])
def test_bad_ce_source_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^WEBHOOK_CE_SOURCE: expected a URI-reference"):
        load_settings({"WEBHOOK_CE_SOURCE": value})


def test_format_defaults_to_raw_and_ce_source_to_the_bridge() -> None:
    assert parse_webhook({"id": "erp", "url": "https://erp.example/h"}).format == "raw"
    hook = parse_webhook({"id": "erp", "url": "https://e.example/h", "format": "CloudEvents"})
    assert hook.format == "cloudevents"
    assert load_settings({}).ce_source == "/webhook-bridge"
