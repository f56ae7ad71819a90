"""What follows one attempt: delivered, retry at a time, or give up with a reason."""

from __future__ import annotations

import msgspec
import pytest

from bridge.config.settings import Settings, load_settings
from bridge.delivery.attempt import AttemptResult, Outcome
from bridge.jetstream.dispatch import Delivered, GiveUp, RetryAt, Step, next_step
from bridge.jetstream.handlers import RECORD_HEADROOM_BYTES, event_size_limit
from bridge.policy.routing import Target
from bridge.policy.tasks import DeliveryTask

NOW_S = 1_768_386_600.0  # 2026-01-14T10:30:00Z
SETTINGS = load_settings(
    {"WEBHOOK_MAX_RETRY": "4", "WEBHOOK_RETRY_MIN_WAIT": "1s", "WEBHOOK_RETRY_MAX_WAIT": "30s"}
)
NO_RETRIES = load_settings({"WEBHOOK_MAX_RETRY": "0"})


def task(attempt: int) -> DeliveryTask:
    return DeliveryTask(
        delivery_id="dlv_0123",
        event_id="GREENLIGHT_EVENTS-1",
        event="job.completed",
        job_id="j_1",
        tenant_id="acme",
        target=Target("https://hooks.example.com/h", "hooks.example.com", "default"),
        body=b'{"event":"job.completed"}',
        published_at_s=NOW_S - 1,
        attempt=attempt,
    )


def result(
    outcome: Outcome, status_code: int | None = None, retry_after: str | None = None
) -> AttemptResult:
    return AttemptResult(outcome, status_code, "message", 0.25, retry_after)


HTTP_500 = result("http_error", 500)


@pytest.mark.parametrize(
    ("attempt", "the_result", "settings", "expected"),
    [
        (1, result("success", 200), SETTINGS, Delivered()),
        (1, result("success", 204), SETTINGS, Delivered()),
        (5, result("success", 299), SETTINGS, Delivered()),
        (5, HTTP_500, SETTINGS, GiveUp("max_retries_exceeded")),
        (9, HTTP_500, SETTINGS, GiveUp("max_retries_exceeded")),
        (1, HTTP_500, NO_RETRIES, GiveUp("max_retries_exceeded")),
        (1, result("timeout"), NO_RETRIES, GiveUp("max_retries_exceeded")),
        (1, result("http_error", 410), SETTINGS, GiveUp("gone")),
        (5, result("http_error", 410), SETTINGS, GiveUp("gone")),
        (1, result("blocked"), SETTINGS, GiveUp("blocked_url")),
        (5, result("blocked"), SETTINGS, GiveUp("blocked_url")),
        (5, result("http_error", 429, "3"), SETTINGS, GiveUp("max_retries_exceeded")),
        (1, result("http_error", 429, "3"), SETTINGS, RetryAt(NOW_S + 3)),
        (1, result("http_error", 429, "0"), SETTINGS, RetryAt(NOW_S)),
        (1, result("http_error", 503, "100"), SETTINGS, RetryAt(NOW_S + 30)),
        (
            4,
            result("http_error", 503, "Wed, 14 Jan 2026 10:30:10 GMT"),
            SETTINGS,
            RetryAt(NOW_S + 10),
        ),
        (
            2,
            result("http_error", 503, "Wed, 14 Jan 2026 12:00:00 GMT"),
            SETTINGS,
            RetryAt(NOW_S + 30),
        ),
    ],
)
def test_next_step(
    attempt: int, the_result: AttemptResult, settings: Settings, expected: Step
) -> None:
    assert next_step(task(attempt), the_result, settings, NOW_S) == expected


# Retry n waits min(30, 1 * 2**(n-1)) jittered by ±20%, clamped to [1, 30].
@pytest.mark.parametrize(
    ("attempt", "the_result", "low_s", "high_s"),
    [
        (1, HTTP_500, 1.0, 1.2),
        (2, HTTP_500, 1.6, 2.4),
        (3, result("http_error", 404), 3.2, 4.8),
        (4, result("http_error", 302), 6.4, 9.6),
        (4, HTTP_500, 6.4, 9.6),
        (1, result("timeout"), 1.0, 1.2),
        (2, result("connection_error"), 1.6, 2.4),
        (1, result("http_error", 429), 1.0, 1.2),  # no Retry-After: back-off
        (3, result("http_error", 503, "soon"), 3.2, 4.8),  # unreadable: back-off
    ],
)
def test_retry_back_off(
    attempt: int, the_result: AttemptResult, low_s: float, high_s: float
) -> None:
    for _ in range(50):
        step = next_step(task(attempt), the_result, SETTINGS, NOW_S)
        assert isinstance(step, RetryAt)
        assert NOW_S + low_s - 1e-6 <= step.not_before_s <= NOW_S + high_s + 1e-6


def test_retry_back_off_is_capped() -> None:
    settings = load_settings({"WEBHOOK_MAX_RETRY": "20", "WEBHOOK_RETRY_MAX_WAIT": "30s"})
    for attempt in range(6, 21):
        step = next_step(task(attempt), HTTP_500, settings, NOW_S)
        assert isinstance(step, RetryAt)
        assert NOW_S + 24.0 <= step.not_before_s <= NOW_S + 30.0


@pytest.mark.parametrize(
    ("configured", "max_payload", "expected"),
    [
        (1024 * 1024, 1024 * 1024, 1024 * 1024 - RECORD_HEADROOM_BYTES),
        (2048, 1024 * 1024, 2048),
        (8 * 1024 * 1024, 8 * 1024 * 1024, 8 * 1024 * 1024 - RECORD_HEADROOM_BYTES),
    ],
)
def test_event_size_limit_leaves_room_for_retry_records(
    configured: int, max_payload: int, expected: int
) -> None:
    assert event_size_limit(configured, max_payload) == expected


ABORT = AttemptResult("http_error", 500, "message", 0.25, None, "abort-message")


@pytest.mark.parametrize(
    ("attempt", "free", "the_result", "expected"),
    [
        # attempts made while the endpoint was down spend no retry: the fifth is the third
        (5, 2, result("http_error", 500, "3"), RetryAt(NOW_S + 3)),
        (7, 2, HTTP_500, GiveUp("max_retries_exceeded")),
        (1, 0, ABORT, GiveUp("aborted_by_receiver")),
        (1, 0, AttemptResult("success", 200, "message", 0.25, None, "abort-message"), Delivered()),
    ],
)
def test_next_step_with_free_attempts_and_signals(
    attempt: int, free: int, the_result: AttemptResult, expected: Step
) -> None:
    the_task = msgspec.structs.replace(task(attempt), free_attempts=free)
    assert next_step(the_task, the_result, SETTINGS, NOW_S) == expected
