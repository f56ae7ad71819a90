"""Per-job ordering on the JetStream side: whether an ordered delivery's turn has come.

The bridge keeps no ordering state of its own: both facts a turn needs are read from NATS
(`bridge.policy.ordering` says what they mean), so they survive restarts and are the same
for every replica.

- The fan-out frontier is the events consumer's ack floor. An event is acked only once each
  of its deliveries is delivered, stored as a task or dead-lettered, so once the floor has
  reached an event's sequence - 1, every earlier delivery of its (job, URL) pair is in the
  tasks stream, whichever worker or replica fanned it out, and in whatever order. One
  consumer-info request, at most every FRONTIER_REFRESH_S, serves every delivery of the
  process waiting for it; a delivery waits for it in place up to FRONTIER_PATIENCE_S.
- The pair's deliveries still waiting are the pair's subjects in the tasks stream. One
  stream-info request over every ordered subject, at most every WAITING_REFRESH_S, serves
  every delivery asking meanwhile (`Waiting`); only a read that starts after a delivery asks
  answers it, since a read begun earlier may predate a retry it must see. While more than
  WAITING_MAX_SUBJECTS wait, each delivery asks about its own pair instead.

A delivery whose turn has not come is handed back with a delay, unless the one ahead of it
runs, or waits, in this process (a job's events fanned out together usually come to the same
process): then it waits in place to be woken when that one ends (`Relay`), which spares a
redelivery and a guess at how long to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import msgspec

from bridge.config.settings import Settings
from bridge.jetstream.bus import BusError, Connection, nats_errors
from bridge.policy import ordering
from bridge.policy.decisions import Nak
from bridge.policy.tasks import DeliveryTask

FRONTIER_REFRESH_S = 0.02
FRONTIER_PATIENCE_S = 1.0
RELAY_PATIENCE_S = 2.0  # the longest a delivery waits in place behind one of this process
SETTLE_S = 0.005  # woken, a delivery lets the ack of the one ahead reach the server
REQUEST_TIMEOUT_S = 5.0
WAITING_REFRESH_S = 0.02
WAITING_MAX_SUBJECTS = 5_000  # more, and a shared read would cost more than one per delivery
WAITING_RECHECK_S = 5.0  # with that many, per-pair reads until it looks again


class Frontier:
    """The events consumer's ack floor as last read; `read_floor` asks NATS for it."""

    def __init__(
        self,
        read_floor: Callable[[], Awaitable[int]],
        refresh_s: float = FRONTIER_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_floor = read_floor
        self._refresh_s = refresh_s
        self._clock = clock
        self._floor = 0
        self._read_at = -math.inf
        self._reading: asyncio.Task[None] | None = None  # referenced: or it may be collected

    async def reached(self, seq: int, patience_s: float) -> bool:
        """True once every event up to `seq` is acked; False if not within `patience_s`."""
        deadline = self._clock() + patience_s
        while self._floor < seq:
            if self._clock() >= deadline:
                return False
            await self._refreshed()
        return True

    async def _refreshed(self) -> None:
        """The next read, shared by every caller waiting meanwhile."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read())
        await asyncio.shield(self._reading)

    async def _read(self) -> None:
        await asyncio.sleep(max(0.0, self._read_at + self._refresh_s - self._clock()))
        self._read_at = self._clock()
        self._floor = await self._read_floor()


class Turns:
    """Decides whether an ordered delivery may be attempted now."""

    def __init__(self, nc: Connection, settings: Settings) -> None:
        self._nc = nc
        self._tasks_stream = settings.tasks_stream
        self._info_subject = f"$JS.API.STREAM.INFO.{settings.tasks_stream}"
        js = nc.jetstream()
        stream, durable = settings.nats_stream, settings.nats_durable

        async def read_floor() -> int:
            async with nats_errors("cannot read the events consumer's ack floor"):
                info = await js.consumer_info(stream, durable, timeout=REQUEST_TIMEOUT_S)
            return info.ack_floor.stream_seq if info.ack_floor else 0

        self._frontier = Frontier(read_floor)
        self._waiting = Waiting(self._subjects, settings.tasks_stream)
        self._relay = Relay()
        self._turns: dict[int, Here] = {}  # id(task) → the delivery having its turn

    async def wait(self, task: DeliveryTask, delivered: int) -> Nak | None:
        """None when its turn has come (then `ended` must follow its attempt), else how long
        to wait (`delivered`: how many times its message has come). Raises BusError."""
        if not await self._frontier.reached(task.order_seq - 1, FRONTIER_PATIENCE_S):
            return Nak(ordering.wait_s(1, delivered))
        pair = _pair(task)
        here = self._relay.enter(pair, task.order_seq)
        try:
            ahead = await self._ask(task, here)
        except BaseException:
            self._relay.leave(pair, here)
            raise
        if ahead:
            self._relay.leave(pair, here)  # the next one here looks, rather than sleep on
            return Nak(ordering.wait_s(ahead, delivered))
        self._turns[id(task)] = here
        return None

    async def _ask(self, task: DeliveryTask, here: Here) -> int:
        """How many deliveries of the pair are ahead of it, once any ahead of it in this
        process has ended (or RELAY_PATIENCE_S has passed)."""
        deadline_s = time.monotonic() + RELAY_PATIENCE_S
        ahead = 0
        while True:
            if await self._relay.behind(_pair(task), here, deadline_s - time.monotonic()):
                await asyncio.sleep(SETTLE_S)  # woken: the ack of the one ahead reaches NATS
            elif ahead:  # asked, and nothing ahead of it here to wait for
                return ahead
            ahead = await self._waiting.ahead(task)
            if not ahead:
                return 0

    def ended(self, task: DeliveryTask) -> None:
        """The attempt that had its turn is over: the next delivery of its pair here looks."""
        here = self._turns.pop(id(task), None)
        if here is not None:
            self._relay.leave(_pair(task), here)

    async def _subjects(self, subjects_filter: str) -> Subjects:
        """The subjects matching the filter that hold a task, and how many the stream has."""
        query = msgspec.json.encode({"subjects_filter": subjects_filter})
        async with nats_errors("cannot read the deliveries waiting their turn"):
            reply = await self._nc.request(self._info_subject, query, timeout=REQUEST_TIMEOUT_S)
        info = _INFO.decode(reply.data)
        if info.error is not None:
            raise BusError(
                f"cannot read the deliveries waiting their turn: {info.error.description}"
            )
        if info.state is None:
            return Subjects({}, 0)
        return Subjects(info.state.subjects or {}, info.state.num_subjects)


class Subjects(NamedTuple):
    """A STREAM.INFO answer: the filter's subjects holding a task, and the stream's count."""

    held: dict[str, int]
    in_stream: int


class Waiting:
    """How many deliveries of a task's pair wait ahead of it in the tasks stream."""

    def __init__(
        self,
        read: Callable[[str], Awaitable[Subjects]],
        tasks_stream: str,
        refresh_s: float = WAITING_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._tasks_stream = tasks_stream
        self._refresh_s = refresh_s
        self._clock = clock
        self._next: asyncio.Future[dict[str, list[int]] | None] | None = None
        self._read_at = -math.inf
        self._pairs_until = -math.inf  # per-pair reads until then: too many waiting
        self._reading: asyncio.Task[None] | None = None  # referenced: or it may be collected

    async def ahead(self, task: DeliveryTask) -> int:
        pairs = None if self._clock() < self._pairs_until else await self._shared()
        if pairs is None:
            own = await self._read(ordering.pair_filter(self._tasks_stream, task))
            return ordering.earlier(task.order_seq, own.held)
        key = ordering.pair_key(task.job_id or "", task.target.url)
        return sum(1 for seq in pairs.get(key, ()) if seq < task.order_seq)

    async def _shared(self) -> dict[str, list[int]] | None:
        """The next read's answer by pair (None: too many wait); the read starts after this
        call, and every call until it starts shares it."""
        if self._next is None:
            loop = asyncio.get_running_loop()
            self._next = loop.create_future()
            self._reading = loop.create_task(self._read_next(self._next))
        return await asyncio.shield(self._next)

    async def _read_next(self, answer: asyncio.Future[dict[str, list[int]] | None]) -> None:
        await asyncio.sleep(max(0.0, self._read_at + self._refresh_s - self._clock()))
        self._next, self._read_at = None, self._clock()  # later calls wait for the next read
        try:
            subjects = await self._read(ordering.wildcard(self._tasks_stream))
        except Exception as error:  # each caller raises it
            answer.set_exception(error)
            answer.exception()  # retrieved, should every caller have gone meanwhile
            return
        answer.set_result(self._by_pair(subjects))

    def _by_pair(self, subjects: Subjects) -> dict[str, list[int]] | None:
        if subjects.in_stream > WAITING_MAX_SUBJECTS:
            self._pairs_until = self._clock() + WAITING_RECHECK_S
            return None
        pairs: dict[str, list[int]] = {}
        for name in subjects.held:
            _prefix, key, seq = name.rsplit(".", 2)
            if seq.isdigit():
                pairs.setdefault(key, []).append(int(seq))
        return pairs


class Here:
    """One delivery of a pair present in this process: asking, waiting or attempting."""

    __slots__ = ("seq", "woken")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.woken = asyncio.Event()


class Relay:
    """The deliveries of each (job, URL) pair present in this process, so that one waits to
    be woken when the one ahead of it here is over, rather than asking NATS again."""

    def __init__(self) -> None:
        self._present: dict[str, list[Here]] = {}

    def enter(self, pair: str, seq: int) -> Here:
        here = Here(seq)
        self._present.setdefault(pair, []).append(here)
        return here

    def leave(self, pair: str, here: Here) -> None:
        """It is over (attempted, or handed back): the first one left of the pair looks."""
        present = self._present[pair]
        present.remove(here)
        if present:
            min(present, key=lambda other: other.seq).woken.set()
        else:
            del self._present[pair]

    async def behind(self, pair: str, here: Here, patience_s: float) -> bool:
        """Wait, up to `patience_s`, to be woken when one ahead of it here is over; False at
        once when none is ahead of it here."""
        ahead = any(other.seq < here.seq for other in self._present[pair] if other is not here)
        if not ahead or patience_s <= 0:
            return False
        here.woken.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience_s):
                await here.woken.wait()
        return True


def _pair(task: DeliveryTask) -> str:
    return ordering.pair_key(task.job_id or "", task.target.url)


class _Error(msgspec.Struct):
    description: str = ""


class _State(msgspec.Struct):
    subjects: dict[str, int] | None = None
    num_subjects: int = 0


class _Info(msgspec.Struct):
    """The part of a STREAM.INFO answer read here: nats-py's own parse costs more."""

    state: _State | None = None
    error: _Error | None = None


_INFO = msgspec.json.Decoder(_Info)
