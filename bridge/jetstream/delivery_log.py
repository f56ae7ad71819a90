"""The delivery log: one record per attempt in a JetStream stream that any replica can query.

Records go to `greenlight.webhooks.log.<url>.<job>.<event>`, each token a short hash, so
the server's subject index finds one job's or one event's attempts, or an endpoint's latest,
without a scan. Recording an attempt never adds a round trip to the delivery it describes:
- records of failed attempts are JetStream publishes whose acks are checked in the
  background; one that fails or is not acknowledged in time is counted in
  `webhook_bridge_delivery_log_errors_total`;
- records of successful attempts, the common path, are plain NATS publishes that the stream
  stores without acknowledging: waiting for an ack costs the client a share of every
  delivery's CPU that matters (docs/performance.md). Such a record is lost only when the
  stream cannot store it (no JetStream leader), and it tells what the receiver's 2xx and the
  acked event already guarantee.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Literal

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, PubAck

from bridge.config.secret import redact_url
from bridge.delivery.attempt import AttemptResult
from bridge.jetstream import bus
from bridge.jetstream.bus import LOG_SUBJECT_PREFIX
from bridge.observability.logs import log
from bridge.observability.metrics import Metrics
from bridge.policy.dead_letter import Endpoint
from bridge.policy.tasks import DeliveryTask, timestamp

Result = Literal["delivered", "retry", "dead_letter", "tested"]
ACK_TIMEOUT_S = 10.0
# below nats-py's publish_async permits (4000), so a publish never waits for one
MAX_OUTSTANDING = 3000
NO_JOB = "_"
Keep = Callable[["Entry"], bool]


class Entry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One attempt as the delivery log keeps it."""

    delivery_id: str
    event_id: str
    event: str
    job_id: str | None
    tenant_id: str | None
    endpoint: Endpoint
    attempt: int
    at: str
    outcome: str
    status_code: int | None
    message: str
    duration_ms: int
    result: Result
    retry_at: str | None = None
    reason: str | None = None


def entry_for(
    task: DeliveryTask, result: AttemptResult, outcome: Result, detail: str | float | None
) -> Entry:
    """The record of attempt `task.attempt`; `detail`: the retry time or the dead-letter reason."""
    target = task.target
    return Entry(
        delivery_id=task.delivery_id,
        event_id=task.event_id,
        event=task.event,
        job_id=task.job_id,
        tenant_id=task.tenant_id,
        endpoint=Endpoint(target.webhook_id, _shown_url(target.url), target.source),
        attempt=task.attempt,
        at=timestamp(time.time() - result.duration_s),
        outcome=result.outcome,
        status_code=result.status_code,
        message=result.message,
        duration_ms=result.duration_ms,
        result=outcome,
        retry_at=timestamp(detail) if isinstance(detail, float) else None,
        reason=detail if isinstance(detail, str) else None,
    )


def token(value: str | None) -> str:
    """A subject token for any string (ids may hold dots, spaces or wildcards)."""
    if not value:
        return NO_JOB
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def subject_for(url: str | None, job_id: str | None, event_id: str | None) -> str:
    """The record subject; None stands for `*` (any)."""
    url_token = "*" if url is None else _url_token(url)
    tokens = ["*" if part is None else token(part) for part in (job_id, event_id)]
    return ".".join((LOG_SUBJECT_PREFIX, url_token, *tokens))


@functools.lru_cache(maxsize=4096)
def _url_token(url: str) -> str:
    return token(url)


@functools.lru_cache(maxsize=4096)
def _shown_url(url: str) -> str:
    return redact_url(url)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Entry)


class DeliveryLog:
    """Writes records without waiting; confirms them in the background."""

    def __init__(self, js: JetStreamContext, nc: Client, metrics: Metrics) -> None:
        self._js = js
        self._nc = nc
        self._metrics = metrics
        self._unconfirmed: collections.deque[tuple[float, asyncio.Future[PubAck]]] = (
            collections.deque()
        )
        self._outstanding = 0

    async def write(self, url: str, entry: Entry) -> None:
        if entry.result == "delivered":
            await self._publish_unconfirmed(url, entry)
        else:
            await self._publish_confirmed(url, entry)

    async def _publish_unconfirmed(self, url: str, entry: Entry) -> None:
        subject = subject_for(url, entry.job_id or "", entry.event_id)
        try:
            await self._nc.publish(subject, _ENCODER.encode(entry))
        except Exception as error:  # never let the log hold up a delivery
            self._failed(error)

    async def _publish_confirmed(self, url: str, entry: Entry) -> None:
        now_s = time.monotonic()
        self._expire(now_s)
        if self._outstanding >= MAX_OUTSTANDING:  # the server stopped answering: drop, count
            self._failed(TimeoutError("too many delivery log writes unacknowledged"))
            return
        subject = subject_for(url, entry.job_id or "", entry.event_id)
        try:
            ack = await self._js.publish_async(subject, _ENCODER.encode(entry))
        except Exception as error:  # never let the log hold up a delivery
            self._failed(error)
            return
        self._outstanding += 1
        ack.add_done_callback(self._confirmed)
        self._unconfirmed.append((now_s + ACK_TIMEOUT_S, ack))

    def _confirmed(self, ack: asyncio.Future[PubAck]) -> None:
        self._outstanding -= 1
        if not ack.cancelled() and ack.exception() is not None:
            self._failed(ack.exception())

    def _expire(self, now_s: float) -> None:
        """Give up on overdue acks: nats-py never times them out, and each holds a permit."""
        queue = self._unconfirmed
        while queue and (queue[0][1].done() or queue[0][0] < now_s):
            _deadline, ack = queue.popleft()
            if not ack.done():
                ack.cancel()
                self._failed(TimeoutError("no ack from the delivery log stream"))

    def _failed(self, error: BaseException | None) -> None:
        self._metrics.delivery_log_errors.inc()
        log.debug("delivery log write failed", error=str(error))

    async def flush(self, timeout_s: float) -> None:
        """Wait for outstanding writes (at shutdown), then give up on the rest."""
        pending = [ack for _deadline, ack in self._unconfirmed if not ack.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        self._expire(float("inf"))


async def query(
    js: JetStreamContext,
    stream: str,
    *,
    job_id: str | None,
    event_id: str | None,
    limit: int,
    keep: Keep = lambda _entry: True,
) -> list[Entry]:
    """The latest `limit` attempts of one job and/or event that `keep` accepts, oldest first."""
    subject = subject_for(None, job_id, event_id)
    config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    found: collections.deque[Entry] = collections.deque(maxlen=limit)
    async for msg in bus.read_all(js, stream, subject, config):
        entry = _DECODER.decode(msg.data)
        if job_id in (None, entry.job_id) and event_id in (None, entry.event_id) and keep(entry):
            found.append(entry)
    return list(found)


async def of_url(
    js: JetStreamContext, stream: str, url: str, limit: int, within_s: float
) -> list[Entry]:
    """The latest `limit` attempts to one URL in the last `within_s`, oldest first (bounded
    by time, so that a busy endpoint's week of records is never read whole)."""
    found: collections.deque[Entry] = collections.deque(maxlen=limit)
    async for entry in each_of_url(js, stream, url, within_s):
        found.append(entry)
    return list(found)


async def each_of_url(
    js: JetStreamContext, stream: str, url: str, within_s: float
) -> AsyncIterator[Entry]:
    """Every attempt to one URL in the last `within_s`, oldest first."""
    since = datetime.fromtimestamp(time.time() - within_s, UTC)
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
    async for msg in bus.read_all(js, stream, subject_for(url, None, None), config):
        yield _DECODER.decode(msg.data)


async def recent(
    js: JetStreamContext, stream: str, limit: int, keep: Keep = lambda _entry: True
) -> list[Entry]:
    """The last `limit` attempts across every endpoint that `keep` accepts, oldest first."""

    def kept(msg: Msg) -> Entry | None:
        entry = _DECODER.decode(msg.data)
        return entry if keep(entry) else None

    return await bus.read_latest(js, stream, f"{LOG_SUBJECT_PREFIX}.>", limit, kept)


async def latest(js: JetStreamContext, stream: str, urls: Iterable[str]) -> dict[str, Entry]:
    """The most recent attempt to each URL that has one."""
    found: dict[str, Entry] = {}
    for url in urls:
        last = js.get_last_msg(stream, f"{LOG_SUBJECT_PREFIX}.{token(url)}.>")
        msg = await bus.found("cannot read the delivery log", last)
        if msg is None:
            continue
        found[url] = _DECODER.decode(msg.data or b"")
    return found
