"""Delivery log records and subjects: what is kept of an attempt, and how it is found."""

from __future__ import annotations

import pytest

from bridge.admin.queries import status_of
from bridge.delivery.attempt import AttemptResult
from bridge.jetstream.delivery_log import NO_JOB, Result, entry_for, subject_for, token
from bridge.policy.routing import Target
from bridge.policy.tasks import DeliveryTask

TASK = DeliveryTask(
    delivery_id="dlv_1",
    event_id="GREENLIGHT_EVENTS-7",
    event="job.failed",
    job_id="j.1 *>",
    tenant_id="acme",
    target=Target("https://user:pw@hooks.example.com/h", "hooks.example.com", "job", None, False),
    body=b"{}",
    published_at_s=0.0,
    attempt=2,
)
OK = AttemptResult("success", 200, "status code: 200", 0.0125)
FAILED = AttemptResult("http_error", 404, "unexpected status code: 404", 0.5)
REFUSED = AttemptResult("connection_error", None, "connection refused", 0.001)


@pytest.mark.parametrize("value", ["j.1", "j 1", "*", ">", "é", "x" * 10_000, "a.b.c"])
def test_token_is_one_safe_subject_token(value: str) -> None:
    assert token(value).isalnum()
    assert len(token(value)) == 16


def test_token_of_nothing_and_distinct_values() -> None:
    assert token(None) == token("") == NO_JOB
    assert token("j-1") != token("j-2")


@pytest.mark.parametrize(
    ("url", "job", "event", "wild"),
    [
        ("u", "j", "e", 0),
        (None, "j", None, 2),
        (None, None, "e", 2),
        (None, None, None, 3),
    ],
)
def test_subject_has_one_token_per_part(
    url: str | None, job: str | None, event: str | None, wild: int
) -> None:
    subject = subject_for(url, job, event)
    tokens = subject.split(".")
    assert tokens[:3] == ["greenlight", "webhooks", "log"]
    assert len(tokens) == 6
    assert tokens.count("*") == wild


@pytest.mark.parametrize(
    ("result", "outcome", "detail", "retry_at", "reason"),
    [
        (OK, "delivered", None, None, None),
        (FAILED, "retry", 1_768_386_600.0, "2026-01-14T10:30:00.000Z", None),
        (FAILED, "dead_letter", "max_retries_exceeded", None, "max_retries_exceeded"),
    ],
)
def test_entry_for(
    result: AttemptResult,
    outcome: Result,
    detail: str | float | None,
    retry_at: str | None,
    reason: str | None,
) -> None:
    entry = entry_for(TASK, result, outcome, detail)
    assert (entry.attempt, entry.result, entry.retry_at, entry.reason) == (
        2,
        outcome,
        retry_at,
        reason,
    )
    assert (entry.status_code, entry.message) == (result.status_code, result.message)
    assert entry.duration_ms == round(result.duration_s * 1000)
    assert "pw" not in (entry.endpoint.url or ""), "URL passwords are redacted"
    assert entry.job_id == "j.1 *>"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, ("pending", "no attempt yet")),
        (OK, ("success", "status code: 200")),
        (FAILED, ("error", "unexpected status code: 404")),
        (REFUSED, ("error", "connection refused")),
    ],
)
def test_status_of(result: AttemptResult | None, expected: tuple[str, str]) -> None:
    entry = entry_for(TASK, result, "retry", None) if result else None
    assert status_of(entry) == expected
