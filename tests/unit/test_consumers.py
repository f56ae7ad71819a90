"""The fetch loop carries out what a handler decided, in one place (`carry_out`)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.jetstream.consumers import ConsumerLoop, carry_out
from bridge.policy.decisions import ACK, TERM, Decision, Nak


class RecordingMsg:
    def __init__(self) -> None:
        self.done: list[tuple[str, float | None]] = []

    async def ack(self) -> None:
        self.done.append(("ack", None))

    async def nak(self, delay: float | None = None) -> None:
        self.done.append(("nak", delay))

    async def term(self) -> None:
        self.done.append(("term", None))


@pytest.mark.parametrize(
    ("decision", "done"),
    [(ACK, [("ack", None)]), (Nak(2.5), [("nak", 2.5)]), (TERM, [("term", None)])],
)
async def test_carry_out(decision: Decision, done: list[tuple[str, float | None]]) -> None:
    msg: Any = RecordingMsg()
    await carry_out(msg, decision)
    assert msg.done == done


async def returns(_msg: object) -> Decision:
    return Nak(4.0)


async def raises(_msg: object) -> Decision:
    raise ValueError("a bug")


async def gives_up(_msg: object, _error: Exception) -> Decision:
    return TERM


@pytest.mark.parametrize(
    ("handle", "on_failure", "done"),
    [
        (returns, None, [("nak", 4.0)]),
        (raises, None, [("nak", 1.0)]),  # handed back after a pause
        (raises, gives_up, [("term", None)]),
    ],
)
async def test_the_loop_carries_out_the_handler_or_its_failure_handler(
    handle: Any, on_failure: Any, done: list[tuple[str, float | None]]
) -> None:
    sub: Any = None
    loop = ConsumerLoop("test", sub, handle, capacity=1, on_failure=on_failure)
    msg: Any = RecordingMsg()
    await loop._guarded(msg)
    assert msg.done == done
