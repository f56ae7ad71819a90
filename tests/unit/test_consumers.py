"""The fetch loop carries out what a handler decided, in one place (`carry_out`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from harness.waiting import stays_true, wait_for

from bridge.jetstream.consumers import STALLED_S, ConsumerLoop, carry_out
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


class QueueSub:
    """A pull subscription over a list of messages; `fetch` waits out its timeout when empty."""

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages
        self.fetched = 0

    async def fetch(self, batch: int, **options: float) -> list[Any]:
        if not self.messages:
            await asyncio.sleep(options["timeout"])
            return []
        taken, self.messages = self.messages[:batch], self.messages[batch:]
        self.fetched += len(taken)
        return taken


class NamedMsg(RecordingMsg):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class Hanging:
    """A loop of `capacity` whose handler hangs on messages named hang-*, until released."""

    def __init__(self, capacity: int, hanging: int, others: int) -> None:
        self.released = asyncio.Event()
        self.handled: list[str] = []
        self.most = 0
        names = [f"hang-{i}" for i in range(hanging)] + [f"ok-{i}" for i in range(others)]
        self.sub = QueueSub([NamedMsg(name) for name in names])
        self.loop = ConsumerLoop("test", cast(Any, self.sub), self.handle, capacity=capacity)

    async def handle(self, msg: Any) -> Decision:
        self.most = max(self.most, len(self.loop._running))
        if msg.name.startswith("hang"):
            await self.released.wait()
        self.handled.append(msg.name)
        return ACK


@contextlib.asynccontextmanager
async def running(hanging: Hanging) -> AsyncIterator[None]:
    stopping = asyncio.Event()
    task = asyncio.create_task(hanging.loop.run(stopping, ack_wait_s=30.0))
    try:
        yield
    finally:
        stopping.set()
        hanging.released.set()
        await task


async def test_messages_behind_handlers_that_hang_are_handled_meanwhile() -> None:
    """A full loop of handlers hanging on an endpoint steps aside after STALLED_S."""
    hanging = Hanging(capacity=4, hanging=4, others=10)
    async with running(hanging):
        await wait_for(lambda: len(hanging.handled) == 10, 10, "the others handled")
        assert all(name.startswith("ok") for name in hanging.handled)
        hanging.released.set()
        await wait_for(lambda: len(hanging.handled) == 14, 10, "the hanging ones handled")


async def test_handlers_that_hang_take_twice_the_capacity_at_most() -> None:
    hanging = Hanging(capacity=4, hanging=12, others=0)
    async with running(hanging):
        await wait_for(lambda: hanging.sub.fetched == 8, 10, "twice the capacity fetched")
        await stays_true(lambda: hanging.sub.fetched == 8, STALLED_S * 4, "no more fetched")
        assert hanging.most == 8
        hanging.released.set()
        await wait_for(lambda: len(hanging.handled) == 12, 10, "all handled")
