"""The event and task handlers, table-driven: each row is a message and the state of the
handler's collaborators (fakes passed in: no NATS, no network), and asserts the decision the
handler returns and the records it published before returning it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from bridge.config.settings import load_settings
from bridge.config.webhooks import NamedWebhook
from bridge.delivery.attempt import AttemptResult
from bridge.jetstream.bus import BusError, batch_subject, tasks_subject
from bridge.jetstream.dispatch import GiveUp, RetryAt, next_step
from bridge.jetstream.failures import HAND_BACK
from bridge.jetstream.handlers import (
    LEAVE_FOR_NEWER,
    PAUSED_RECHECK_S,
    EventHandler,
    TaskHandler,
)
from bridge.observability.metrics import Metrics
from bridge.policy.dead_letter import DeadLetter
from bridge.policy.decisions import ACK, TERM, Decision, Nak
from bridge.policy.entries import Admitted, admit
from bridge.policy.ordering import subject, wait_s
from bridge.policy.routing import Router, Standing, Target, standing
from bridge.policy.tasks import DeliveryTask, encode_batch, encode_task
from bridge.policy.trace_context import TraceContext

NOW_S = 1_768_386_600.0
DEFAULT = "https://hooks.example.com/default"
JOB_A = "https://a.example.com/hook"
JOB_B = "https://b.example.com/hook"
JOB_C = "https://c.example.com/hook"
OVERFLOW_S = 2.5
SETTINGS = load_settings(
    {
        "DEFAULT_WEBHOOK_URLS": DEFAULT,
        "JOB_WEBHOOK_MAX": "2",
        "EVENT_MAX_FAILURES": "3",
        "WEBHOOK_MAX_RETRY": "2",
    }
)
OK = AttemptResult("success", 200, "OK", 0.01, None)
HTTP_500 = AttemptResult("http_error", 500, "HTTP 500", 0.01, None)
GONE = AttemptResult("http_error", 410, "HTTP 410", 0.01, None)
OUTAGE = BusError("cannot publish: nats: connection closed")
REFUSED = BusError("cannot publish: maximum payload exceeded", refused=True)
Record = tuple[object, ...]
HOOK_URL = "https://crm.example.com/hook"
SHAPED = NamedWebhook(
    id="crm", url=HOOK_URL, scope="global", source="api", transform="{job: job_id, what: event}"
)
BROKEN = NamedWebhook(id="crm", url=HOOK_URL, scope="global", source="api", transform="abs(job_id)")
PAUSED = NamedWebhook(id="crm", url=HOOK_URL, source="api", active=False)
LIMITED = NamedWebhook(id="crm", url=HOOK_URL, scope="global", source="api", rate_limit=0.1)
ORDERED = NamedWebhook(id="crm", url=HOOK_URL, scope="global", source="api", ordering="job")


# --- fakes: what the handlers are given instead of NATS, HTTP and the clock ---


class FakeMsg:
    """What a handler reads of a NATS message. No ack, nak or term: a handler that tried to
    settle its message itself would fail here, since the loop does that."""

    def __init__(self, subject: str, data: bytes, *, delivered: int = 1) -> None:
        self.subject = subject
        self.data = data
        self.headers = {"Nats-Msg-Id": "evt-1"}
        self.metadata = SimpleNamespace(
            stream="GREENLIGHT_EVENTS",
            sequence=SimpleNamespace(stream=7),
            timestamp=datetime.fromtimestamp(NOW_S - 1, UTC),
            num_delivered=delivered,
        )


class FakeDispatcher:
    """Attempts answer from `results` (per URL, else 200) and follow up as `next_step` says;
    every record it would publish is noted in `published`, in order."""

    def __init__(
        self, results: dict[str, AttemptResult], router: Router, refusals: Iterable[Exception] = ()
    ) -> None:
        self._results = results
        self._router = router
        self._refusals = list(refusals)
        self.published: list[Record] = []
        self.bodies: list[bytes] = []
        self.tasks: list[DeliveryTask] = []  # attempted or deferred

    def webhook(self, task: DeliveryTask) -> NamedWebhook | None:
        webhook_id = task.target.webhook_id
        return None if webhook_id is None else self._router.named(webhook_id)

    def standing(self, task: DeliveryTask) -> Standing:
        return standing(task.target, self.webhook(task))

    async def attempt(self, task: DeliveryTask) -> None:
        self.published.append(("attempt", task.target.url))
        self.bodies.append(task.body)
        self.tasks.append(task)
        step = next_step(task, self._results.get(task.target.url, OK), SETTINGS, NOW_S)
        if isinstance(step, RetryAt):
            self.published.append(("task", task.target.url, task.attempt + 1))
        elif isinstance(step, GiveUp):
            self.published.append(("dead_letter", step.reason, task.target.url))

    def defer(self, task: DeliveryTask) -> asyncio.Future[None]:
        self.published.append(("deferred", task.target.url))
        self.tasks.append(task)
        stored = asyncio.get_running_loop().create_future()
        stored.set_result(None)
        return stored

    async def queue_at(self, task: DeliveryTask, slot_s: float) -> None:
        self.published.append(("booked", task.target.url, slot_s - NOW_S))

    async def requeue(self, singles: list[DeliveryTask], rest: list[DeliveryTask]) -> None:
        self.published.append(("requeued", len(singles), len(rest)))

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        if self._refusals:
            raise self._refusals.pop(0)
        endpoint = record.endpoint.id or record.endpoint.url
        self.published.append(("dead_letter", record.reason, endpoint))


class FakeLimiter:
    """Endpoints in `saturated` have no slot and no queue; a batch's endpoint has `room`."""

    def __init__(self, saturated: Iterable[str], room: int) -> None:
        self._saturated = set(saturated)
        self._room = room
        self.promised: list[tuple[str, int]] = []

    def inline_queue(self, url: str, _max_wait_s: float) -> int:
        return 0 if url in self._saturated else 16

    def has_room(self, url: str, _max_waiting: int) -> bool:
        return url not in self._saturated

    async def acquire(
        self, url: str, *, max_waiting: int = 0, timeout_s: float | None = None
    ) -> bool:
        return url not in self._saturated

    def redeem(self, url: str) -> None:
        pass

    def overflow_delay_s(self, _url: str, _now_s: float | None = None, count: int = 1) -> float:
        return OVERFLOW_S

    def room(self, _url: str, _max_waiting: int) -> int:
        return self._room

    def promise(self, url: str, count: int) -> None:
        self.promised.append((url, count))


class FakeRates:
    """Slots `every_s` apart from NOW_S, as one booking replica would get them."""

    def __init__(self, every_s: float, first_in_s: float) -> None:
        self._next_s = NOW_S + first_in_s
        self._every_s = every_s

    async def book(self, _webhook_id: str, _rate_per_s: float) -> float:
        slot_s, self._next_s = self._next_s, self._next_s + self._every_s
        return slot_s


class FakeTurns:
    """`ahead` deliveries of the task's (job, URL) pair go before it."""

    def __init__(self, ahead: int) -> None:
        self._ahead = ahead

    async def wait(self, task: DeliveryTask, delivered: int) -> Nak | None:
        assert task.order_seq, "only an ordered delivery asks for its turn"
        return Nak(wait_s(self._ahead, delivered)) if self._ahead else None

    def ended(self, task: DeliveryTask) -> None:
        assert not self._ahead, "only a delivery that had its turn ends it"


class FakeJobs:
    """Per-job webhook memory in a dictionary, admitting entries as the bucket does."""

    def __init__(self, known: dict[str, tuple[str, ...]]) -> None:
        self._known = dict(known)

    def note(self, job_id: str, entries: tuple[str, ...]) -> None:
        self._known[job_id] = self._admit(job_id, entries).kept

    async def remember(self, job_id: str, entries: tuple[str, ...]) -> Admitted:
        admitted = self._admit(job_id, entries)
        self._known[job_id] = admitted.kept
        return admitted

    async def recall(self, job_id: str) -> tuple[str, ...]:
        return self._known.get(job_id, ())

    def _admit(self, job_id: str, entries: tuple[str, ...]) -> Admitted:
        return admit((*self._known.get(job_id, ()), *entries), SETTINGS.job_webhook_max)


@dataclasses.dataclass
class World:
    """A handler's collaborators, as one row of a table sets them up."""

    results: dict[str, AttemptResult] = dataclasses.field(default_factory=dict)
    saturated: tuple[str, ...] = ()
    room: int = 0
    jobs: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    refusals: tuple[Exception, ...] = ()
    webhooks: tuple[NamedWebhook, ...] = ()
    rate_every_s: float = 10.0
    rate_first_in_s: float = 0.0
    ahead: int = 0
    ordering: str = "none"

    def __post_init__(self) -> None:
        self.rates: Any = FakeRates(self.rate_every_s, self.rate_first_in_s)
        self.router = Router(SETTINGS)
        self.router.replace_api(self.webhooks)
        self.dispatcher = FakeDispatcher(self.results, self.router, self.refusals)
        self.limiter = FakeLimiter(self.saturated, self.room)

    def event_handler(self) -> EventHandler:
        fakes: Any = (FakeJobs(self.jobs), self.dispatcher, self.limiter)
        jobs, dispatcher, limiter = fakes
        return EventHandler(
            msgspec.structs.replace(SETTINGS, ordering=self.ordering),
            router=self.router,
            jobs=jobs,
            dispatcher=dispatcher,
            limiter=limiter,
            rates=self.rates,
            metrics=Metrics(),
            max_event_bytes=64 * 1024,
            clock=lambda: NOW_S,
        )

    def task_handler(self) -> TaskHandler:
        fakes: Any = (self.dispatcher, self.limiter, FakeTurns(self.ahead))
        dispatcher, limiter, turns = fakes
        return TaskHandler(
            SETTINGS,
            dispatcher=dispatcher,
            limiter=limiter,
            rates=self.rates,
            turns=turns,
            clock=lambda: NOW_S,
        )


def assert_decided(decision: Decision, expected: Decision) -> None:
    assert decision == expected
    if expected == ACK:
        assert decision is ACK  # the shared constant: the common path allocates no decision


# --- events ---


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("headers", "carried"),
    [
        (
            {"traceparent": TRACEPARENT, "tracestate": "k=v"},
            TraceContext("0af7651916cd43dd8448eb211c80319c", "01", "b7ad6b7169203331", "k=v"),
        ),
        ({"traceparent": "00-bad-01"}, None),
        ({}, None),
    ],
)
async def test_every_delivery_of_an_event_carries_its_trace_context(
    headers: dict[str, str], carried: TraceContext | None
) -> None:
    world = World(saturated=(JOB_A,))
    msg = event(event="job.completed", job_id="j-1", webhook=[JOB_A])
    msg.headers |= headers
    assert await world.event_handler()(msg) is ACK
    traces = {task.trace for task in world.dispatcher.tasks}
    assert len(world.dispatcher.tasks) == 2
    assert len(traces) == 1, "inline and deferred deliveries share the event's trace"
    [trace] = traces
    assert trace is not None
    if carried is not None:
        assert trace == carried
    else:  # a new trace: each attempt will name its own span
        assert (trace.flags, trace.parent_id, trace.state) == ("01", None, None)


def event(**fields: object) -> FakeMsg:
    return FakeMsg("greenlight.events.job.completed", msgspec.json.encode(fields))


PLAIN = event(event="job.completed", job_id="j-1")


@pytest.mark.parametrize(
    ("msg", "world", "decision", "published"),
    [
        pytest.param(PLAIN, World(), ACK, [("attempt", DEFAULT)], id="delivered"),
        pytest.param(
            PLAIN,
            World(results={DEFAULT: HTTP_500}),
            ACK,
            [("attempt", DEFAULT), ("task", DEFAULT, 2)],
            id="retry-queued-then-ack",
        ),
        pytest.param(
            PLAIN,
            World(results={DEFAULT: GONE}),
            ACK,
            [("attempt", DEFAULT), ("dead_letter", "gone", DEFAULT)],
            id="give-up-dead-lettered-then-ack",
        ),
        pytest.param(
            PLAIN,
            World(saturated=(DEFAULT,)),
            ACK,
            [("deferred", DEFAULT)],
            id="saturated-endpoint-deferred",
        ),
        pytest.param(
            event(event="job.completed", job_id="j-1", webhook=[JOB_A, JOB_B]),
            World(saturated=(JOB_A,)),
            ACK,
            [("deferred", JOB_A), ("attempt", DEFAULT), ("attempt", JOB_B)],
            id="fan-out-one-saturated",
        ),
        pytest.param(
            FakeMsg("greenlight.events.job.completed", b"{not json"),
            World(),
            ACK,
            [("dead_letter", "invalid_event", None)],
            id="invalid-event-poison",
        ),
        pytest.param(
            event(job_id="j-1"),
            World(),
            ACK,
            [("attempt", DEFAULT)],
            id="named-by-its-subject",
        ),
        pytest.param(
            FakeMsg("greenlight.events.job.completed", b"[1, 2]"),
            World(),
            ACK,
            [("dead_letter", "invalid_event", None)],
            id="not-an-object",
        ),
        pytest.param(
            event(event="job.completed", job_id="j-1", webhook="no-such-hook"),
            World(),
            ACK,
            [("dead_letter", "unknown_webhook", "no-such-hook"), ("attempt", DEFAULT)],
            id="unknown-webhook-id",
        ),
        pytest.param(
            event(event="job.completed", job_id="j-1", webhook=[JOB_A, JOB_B, JOB_C]),
            World(),
            ACK,
            [
                ("dead_letter", "too_many_webhooks", None),
                ("attempt", DEFAULT),
                ("attempt", JOB_A),
                ("attempt", JOB_B),
            ],
            id="too-many-webhooks-in-the-event",
        ),
        pytest.param(
            event(event="job.completed", job_id="j-1", webhook=[JOB_C]),
            World(jobs={"j-1": (JOB_A, JOB_B)}),
            ACK,
            [
                ("dead_letter", "too_many_webhooks", None),
                ("attempt", DEFAULT),
                ("attempt", JOB_A),
                ("attempt", JOB_B),
            ],
            id="too-many-webhooks-for-the-job",
        ),
        pytest.param(
            PLAIN,
            World(jobs={"j-1": (JOB_A,)}),
            ACK,
            [("attempt", DEFAULT), ("attempt", JOB_A)],
            id="job-webhook-recalled",
        ),
        pytest.param(
            PLAIN,
            World(webhooks=(SHAPED,)),
            ACK,
            [("attempt", HOOK_URL), ("attempt", DEFAULT)],
            id="global-api-webhook",
        ),
        pytest.param(
            PLAIN,
            World(webhooks=(BROKEN,)),
            ACK,
            [("dead_letter", "transform_error", "crm"), ("attempt", DEFAULT)],
            id="transform-fails-on-this-event",
        ),
        pytest.param(
            event(event="job.completed", job_id="j-1", webhook="crm"),
            World(webhooks=(PAUSED,)),
            ACK,
            [("attempt", DEFAULT)],
            id="paused-webhook-named-by-the-event",
        ),
        pytest.param(
            PLAIN,
            World(webhooks=(LIMITED,)),
            ACK,
            [("attempt", HOOK_URL), ("attempt", DEFAULT)],
            id="rate-limited-slot-free-now",
        ),
        pytest.param(
            PLAIN,
            World(webhooks=(LIMITED,), rate_first_in_s=5.0),
            ACK,
            [("booked", HOOK_URL, 5.0), ("attempt", DEFAULT)],
            id="rate-limited-stored-for-its-slot",
        ),
        pytest.param(
            PLAIN,
            World(webhooks=(ORDERED,)),
            ACK,
            [("deferred", HOOK_URL), ("attempt", DEFAULT)],
            id="ordered-webhook-waits-its-turn-as-a-task",
        ),
        pytest.param(
            PLAIN,
            World(ordering="job"),
            ACK,
            [("deferred", DEFAULT)],
            id="ordered-default-url",
        ),
        pytest.param(
            event(event="job.completed", job_id="j-1", webhook=[JOB_A]),
            World(ordering="job", webhooks=(LIMITED,)),
            ACK,
            [("deferred", DEFAULT), ("deferred", JOB_A), ("attempt", HOOK_URL)],
            id="ordered-per-job-url-not-the-unordered-webhook",
        ),
        pytest.param(
            event(event="workflow.finished"),
            World(ordering="job"),
            ACK,
            [("attempt", DEFAULT)],
            id="no-job-no-order",
        ),
    ],
)
async def test_event(
    msg: FakeMsg, world: World, decision: Decision, published: list[Record]
) -> None:
    handled: Any = msg
    assert_decided(await world.event_handler()(handled), decision)
    assert world.dispatcher.published == published


@pytest.mark.parametrize(
    ("delivered", "error", "world", "decision", "published"),
    [
        pytest.param(1, ValueError("boom"), World(), HAND_BACK, [], id="first-failure"),
        pytest.param(2, ValueError("boom"), World(), HAND_BACK, [], id="below-the-count"),
        pytest.param(
            3,
            ValueError("boom"),
            World(),
            ACK,
            [("dead_letter", "handler_error", None)],
            id="handler-error-at-the-count",
        ),
        pytest.param(
            9,
            REFUSED,
            World(),
            ACK,
            [("dead_letter", "handler_error", None)],
            id="refused-past-the-count",
        ),
        pytest.param(3, OUTAGE, World(), HAND_BACK, [], id="outage-never-gives-up"),
        pytest.param(
            3,
            ValueError("boom"),
            World(refusals=(REFUSED,)),
            ACK,
            [("dead_letter", "handler_error", None)],
            id="bare-dead-letter-when-the-full-one-is-refused",
        ),
        pytest.param(
            3,
            ValueError("boom"),
            World(refusals=(REFUSED, REFUSED)),
            TERM,
            [],
            id="terminated-when-no-dead-letter-fits",
        ),
        pytest.param(
            3,
            ValueError("boom"),
            World(refusals=(OUTAGE,)),
            HAND_BACK,
            [],
            id="outage-while-giving-up",
        ),
    ],
)
async def test_failed_event(
    delivered: int, error: Exception, world: World, decision: Decision, published: list[Record]
) -> None:
    msg: Any = FakeMsg(PLAIN.subject, PLAIN.data, delivered=delivered)
    assert_decided(await world.event_handler().failed(msg, error), decision)
    assert world.dispatcher.published == published


async def test_the_transform_output_is_the_body_attempted() -> None:
    world = World(webhooks=(SHAPED,))
    handled: Any = PLAIN
    await world.event_handler()(handled)
    assert world.dispatcher.bodies[0] == b'{"job":"j-1","what":"job.completed"}'


# --- tasks ---

TASKS = tasks_subject(SETTINGS)
PAUSED_WAIT = Nak(PAUSED_RECHECK_S)


def named_task() -> DeliveryTask:
    target = Target(HOOK_URL, "crm", "named", webhook_id="crm", trusted=False)
    return msgspec.structs.replace(task(), target=target)


def task(attempt: int = 1, not_before_s: float = 0.0, n: int = 0) -> DeliveryTask:
    return DeliveryTask(
        delivery_id=f"dlv-{n}",
        event_id=f"evt-{n}",
        event="job.completed",
        job_id="j-1",
        tenant_id=None,
        target=Target(DEFAULT, "hooks.example.com", "default"),
        body=b"{}",
        published_at_s=NOW_S - 10,
        attempt=attempt,
        not_before_s=not_before_s,
    )


def single(the_task: DeliveryTask) -> FakeMsg:
    return FakeMsg(TASKS, encode_task(the_task))


def ordered(delivered: int = 1, not_before_s: float = 0.0) -> FakeMsg:
    the_task = msgspec.structs.replace(task(not_before_s=not_before_s), order_seq=7)
    where = subject(SETTINGS.tasks_stream, the_task)
    return FakeMsg(where, encode_task(the_task), delivered=delivered)


def batch(count: int) -> FakeMsg:
    payloads = [encode_task(task(n=n)) for n in range(count)]
    return FakeMsg(batch_subject(SETTINGS, count), encode_batch(payloads))


@pytest.mark.parametrize(
    ("msg", "world", "decision", "published"),
    [
        pytest.param(single(task()), World(), ACK, [("attempt", DEFAULT)], id="due-delivered"),
        pytest.param(single(named_task()), World(webhooks=(PAUSED,)), PAUSED_WAIT, [], id="paused"),
        pytest.param(
            single(named_task()),
            World(),
            ACK,
            [("dead_letter", "unknown_webhook", "crm")],
            id="webhook-deleted-meanwhile",
        ),
        pytest.param(
            single(named_task()),
            World(webhooks=(msgspec.structs.replace(PAUSED, active=True),)),
            ACK,
            [("attempt", HOOK_URL)],
            id="resumed",
        ),
        pytest.param(
            single(named_task()),
            World(webhooks=(LIMITED,), rate_first_in_s=5.0),
            ACK,
            [("booked", HOOK_URL, 5.0)],
            id="rate-limited-retry-booked",
        ),
        pytest.param(
            single(msgspec.structs.replace(named_task(), rate_slot_s=NOW_S)),
            World(webhooks=(LIMITED,), rate_first_in_s=5.0),
            ACK,
            [("attempt", HOOK_URL)],
            id="rate-limited-at-its-booked-slot",
        ),
        pytest.param(
            single(msgspec.structs.replace(named_task(), rate_slot_s=NOW_S - 30)),
            World(webhooks=(LIMITED,), rate_first_in_s=5.0),
            ACK,
            [("booked", HOOK_URL, 5.0)],
            id="rate-limited-slot-missed-booked-again",
        ),
        pytest.param(
            single(task(attempt=2)),
            World(results={DEFAULT: HTTP_500}),
            ACK,
            [("attempt", DEFAULT), ("task", DEFAULT, 3)],
            id="retry-queued-then-ack",
        ),
        pytest.param(
            single(task(attempt=3)),
            World(results={DEFAULT: HTTP_500}),
            ACK,
            [("attempt", DEFAULT), ("dead_letter", "max_retries_exceeded", DEFAULT)],
            id="give-up-dead-lettered-then-ack",
        ),
        pytest.param(
            single(task(not_before_s=NOW_S + 5)),
            World(),
            Nak(5.0),
            [],
            id="not-yet-due",
        ),
        pytest.param(
            single(task(not_before_s=NOW_S + 0.005)),
            World(),
            ACK,
            [("attempt", DEFAULT)],
            id="due-within-the-margin",
        ),
        pytest.param(
            single(task()),
            World(saturated=(DEFAULT,)),
            Nak(OVERFLOW_S),
            [],
            id="no-room-overflow-delay",
        ),
        pytest.param(batch(3), World(room=0), Nak(OVERFLOW_S), [], id="batch-handed-back-whole"),
        pytest.param(batch(3), World(room=2), ACK, [("requeued", 2, 1)], id="batch-split"),
        pytest.param(batch(3), World(room=5), ACK, [("requeued", 3, 0)], id="batch-all-fit"),
        pytest.param(FakeMsg(TASKS, b"\xc1 not a task"), World(), TERM, [], id="unreadable-task"),
        pytest.param(
            FakeMsg(batch_subject(SETTINGS, 2), b"\xc1"), World(), TERM, [], id="unreadable-batch"
        ),
        pytest.param(
            FakeMsg(f"{SETTINGS.tasks_stream}.v9", b"future"),
            World(),
            LEAVE_FOR_NEWER,
            [],
            id="unknown-kind-left-for-a-newer-replica",
        ),
        pytest.param(ordered(), World(), ACK, [("attempt", DEFAULT)], id="ordered-its-turn"),
        pytest.param(
            ordered(delivered=3), World(ahead=2), Nak(wait_s(2, 3)), [], id="ordered-waits"
        ),
        pytest.param(
            ordered(not_before_s=NOW_S + 5), World(), Nak(5.0), [], id="ordered-retry-not-due"
        ),
    ],
)
async def test_task(
    msg: FakeMsg, world: World, decision: Decision, published: list[Record]
) -> None:
    handled: Any = msg
    assert_decided(await world.task_handler()(handled), decision)
    assert world.dispatcher.published == published


async def test_a_split_promises_the_room_it_fills() -> None:
    world = World(room=2)
    handled: Any = batch(3)
    await world.task_handler()(handled)
    assert world.limiter.promised == [(DEFAULT, 2)]
