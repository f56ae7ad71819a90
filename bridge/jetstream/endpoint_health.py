"""Endpoint health across replicas (SPEC §11): breakers shared through the KV bucket
`<durable>-endpoints`, probes leased there, and each endpoint's adaptive concurrency.

Every replica counts the consecutive failures it sees per origin; the first to reach
`WEBHOOK_BREAKER_FAILURES` opens the breaker: at once in its own memory, then in the bucket
(one key per endpoint that is not healthy; a compare-and-set create, so one replica wins and
emits `endpoint.down`). Every replica watches the bucket and so holds the endpoint's
deliveries within milliseconds of the first, without failures of its own. A probe is leased
by compare-and-set on the key's revision, so one runs at a time across replicas, and names
its delivery, so that whichever replica fetches that delivery runs it. A success deletes the
key (compare-and-set again: one `endpoint.recovered`), and every replica, seeing the delete,
starts the endpoint at one attempt in flight (`bridge.policy.aimd`).

The hot path is a look-up in an empty dict while every endpoint is healthy: no KV read per
delivery. Held deliveries are counted per process as they pass (`held`), over the time they
wait before they look again, so a count is what this replica has seen lately.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from bridge.config.settings import Settings
from bridge.delivery.attempt import AttemptResult
from bridge.delivery.slots import EndpointLimiter, origin_of
from bridge.jetstream.bus import BusError, Conflict, nats_errors
from bridge.jetstream.kv_watch import follow_bucket
from bridge.jetstream.ops_events import OpsEvents
from bridge.observability.logs import log
from bridge.policy import breaker as breakers
from bridge.policy.aimd import Aimd
from bridge.policy.breaker import Breaker, State
from bridge.policy.tasks import DeliveryTask, timestamp

PROBING_RECHECK_S = 1.0  # a held delivery that finds a probe running looks again this soon at least
HOLD_RECHECK_MIN_S = 0.5
HOLD_JITTER = 0.2
HOLD_JITTER_MAX_S = 2.0  # a long wait is not spread further: the backlog comes back soon
PRUNE_INTERVAL_S = 1.0
PROBE_LEASE_MARGIN_S = 5.0
SETTLE_S = 2.0
MAX_TRACKED = 10_000  # origins with a failure count, or an adaptive limit, kept in memory


class EndpointStatus(msgspec.Struct, frozen=True):
    """One endpoint as `GET /endpoints` shows it."""

    endpoint: str
    state: State
    concurrency_limit: int
    held: int
    since: str | None


def _bound(tracked: dict[str, Any]) -> str | None:
    """Per-job hosts come and go: past MAX_TRACKED, the oldest entry goes (its key returned)."""
    if len(tracked) <= MAX_TRACKED:
        return None
    oldest = next(iter(tracked))
    del tracked[oldest]
    return oldest


def endpoint_key(origin: str) -> str:
    return hashlib.sha256(origin.encode()).hexdigest()[:40]


class EndpointHealth:
    """Breakers, probes and adaptive limits of the endpoints this process delivers to.
    `clock` is wall-clock seconds: breakers are shared by replicas."""

    def __init__(
        self,
        kv: KeyValue,
        settings: Settings,
        *,
        limiter: EndpointLimiter,
        ops: OpsEvents,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._kv = kv
        self._threshold = settings.breaker_failures
        self._interval_s = settings.probe_interval_s
        self._lease_s = settings.timeout_s + PROBE_LEASE_MARGIN_S
        self._ceiling = settings.endpoint_concurrency
        self._limiter = limiter
        self._ops = ops
        self._clock = clock
        self._rand = rand
        self._breakers: dict[str, tuple[Breaker, int]] = {}  # origin → (breaker, revision)
        self._failures: dict[str, int] = {}
        self._up_s: dict[str, float] = {}  # origin → a success that broke a run of failures
        self._adaptive: dict[str, Aimd] = {}
        self._claiming: set[str] = set()
        self._closed_at: dict[str, int] = {}  # origin → revision it was closed at, until echoed
        self._held: dict[str, dict[str, tuple[int, float]]] = {}
        self._next_prune_s = 0.0
        self._background: set[asyncio.Task[None]] = set()
        self.loaded = asyncio.Event()

    # --- what the handlers ask: a look-up in an empty dict while all is well

    def breaker(self, url: str) -> Breaker | None:
        """The breaker of the URL's endpoint, None while it is healthy."""
        if not self._breakers:
            return None
        entry = self._breakers.get(origin_of(url))
        return None if entry is None else entry[0]

    def hold_s(self, breaker: Breaker) -> float:
        """How long a held delivery waits before it looks again (jittered: a backlog held
        together does not come back in one burst)."""
        wait_s = breakers.recheck_s(breaker, self._clock(), PROBING_RECHECK_S, HOLD_RECHECK_MIN_S)
        return wait_s + min(HOLD_JITTER * wait_s, HOLD_JITTER_MAX_S) * self._rand()

    def note_held(
        self, task: DeliveryTask, count: int, wait_s: float, *, arriving: bool = False
    ) -> None:
        """`count` deliveries (a task, or a batch led by it) wait `wait_s` for the endpoint.
        First attempts `arriving` are counted together, one entry per second."""
        now_s = self._clock()
        held = self._held.setdefault(origin_of(task.target.url), {})
        until_s = now_s + wait_s + HOLD_RECHECK_MIN_S
        if arriving:
            key = f"arriving-{int(now_s)}"
            before, before_until_s = held.get(key, (0, until_s))
            held[key] = (before + count, max(until_s, before_until_s))
        else:
            held[task.delivery_id] = (count, until_s)
        if now_s >= self._next_prune_s:
            self._next_prune_s = now_s + PRUNE_INTERVAL_S
            self._held_now(now_s)

    def released(self, task: DeliveryTask) -> None:
        if self._held:
            self._held.get(origin_of(task.target.url), {}).pop(task.delivery_id, None)

    async def may_probe(self, task: DeliveryTask) -> bool:
        """Whether the task may be attempted although its endpoint is not healthy: it is the
        endpoint's probe, leased now or before."""
        origin = origin_of(task.target.url)
        entry = self._breakers.get(origin)
        if entry is None:
            return True
        breaker, revision = entry
        now_s = self._clock()
        if breaker.prober == task.delivery_id and now_s < breaker.probe_until_s:
            return True
        if not breakers.may_probe(breaker, now_s) or origin in self._claiming:
            return False
        return await self._lease(
            origin, breakers.probing(breaker, now_s, self._lease_s, task.delivery_id), revision
        )

    async def _lease(self, origin: str, lease: Breaker, revision: int) -> bool:
        self._claiming.add(origin)
        try:
            stored = await self._write(origin, lease, revision)
        except BusError:
            return False  # another replica leased it (or NATS is away): hold on
        finally:
            self._claiming.discard(origin)
        self._learn(lease, stored)
        log.info("endpoint probe", endpoint=origin, delivery_id=lease.prober)
        return True

    # --- what every attempt tells

    def record(self, task: DeliveryTask, result: AttemptResult) -> None:
        origin = origin_of(task.target.url)
        if breakers.is_failure(result.outcome, result.status_code):
            self._failed(origin, task)
        elif result.outcome != "blocked":
            self._succeeded(origin, task, result.duration_s)

    def _failed(self, origin: str, task: DeliveryTask) -> None:
        if self._adaptive and (aimd := self._adaptive.get(origin)) is not None:
            aimd.failed()
            self._adapt(origin, aimd)
        count = self._failures[origin] = self._failures.get(origin, 0) + 1
        _bound(self._failures)
        entry = self._breakers.get(origin)
        if entry is None:
            if count >= self._threshold and not self._recently_up(origin):
                self._open(origin, task, count)
        elif entry[0].prober == task.delivery_id:
            self._probe_failed(origin, *entry)

    def _recently_up(self, origin: str) -> bool:
        """Another URL of the origin succeeded amid these failures, within a probe interval:
        the host is up and one of its paths fails; holding every path would stall the rest."""
        up_s = self._up_s.get(origin)
        return up_s is not None and self._clock() - up_s < self._interval_s

    def _succeeded(self, origin: str, task: DeliveryTask, duration_s: float) -> None:
        if self._failures and self._failures.pop(origin, None) is not None:
            self._up_s[origin] = self._clock()
            _bound(self._up_s)
        if self._adaptive and (aimd := self._adaptive.get(origin)) is not None:
            aimd.succeeded(duration_s)
            self._adapt(origin, aimd)
        if self._breakers and origin in self._breakers:
            self._close(origin, task)

    def _adapt(self, origin: str, aimd: Aimd) -> None:
        if aimd.full:
            self._adaptive.pop(origin, None)
            self._limiter.cap_origin(origin, None)
        else:
            self._adaptive[origin] = aimd
            self._limiter.cap_origin(origin, aimd.limit)
            if (dropped := _bound(self._adaptive)) is not None:
                self._limiter.cap_origin(dropped, None)

    def _restart_low(self, origin: str) -> None:
        """A recovered endpoint starts at one attempt in flight."""
        self._adapt(origin, Aimd(self._ceiling))

    # --- transitions: in memory at once, then in the bucket, in the background

    def _open(self, origin: str, task: DeliveryTask, failures: int) -> None:
        breaker = breakers.opened(origin, self._clock(), self._interval_s)
        self._breakers[origin] = (breaker, 0)
        self._restart_low(origin)
        reason = f"{failures} consecutive failures"
        self._spawn(self._opened(breaker, task.target.webhook_id, reason))

    async def _opened(self, breaker: Breaker, webhook: str | None, reason: str) -> None:
        try:
            stored = await self._write(breaker.endpoint, breaker, 0)
        except Conflict:
            return  # another replica opened it first: the watch brings its record
        except BusError as error:  # held here meanwhile; the next probe stores it
            log.warning(
                "endpoint down, not shared yet", endpoint=breaker.endpoint, error=str(error)
            )
            return
        self._learn(breaker, stored)
        log.warning("endpoint down", endpoint=breaker.endpoint, webhook=webhook, reason=reason)
        await self._ops.emit(
            "endpoint.down", endpoint=breaker.endpoint, webhook=webhook, reason=reason
        )

    def _probe_failed(self, origin: str, breaker: Breaker, revision: int) -> None:
        again = breakers.probe_failed(breaker, self._clock(), self._interval_s)
        self._breakers[origin] = (again, revision)
        self._spawn(self._store(again, revision))

    async def _store(self, breaker: Breaker, revision: int) -> None:
        with contextlib.suppress(BusError):  # lost a race: the watch brings the winner's
            self._learn(breaker, await self._write(breaker.endpoint, breaker, revision))

    def _close(self, origin: str, task: DeliveryTask) -> None:
        breaker, revision = self._breakers.pop(origin)
        self._closed_at[origin] = revision
        self._failures.pop(origin, None)
        self._restart_low(origin)
        self._spawn(self._closed(breaker, revision, task.target.webhook_id))

    async def _closed(self, breaker: Breaker, revision: int, webhook: str | None) -> None:
        if revision == 0:
            return  # never stored, never announced
        try:
            async with nats_errors("cannot close an endpoint's breaker"):
                await self._kv.delete(endpoint_key(breaker.endpoint), last=revision)
        except BusError:
            return  # another replica closed it, or reopened it meanwhile
        down_s = round(self._clock() - breaker.since_s, 1)
        log.info("endpoint recovered", endpoint=breaker.endpoint, webhook=webhook, down_s=down_s)
        reason = f"a probe succeeded after {down_s:g}s down"
        await self._ops.emit(
            "endpoint.recovered", endpoint=breaker.endpoint, webhook=webhook, reason=reason
        )

    async def _write(self, origin: str, breaker: Breaker, revision: int) -> int:
        value = breakers.encode(breaker)
        async with nats_errors("cannot store an endpoint's breaker"):
            if revision == 0:
                return await self._kv.create(endpoint_key(origin), value)
            return await self._kv.update(endpoint_key(origin), value, last=revision)

    def _learn(self, breaker: Breaker, revision: int) -> None:
        """A breaker as stored at `revision`, unless a later one is known already."""
        known = self._breakers.get(breaker.endpoint)
        if revision <= self._closed_at.get(breaker.endpoint, 0):
            return  # the echo of a record this replica has closed since
        if known is None or known[1] < revision:
            self._breakers[breaker.endpoint] = (breaker, revision)
            if known is None:
                self._restart_low(breaker.endpoint)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Let the bucket writes under way finish (shutdown), for SETTLE_S at most."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=SETTLE_S)

    # --- following the bucket

    async def follow(self, stopping: asyncio.Event) -> None:
        """Watch the bucket until `stopping`; the breakers known stay in force while a failed
        watch is restarted."""
        await follow_bucket(self._kv, stopping, self._take, "endpoints bucket")

    def _take(self, entry: KeyValue.Entry | None) -> None:
        if entry is None:
            self.loaded.set()  # the bucket's state has arrived
        elif entry.operation in (KV_DEL, KV_PURGE):
            self._forget(entry.key, entry.revision or 0)
        else:
            try:
                self._learn(breakers.decode(entry.value or b""), entry.revision or 0)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.error("unreadable endpoint record, ignored", key=entry.key)

    def _forget(self, key: str, revision: int) -> None:
        for origin in [origin for origin in self._closed_at if endpoint_key(origin) == key]:
            del self._closed_at[origin]
        for origin, (_breaker, known) in list(self._breakers.items()):
            if endpoint_key(origin) == key and known < revision:
                del self._breakers[origin]
                self._failures.pop(origin, None)
                self._restart_low(origin)

    # --- what GET /endpoints and the metrics show

    def statuses(self) -> list[EndpointStatus]:
        now_s = self._clock()
        origins = {*self._breakers, *self._adaptive, *self._held_now(now_s)}
        return [self._status(origin, now_s) for origin in sorted(origins)]

    def _status(self, origin: str, now_s: float) -> EndpointStatus:
        entry = self._breakers.get(origin)
        aimd = self._adaptive.get(origin)
        held = sum(count for count, _until in self._held.get(origin, {}).values())
        return EndpointStatus(
            endpoint=origin,
            state=entry[0].state if entry else "healthy",
            concurrency_limit=aimd.limit if aimd else self._ceiling,
            held=held,
            since=timestamp(entry[0].since_s) if entry else None,
        )

    def _held_now(self, now_s: float) -> list[str]:
        """Origins with deliveries held lately; counts past their time are dropped."""
        for origin, held in list(self._held.items()):
            for key, (_count, until_s) in list(held.items()):
                if until_s < now_s:
                    del held[key]
            if not held:
                del self._held[origin]
        return list(self._held)
