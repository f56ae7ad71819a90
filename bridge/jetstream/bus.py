"""The NATS connection and the JetStream topology the bridge needs; nats errors mapped here.

nats-py's exceptions are translated in one function, `nats_errors`, into this tree; the rest
of the bridge catches only these:

    BusError          unreachable or refusing (`refused`: this request was turned down)
     ├ NotFound       no such stream, consumer, message or key (`found` turns it into None)
     └ NoAnswer       nothing arrived in time (an empty fetch, a quiet watch, a lost request)

Topology (created if missing; when present, only the bridge's own streams change, to gain
subjects a newer version added):
- the events stream (`NATS_STREAM`) and its durable pull consumer (`NATS_DURABLE`);
- `<durable>-tasks`: a work-queue stream of deliveries waiting for a (re)try, with a durable
  consumer of the same name; retries wait there under `nak(delay)`, outside the events
  consumer, so a dead endpoint's backlog never counts against the events' ack-pending limit;
  first attempts deferred together to a saturated URL wait there as one batch message, and
  ordered deliveries on their (job, URL) pair's own subject (`bridge.policy.ordering`);
- the dead-letter stream (`DLQ_STREAM`, `greenlight.webhooks.dlq.>`);
- the delivery log (`DELIVERY_LOG_STREAM`, `greenlight.webhooks.log.>`), one record per attempt;
- the audit trail (`GREENLIGHT_WEBHOOKS_AUDIT`, `greenlight.webhooks.audit.>`, `AUDIT_MAX_AGE`);
- operational events (`GREENLIGHT_WEBHOOKS_OPS`, `greenlight.webhooks.ops.>`);
- KV buckets `<durable>-jobs` (per-job webhooks, TTL), `<durable>-replays` (replay marks) and
  `<durable>-endpoints` (breakers of endpoints that are not healthy, TTL), `<durable>-disabled`
  (YAML webhooks disabled at run time).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from bridge.config.secret import redact_url
from bridge.config.settings import Settings, nats_tls_context
from bridge.policy import ordering
from bridge.policy.audit import AUDIT_STREAM, AUDIT_SUBJECT_PREFIX
from bridge.policy.dead_letter import DLQ_SUBJECT_PREFIX
from bridge.policy.ops import OPS_MAX_AGE_S, OPS_STREAM, OPS_SUBJECT_PREFIX
from bridge.policy.tasks import DeliveryTask, batch_message_id, encode_batch, encode_task

LOG_SUBJECT_PREFIX = "greenlight.webhooks.log"
READ_BATCH = 256
READ_TIMEOUT_S = 1.0
READER_IDLE_S = 5.0  # the server removes a finished reader's ephemeral consumer this soon
TASKS_MAX_ACK_PENDING = 100_000
PUBLISH_RETRY_S = 0.5
# A request lost with a dropped connection (nats-server restarting) is never answered: ask
# again soon, within the patience, rather than wait out nats-py's 5 s default past it.
PUBLISH_REQUEST_S = 1.0
StateCallback = Callable[[bool], None]
T = TypeVar("T")

# The nats types other parts name: they import these, so that only this package imports
# nats.
Connection = Client
JetStream = JetStreamContext


# room for the headers of a message (Nats-Msg-Id): the server's max_payload counts them
HEADERS_ROOM_BYTES = 1024


class BusError(Exception):
    """NATS is unreachable or refused a request; the message is one line. `refused`: this
    request itself was turned down (too big, a bad request), so asking again cannot help."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class NotFound(BusError):
    """NATS has no such stream, consumer, message or key."""


class Conflict(BusError):
    """A compare-and-set lost: the key has another revision than the one expected."""


class NoAnswer(BusError):
    """Nothing arrived in time: an empty fetch, a quiet watch, an unanswered request."""


RATE_KEY_TTL_S = 3600.0  # an idle webhook's next free slot is in the past: it may go
# a breaker is rewritten by every failed probe (a minute apart at most): one left alone this
# long belongs to an endpoint no replica delivers to any more
ENDPOINT_KEY_TTL_S = 3600.0


def max_body_bytes(nc: Client) -> int:
    """The largest body of a message the bridge writes (a record, a KV value)."""
    return nc.max_payload - HEADERS_ROOM_BYTES


def tasks_subject(settings: Settings) -> str:
    return f"{settings.tasks_stream}.due"


def task_subject(settings: Settings, task: DeliveryTask) -> str:
    """Where a single task waits: an ordered delivery on its (job, URL) pair's own subject."""
    if task.order_seq:
        return ordering.subject(settings.tasks_stream, task)
    return tasks_subject(settings)


def batch_subject(settings: Settings, count: int | None = None) -> str:
    """Where batches of `count` tasks go; with no count, the wildcard over every size."""
    return f"{settings.tasks_stream}.batch.{'*' if count is None else count}"


@asynccontextmanager
async def nats_errors(action: str) -> AsyncIterator[None]:
    """Translate nats-py's exceptions into BusError: the one place that knows them."""
    try:
        yield
    except (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError) as error:
        message = f"{action}: {_detail(error)}"
        if isinstance(error, TimeoutError):  # nats-py's TimeoutError is one too
            raise NoAnswer(message) from error
        if isinstance(error, nats.js.errors.NotFoundError):
            raise NotFound(message, refused=True) from error
        if _wrong_revision(error):
            raise Conflict(message, refused=True) from error
        raise BusError(message, refused=_refused(error)) from error


async def found(action: str, lookup: Awaitable[T]) -> T | None:
    """What `lookup` returns, or None when NATS has no such thing; other errors as
    `nats_errors` translates them."""
    try:
        async with nats_errors(action):
            return await lookup
    except NotFound:
        return None


def _detail(error: BaseException) -> str:
    if isinstance(error, nats.js.errors.ServiceUnavailableError):
        # nats-py's own text reads "code=None err_code=None description='None'"
        return "JetStream unavailable (no leader: a cluster election?)"
    return str(error).strip() or type(error).__name__


def _wrong_revision(error: Exception) -> bool:
    """nats-py says so for KV updates, and only by the API's code for a KV delete."""
    if isinstance(error, nats.js.errors.KeyWrongLastSequenceError):
        return True
    return isinstance(error, nats.js.errors.APIError) and error.err_code in _WRONG_LAST_SEQUENCE


_WRONG_LAST_SEQUENCE = (10071, 10164)  # JSStreamWrongLastSequence(Constant)Err


def _refused(error: Exception) -> bool:
    """Errors about the request, not about the server being reachable or ready."""
    if isinstance(error, nats.js.errors.ServiceUnavailableError | nats.js.errors.ServerError):
        return False
    return isinstance(error, nats.errors.MaxPayloadError | nats.js.errors.APIError)


async def publish(
    js: JetStreamContext, subject: str, payload: bytes, msg_id: str, patience_s: float
) -> None:
    """Publish and wait for the stream's ack, retrying through a short outage (not a refusal).

    Safe to repeat: every message the bridge publishes has a deterministic Nats-Msg-Id.
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            async with nats_errors(f"cannot publish to {subject}"):
                await _acked(js, subject, payload, msg_id)
            return
        except BusError as error:
            if error.refused or time.monotonic() > deadline:
                raise
            await asyncio.sleep(PUBLISH_RETRY_S)


async def _acked(js: JetStreamContext, subject: str, payload: bytes, msg_id: str) -> None:
    """Publish and wait for the stream's ack, at most PUBLISH_REQUEST_S.

    `publish_async` and a plain timer cost about a third less CPU than `js.publish`, a request
    under `asyncio.wait_for`; every deferral, retry and dead letter pays this.
    """
    ack = await js.publish_async(subject, payload, headers={"Nats-Msg-Id": msg_id})
    timer = asyncio.get_running_loop().call_later(PUBLISH_REQUEST_S, _expire, ack)
    try:
        await ack
    finally:
        timer.cancel()


def _expire(ack: asyncio.Future[PubAck]) -> None:
    if not ack.done():  # nats-py never times out an ack; its permit is released on done
        ack.set_exception(TimeoutError("no ack from the stream"))


async def publish_task(
    js: JetStreamContext, settings: Settings, task: DeliveryTask, patience_s: float
) -> None:
    """Queue a delivery task for the tasks consumer (first try, retry or replay)."""
    await publish(js, task_subject(settings, task), encode_task(task), task.message_id, patience_s)


async def publish_tasks(
    js: JetStreamContext,
    settings: Settings,
    tasks: list[DeliveryTask],
    payloads: list[bytes],
    patience_s: float,
) -> None:
    """Queue tasks for one URL (encoded as `payloads`): one alone, more as one batch."""
    if len(tasks) == 1:
        subject, payload = task_subject(settings, tasks[0]), payloads[0]
        msg_id = tasks[0].message_id
    else:
        subject, payload = batch_subject(settings, len(tasks)), encode_batch(payloads)
        msg_id = batch_message_id(tasks)
    await publish(js, subject, payload, msg_id, patience_s)


async def fetch(sub: JetStreamContext.PullSubscription, batch: int, timeout_s: float) -> list[Msg]:
    """Up to `batch` messages; an empty list when none arrived within the timeout."""
    try:
        async with nats_errors("fetch"):
            return await sub.fetch(batch, timeout=timeout_s)
    except NoAnswer:
        # nats-py raises its own TimeoutError, or asyncio's from a later stage of fetch
        return []


async def read_all(
    js: JetStreamContext, stream: str, subject: str, config: ConsumerConfig
) -> AsyncIterator[Msg]:
    """The messages of `stream` on `subject` from the config's start policy to the current end.

    Reads through an ephemeral consumer without acks; it ends at the last message that was
    pending when the read began, so a busy stream cannot keep a reader going forever.
    """
    reader = dataclasses.replace(
        config, ack_policy=AckPolicy.NONE, inactive_threshold=READER_IDLE_S
    )
    sub = await js.pull_subscribe(subject, stream=stream, config=reader)
    try:
        pending = (await sub.consumer_info()).num_pending or 0
        while pending > 0 and (batch := await fetch(sub, min(pending, READ_BATCH), READ_TIMEOUT_S)):
            for msg in batch:
                yield msg
            pending = min(pending - len(batch), batch[-1].metadata.num_pending)
    finally:
        await sub.unsubscribe()


async def read_latest(
    js: JetStreamContext, stream: str, subject: str, limit: int, keep: Callable[[Msg], T | None]
) -> list[T]:
    """The latest `limit` messages on `subject` that `keep` turns into a value, oldest first.

    Reads back from the stream's end in growing windows (`limit`, then four times as many...)
    until enough are kept or the window reaches the first message, so the common answer reads
    only the stream's tail, and a sparse filter still finds its matches.
    """
    last_seq = (await js.stream_info(stream)).state.last_seq
    window = limit
    while True:
        start = max(1, last_seq - window + 1)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        kept = [
            value
            async for msg in read_all(js, stream, subject, config)
            if (value := keep(msg)) is not None
        ]
        if len(kept) >= limit or start == 1:
            return kept[-limit:]
        window *= 4


def stragglers(sub: JetStreamContext.PullSubscription) -> list[Msg]:
    """Messages a pull request delivered after our fetch stopped waiting for it.

    nats-py keeps them in the subscription's queue for the next fetch; at shutdown there is
    no next fetch, so they must be taken and handed back or they wait out the ack deadline.
    nats-py has no public call for this: this is the one place that reaches inside it.
    """
    queue = sub._sub._pending_queue
    taken: list[Msg] = []
    while not queue.empty():
        msg = queue.get_nowait()
        if not JetStreamContext.is_status_msg(msg):
            taken.append(msg)
    return taken


async def connect(settings: Settings, on_state: StateCallback | None = None) -> Client:
    """Connect or fail fast; once connected, the client reconnects forever on its own."""
    last_error = _LastError()
    callbacks = _callbacks(on_state or (lambda _connected: None), last_error.record)
    action = f"cannot connect to NATS at {_shown_servers(settings)}"
    nc = Client()
    try:
        async with nats_errors(action):
            await _connect_or_give_up(
                nc,
                last_error,
                servers=list(settings.nats_urls),
                name="webhook-bridge",
                # nats-py applies this to the first connect too, where -1 would loop forever.
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                connect_timeout=5,
                **callbacks,
                **_auth(settings),
            )
    except BusError as error:
        await _quietly_close(nc)
        raise last_error.explain(action, error) from error
    nc.options["max_reconnect_attempts"] = -1
    return nc


async def _connect_or_give_up(nc: Client, last_error: _LastError, **options: Any) -> None:
    """nats-py waits for ever after a failed TLS handshake: stop at the first such error."""
    connecting = asyncio.ensure_future(nc.connect(**options))
    handshake_failed = asyncio.ensure_future(last_error.tls_failed.wait())
    await asyncio.wait({connecting, handshake_failed}, return_when=asyncio.FIRST_COMPLETED)
    handshake_failed.cancel()
    if not connecting.done():
        connecting.cancel()
        raise ConnectionError("TLS handshake failed")
    connecting.result()


async def _quietly_close(nc: Client) -> None:
    with suppress(Exception):  # a client that never connected may not close cleanly
        await nc.close()


class _LastError:
    """The last error nats-py reported while connecting: its NoServersError hides the cause
    (an authorization violation, a certificate that does not verify), this names it."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.tls_failed = asyncio.Event()

    async def record(self, error: Exception) -> None:
        self.error = error
        if isinstance(error, ssl.SSLError):
            self.tls_failed.set()

    def explain(self, action: str, fallback: BusError) -> BusError:
        error = self.error or fallback.__cause__
        if not isinstance(error, Exception):
            return fallback
        detail = (str(error).strip() or type(error).__name__).splitlines()[0]
        if "authorization violation" in detail.lower():
            detail = f"authorization violation ({_AUTH_HINT})"
        elif isinstance(error, ssl.SSLError):
            reason = (error.reason or detail).lower().replace("_", " ")
            detail = f"TLS: {reason} (check NATS_TLS_CA, NATS_TLS_CERT and NATS_TLS_KEY)"
        elif isinstance(error, ConnectionResetError):
            # the server's "-ERR Authorization Violation" can be lost in the reset that follows
            detail = f"connection reset by the server (if it refused the credentials, {_AUTH_HINT})"
        return BusError(f"{action}: {detail}")


_AUTH_HINT = "check NATS_CREDS, NATS_USER and NATS_PASSWORD, or NATS_TOKEN"


def _shown_servers(settings: Settings) -> str:
    return ", ".join(redact_url(url) for url in settings.nats_urls)


def _callbacks(
    on_state: StateCallback, on_error: Callable[[Exception], Awaitable[None]]
) -> dict[str, Callable[..., Awaitable[None]]]:
    async def disconnected() -> None:
        on_state(False)

    async def reconnected() -> None:
        on_state(True)

    return {
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "closed_cb": disconnected,
        # reconnects are handled by the client; state changes are reported above
        "error_cb": on_error,
    }


def _auth(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.nats_creds:
        options["user_credentials"] = settings.nats_creds
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password.reveal() if settings.nats_password else ""
    if settings.nats_token:
        options["token"] = settings.nats_token.reveal()
    tls = nats_tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    return options


_SETTING_UP = "cannot set up JetStream"


async def ensure_topology(js: JetStreamContext, settings: Settings) -> None:
    """Create whatever streams, buckets and consumers are missing.

    Streams and buckets get NATS_REPLICAS copies (a cluster keeps them through the loss of a
    server); consumers inherit their stream's replica count.
    """
    replicas = settings.nats_replicas
    async with nats_errors(_SETTING_UP):
        for config in _streams(settings):
            owned = config.name != settings.nats_stream  # the events stream is the producers'
            await _ensure_stream(js, dataclasses.replace(config, num_replicas=replicas), owned)
        await _ensure_consumer(js, settings.nats_stream, _events_consumer(settings))
        await _ensure_consumer(js, settings.tasks_stream, _tasks_consumer(settings))
        await ensure_bucket(js, settings.jobs_bucket, settings.job_webhook_ttl_s, replicas)
        await ensure_bucket(js, settings.replays_bucket, settings.dlq_max_age_s, replicas)
        await ensure_bucket(js, settings.webhooks_bucket, 0, replicas)
        await ensure_bucket(js, settings.rates_bucket, RATE_KEY_TTL_S, replicas)
        await ensure_bucket(js, settings.endpoints_bucket, ENDPOINT_KEY_TTL_S, replicas)
        await ensure_bucket(js, settings.disabled_bucket, 0, replicas)


async def ensure_bucket(js: JetStreamContext, name: str, ttl_s: float, replicas: int) -> KeyValue:
    present = await found(_SETTING_UP, js.key_value(name))
    if present is not None:
        return present
    config = KeyValueConfig(
        bucket=name, ttl=ttl_s, storage=StorageType.FILE, history=1, replicas=replicas
    )
    return await js.create_key_value(config)


async def _ensure_stream(js: JetStreamContext, config: StreamConfig, owned: bool) -> None:
    """Create it if missing; a stream of the bridge's own made by an older version also gets
    the subjects added since (the tasks stream's batches)."""
    assert config.name is not None
    info = await found(_SETTING_UP, js.stream_info(config.name))
    if info is None:
        await js.add_stream(config)
        return
    present = info.config
    subjects = present.subjects or []
    missing = [subject for subject in config.subjects or [] if subject not in subjects]
    if owned and missing:
        await js.update_stream(dataclasses.replace(present, subjects=[*subjects, *missing]))


async def _ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """add_consumer is create-or-update: only call it when the durable does not exist."""
    assert config.durable_name is not None
    if await found(_SETTING_UP, js.consumer_info(stream, config.durable_name)) is None:
        await js.add_consumer(stream, config)


def _streams(settings: Settings) -> list[StreamConfig]:
    return [
        _events_stream(settings),
        _tasks_stream(settings),
        _dlq_stream(settings),
        _log_stream(settings),
        _audit_stream(settings),
        _stream(OPS_STREAM, [f"{OPS_SUBJECT_PREFIX}.>"], max_age_s=OPS_MAX_AGE_S),
    ]


def _events_stream(settings: Settings) -> StreamConfig:
    subjects = list(settings.nats_subjects)
    return _stream(settings.nats_stream, subjects, max_age_s=settings.nats_stream_max_age_s)


def _tasks_stream(settings: Settings) -> StreamConfig:
    ordered = ordering.wildcard(settings.tasks_stream)
    subjects = [tasks_subject(settings), batch_subject(settings), ordered]
    return _stream(settings.tasks_stream, subjects, retention=RetentionPolicy.WORK_QUEUE)


def _dlq_stream(settings: Settings) -> StreamConfig:
    subjects = [f"{DLQ_SUBJECT_PREFIX}.>"]
    return _stream(settings.dlq_stream, subjects, max_age_s=settings.dlq_max_age_s)


def _log_stream(settings: Settings) -> StreamConfig:
    subjects = [f"{LOG_SUBJECT_PREFIX}.>"]
    return _stream(
        settings.delivery_log_stream, subjects, max_age_s=settings.delivery_log_max_age_s
    )


def _audit_stream(settings: Settings) -> StreamConfig:
    subjects = [f"{AUDIT_SUBJECT_PREFIX}.>"]
    return _stream(AUDIT_STREAM, subjects, max_age_s=settings.audit_max_age_s)


def _stream(
    name: str,
    subjects: list[str],
    *,
    retention: RetentionPolicy = RetentionPolicy.LIMITS,
    max_age_s: float | None = None,
) -> StreamConfig:
    """A file-backed stream; publishes with a Nats-Msg-Id are de-duplicated for two minutes."""
    return StreamConfig(
        name=name,
        subjects=subjects,
        retention=retention,
        storage=StorageType.FILE,
        max_age=max_age_s,
        duplicate_window=120,
    )


def _events_consumer(settings: Settings) -> ConsumerConfig:
    subjects = list(settings.nats_subjects)
    return _consumer(
        settings,
        max_ack_pending=max(1000, settings.concurrency * 4),
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
    )


def _tasks_consumer(settings: Settings) -> ConsumerConfig:
    return _consumer(settings, max_ack_pending=TASKS_MAX_ACK_PENDING)


def _consumer(settings: Settings, **specific: Any) -> ConsumerConfig:
    """What both durables share: explicit acks from the start, redelivered without end."""
    return ConsumerConfig(
        durable_name=settings.nats_durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.effective_ack_wait_s,
        max_deliver=-1,
        **specific,
    )
