"""Events whose handling fails: when to give up, and that giving up always ends."""

from __future__ import annotations

import pytest

from bridge.jetstream.bus import BusError
from bridge.jetstream.failures import gives_up, settle
from bridge.policy.dead_letter import DeadLetter, from_failure
from bridge.policy.decisions import ACK, TERM, Decision

OUTAGE = BusError("cannot publish: nats: connection closed")
REFUSED = BusError("cannot publish: nats: maximum payload exceeded", refused=True)
BUG = ValueError("a bug")


@pytest.mark.parametrize(
    ("delivered", "error", "expected"),
    [
        (1, BUG, False),
        (4, BUG, False),
        (5, BUG, True),
        (9, BUG, True),  # past the count (e.g. hand-backs at shutdown): the next failure ends it
        (5, REFUSED, True),
        (5, OUTAGE, False),  # NATS unreachable: not the event's fault, and nothing could be written
        (50, OUTAGE, False),
    ],
)
def test_gives_up(delivered: int, error: Exception, expected: bool) -> None:
    assert gives_up(delivered, 5, error) is expected


RECORD = from_failure("evt-1", None, b"x" * 1000, "boom")


@pytest.mark.parametrize(
    ("errors", "published", "decision"),
    [
        ([], ["full"], ACK),
        ([REFUSED], ["bare"], ACK),
        ([REFUSED, REFUSED], [], TERM),
        ([BUG, BUG], [], TERM),
        ([OUTAGE], [], None),
        ([REFUSED, OUTAGE], [], None),
    ],
)
async def test_settle_always_ends_unless_nats_is_down(
    errors: list[Exception], published: list[str], decision: Decision | None
) -> None:
    failing = list(errors)
    sent: list[str] = []

    async def publish(record: DeadLetter) -> None:
        if failing:
            raise failing.pop(0)
        sent.append("bare" if record.raw is None else "full")

    assert await settle(RECORD, publish) == decision
    assert sent == published
