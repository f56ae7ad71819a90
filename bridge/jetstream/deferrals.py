"""First attempts handed to the tasks stream while their endpoint is saturated, coalesced.

A hanging endpoint turns every event into a deferral. As one task message each, a deferral
would cost a publish, a fetch and a `nak(delay)` per event: more CPU than delivering the
same event to three healthy endpoints. Deferrals to one URL made in the same event-loop
iteration travel as one batch message instead, which comes back as a unit while the endpoint
stays saturated and is split into ordinary tasks once it has room (see `bridge.policy.tasks`). Each
caller still returns only once the stream has confirmed the message that carries its task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bridge.policy.tasks import DeliveryTask, encode_task

BATCH_MAX_ITEMS = 256
BATCH_MAX_BYTES = 256 * 1024

Publish = Callable[[list[DeliveryTask], list[bytes]], Awaitable[None]]


class _Pending:
    """The deferrals to one URL waiting for the end of this loop iteration."""

    __slots__ = ("payloads", "size", "tasks", "waiters")

    def __init__(self) -> None:
        self.tasks: list[DeliveryTask] = []
        self.payloads: list[bytes] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.size = 0

    def fits(self, payload: bytes, max_bytes: int) -> bool:
        small = self.size + len(payload) <= max_bytes
        return not self.tasks or (len(self.tasks) < BATCH_MAX_ITEMS and small)

    def settle(self, error: BaseException | None) -> None:
        """Wake every caller still waiting (one may have been cancelled meanwhile)."""
        for waiter in self.waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


class Deferrals:
    """`submit(task)` gives a future that is done once the task is stored in the tasks
    stream, alone or batched; it fails as the publish does."""

    def __init__(self, publish: Publish, max_bytes: int = BATCH_MAX_BYTES) -> None:
        self._publish = publish
        self._max_bytes = max_bytes
        self._pending: dict[str, _Pending] = {}
        self._publishing: set[asyncio.Task[None]] = set()

    def submit(self, task: DeliveryTask) -> asyncio.Future[None]:
        payload = encode_task(task)
        pending = self._pending_for(task.target.url, payload)
        pending.tasks.append(task)
        pending.payloads.append(payload)
        pending.size += len(payload)
        # a future per caller: one caller cancelled (its event handed back) cancels no other
        waiter = asyncio.get_running_loop().create_future()
        pending.waiters.append(waiter)
        return waiter

    def _pending_for(self, url: str, payload: bytes) -> _Pending:
        pending = self._pending.get(url)
        if pending is not None and pending.fits(payload, self._max_bytes):
            return pending
        if pending is not None:
            self._flush(url, pending)
        pending = self._pending[url] = _Pending()
        asyncio.get_running_loop().call_soon(self._flush, url, pending)
        return pending

    def _flush(self, url: str, pending: _Pending) -> None:
        if self._pending.get(url) is not pending:
            return  # flushed early, when it was full
        del self._pending[url]
        publishing = asyncio.create_task(self._send(pending))
        self._publishing.add(publishing)
        publishing.add_done_callback(self._publishing.discard)

    async def _send(self, pending: _Pending) -> None:
        try:
            await self._publish(pending.tasks, pending.payloads)
        except asyncio.CancelledError:
            pending.settle(ConnectionAbortedError("shutting down: task not queued"))
            raise
        except Exception as error:
            pending.settle(error)
        else:
            pending.settle(None)
