"""Deadline-based polling: the only way tests wait for something to happen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Predicate = Callable[[], bool | Awaitable[bool]]
Message = str | Callable[[], str]

POLL_INTERVAL_S = 0.02


async def check(predicate: Predicate) -> bool:
    """Evaluate a sync or async predicate."""
    result = predicate()
    if inspect.isawaitable(result):
        return bool(await result)
    return bool(result)


def _render(message: Message) -> str:
    return message() if callable(message) else message


async def wait_for(predicate: Predicate, timeout_s: float, message: Message) -> None:
    """Poll `predicate` until it is true; fail with `message` after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while not await check(predicate):
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s: {_render(message)}")
        await asyncio.sleep(POLL_INTERVAL_S)


async def stays_true(predicate: Predicate, duration_s: float, message: Message) -> None:
    """Assert that `predicate` holds during the whole of `duration_s` seconds.

    This is the negative check ("no further delivery happens"), not synchronisation: it waits
    out a quiet period and fails as soon as the predicate turns false.
    """
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        if not await check(predicate):
            raise AssertionError(_render(message))
        await asyncio.sleep(POLL_INTERVAL_S)
    if not await check(predicate):
        raise AssertionError(_render(message))
