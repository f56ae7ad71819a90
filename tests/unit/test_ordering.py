"""Per-job ordering: which deliveries wait their turn, where, when the turn has come and how
long a waiting one waits (`bridge.policy.ordering`), and the shared frontier read
(`bridge.jetstream.ordering.Frontier`) with a fake ack floor and clock."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from harness.waiting import wait_for

from bridge.config.settings import load_settings
from bridge.config.values import ConfigError
from bridge.config.webhooks import NamedWebhook, parse_webhook
from bridge.jetstream.bus import BusError
from bridge.jetstream.ordering import WAITING_MAX_SUBJECTS, Frontier, Relay, Subjects, Waiting
from bridge.policy import ordering
from bridge.policy.routing import Target
from bridge.policy.tasks import DeliveryTask

URL = "https://erp.example.com/hook"
TASKS = "webhook-bridge-tasks"
ORDERED = NamedWebhook(id="erp", url=URL, ordering="job")
UNORDERED = NamedWebhook(id="erp", url=URL)


def delivery(
    job_id: str | None = "j-1", url: str = URL, webhook_id: str | None = None, seq: int = 0
) -> DeliveryTask:
    source = "named" if webhook_id else "default"
    return DeliveryTask(
        delivery_id="dlv-1",
        event_id="evt-1",
        event="job.started",
        job_id=job_id,
        tenant_id=None,
        target=Target(url, "erp", source, webhook_id=webhook_id),
        body=b"{}",
        published_at_s=0.0,
        order_seq=seq,
    )


@pytest.mark.parametrize(
    ("task", "hook", "default", "expected"),
    [
        pytest.param(delivery(webhook_id="erp"), ORDERED, "none", True, id="named-ordered"),
        pytest.param(delivery(webhook_id="erp"), UNORDERED, "job", False, id="named-own-setting"),
        pytest.param(delivery(), None, "job", True, id="default-url-with-env"),
        pytest.param(delivery(), None, "none", False, id="default-url-off"),
        pytest.param(delivery(job_id=None), None, "job", False, id="no-job"),
        pytest.param(
            delivery(job_id=None, webhook_id="erp"), ORDERED, "job", False, id="named-no-job"
        ),
        pytest.param(delivery(webhook_id="erp"), None, "job", True, id="named-gone-env-rules"),
    ],
)
def test_ordered(
    task: DeliveryTask, hook: NamedWebhook | None, default: str, expected: bool
) -> None:
    assert ordering.ordered(task, hook, default) is expected


@pytest.mark.parametrize(
    ("hook", "default", "sequence", "order_seq"),
    [
        pytest.param(ORDERED, "none", 42, 42, id="marked"),
        pytest.param(UNORDERED, "job", 42, 0, id="unordered-unmarked"),
        pytest.param(ORDERED, "none", 0, 0, id="no-sequence-unmarked"),
    ],
)
def test_in_turn(hook: NamedWebhook, default: str, sequence: int, order_seq: int) -> None:
    task = delivery(webhook_id="erp")
    assert ordering.in_turn(task, hook, default, sequence).order_seq == order_seq


def test_subjects_name_the_pair_and_the_sequence() -> None:
    task = delivery(seq=17)
    key = ordering.pair_key("j-1", URL)
    assert ordering.subject(TASKS, task) == f"{TASKS}.ordered.{key}.17"
    assert ordering.pair_filter(TASKS, task) == f"{TASKS}.ordered.{key}.*"
    assert ordering.wildcard(TASKS) == f"{TASKS}.ordered.*.*"
    others = {ordering.pair_key("j-2", URL), ordering.pair_key("j-1", URL + "x")}
    assert key not in others
    assert ordering.pair_key("j\n1", URL) != ordering.pair_key("j", f"1\n{URL}")


def waiting(*seqs: int) -> list[str]:
    return [f"{TASKS}.ordered.k.{seq}" for seq in seqs]


@pytest.mark.parametrize(
    ("order_seq", "subjects", "ahead"),
    [
        pytest.param(10, [], 0, id="nothing-waiting"),
        pytest.param(10, waiting(10), 0, id="only-itself"),
        pytest.param(10, waiting(10, 11, 30), 0, id="only-later-ones"),
        pytest.param(10, waiting(3, 10), 1, id="one-ahead"),
        pytest.param(10, waiting(9, 3, 10, 12), 2, id="two-ahead-any-order"),
        pytest.param(10, [f"{TASKS}.ordered.k.x"], 0, id="not-a-sequence-ignored"),
    ],
)
def test_earlier(order_seq: int, subjects: list[str], ahead: int) -> None:
    assert ordering.earlier(order_seq, subjects) == ahead


@pytest.mark.parametrize(
    ("ahead", "delivered", "expected_s"),
    [
        pytest.param(1, 1, 0.05, id="one-ahead-first-look"),
        pytest.param(4, 1, 0.2, id="further-back-waits-longer"),
        pytest.param(1, 3, 0.2, id="doubles-while-waiting"),
        pytest.param(1, 10, ordering.MAX_WAIT_S, id="capped"),
        pytest.param(1, 10_000, ordering.MAX_WAIT_S, id="capped-however-long"),
        pytest.param(0, 1, 0.05, id="frontier-wait"),
    ],
)
def test_wait(ahead: int, delivered: int, expected_s: float) -> None:
    assert ordering.wait_s(ahead, delivered) == pytest.approx(expected_s)


class Floor:
    """An ack floor that rises by `step` per read, counting reads."""

    def __init__(self, step: int) -> None:
        self.value = 0
        self.step = step
        self.reads = 0

    async def read(self) -> int:
        self.reads += 1
        self.value += self.step
        return self.value


async def test_frontier_waits_in_place_until_reached() -> None:
    floor = Floor(step=2)
    frontier = Frontier(floor.read, refresh_s=0.0)
    assert await frontier.reached(5, patience_s=10.0)
    assert floor.reads == 3
    assert await frontier.reached(6, patience_s=0.0)  # known already: no read
    assert floor.reads == 3


async def test_frontier_gives_up_after_its_patience() -> None:
    floor = Floor(step=0)
    frontier = Frontier(floor.read, refresh_s=0.0)
    assert not await frontier.reached(1, patience_s=0.01)


async def test_waiters_share_one_read() -> None:
    floor = Floor(step=100)
    frontier = Frontier(floor.read, refresh_s=0.0)
    results = await asyncio.gather(*(frontier.reached(n, patience_s=1.0) for n in range(50)))
    assert all(results)
    assert floor.reads == 1


class Stream:
    """The tasks stream's ordered subjects, as STREAM.INFO reads them; reads are counted,
    and each may be held until `let_go` is set."""

    def __init__(self, held: list[str], in_stream: int = 0) -> None:
        self.held = dict.fromkeys(held, 1)
        self.in_stream = in_stream or len(held)
        self.filters: list[str] = []
        self.let_go = asyncio.Event()
        self.let_go.set()

    async def read(self, subjects_filter: str) -> Subjects:
        self.filters.append(subjects_filter)
        held = dict(self.held)  # what the read sees as it starts
        await self.let_go.wait()
        prefix = subjects_filter.removesuffix("*.*").removesuffix("*")
        return Subjects({k: v for k, v in held.items() if k.startswith(prefix)}, self.in_stream)


def waiting_subject(job: str, seq: int) -> str:
    return ordering.subject(TASKS, msgspec.structs.replace(delivery(job_id=job), order_seq=seq))


async def test_waiting_counts_those_of_the_pair_ahead_in_one_shared_read() -> None:
    stream = Stream(
        [waiting_subject("j-1", 3), waiting_subject("j-1", 9), waiting_subject("j-2", 1)]
    )
    waiting = Waiting(stream.read, TASKS, refresh_s=0.0)
    asking = [
        delivery(job_id="j-1", seq=5),
        delivery(job_id="j-2", seq=5),
        delivery(job_id="j-3", seq=5),
    ]
    assert await asyncio.gather(*(waiting.ahead(task) for task in asking)) == [1, 1, 0]
    assert stream.filters == [ordering.wildcard(TASKS)]


async def test_waiting_answers_only_with_a_read_begun_after_the_question() -> None:
    """A retry stored while a read is under way may be missing from it."""
    stream = Stream([])
    waiting = Waiting(stream.read, TASKS, refresh_s=0.0)
    stream.let_go.clear()
    first = asyncio.ensure_future(waiting.ahead(delivery(seq=5)))
    await wait_for(lambda: stream.filters, 5, "the first read started")
    stream.held[waiting_subject("j-1", 3)] = 1
    second = asyncio.ensure_future(waiting.ahead(delivery(seq=5)))
    stream.let_go.set()
    assert await first == 0
    assert await second == 1
    assert len(stream.filters) == 2


async def test_with_too_many_waiting_each_asks_about_its_own_pair() -> None:
    stream = Stream([waiting_subject("j-1", 3)], in_stream=WAITING_MAX_SUBJECTS + 1)
    waiting = Waiting(stream.read, TASKS, refresh_s=0.0)
    assert await waiting.ahead(delivery(seq=5)) == 1
    assert await waiting.ahead(delivery(seq=5)) == 1
    pair = ordering.pair_filter(TASKS, delivery())
    assert stream.filters == [ordering.wildcard(TASKS), pair, pair]


async def test_a_failed_read_fails_every_delivery_asking() -> None:
    async def unreachable(_subjects_filter: str) -> Subjects:
        raise BusError("cannot read the deliveries waiting their turn: no responders")

    waiting = Waiting(unreachable, TASKS, refresh_s=0.0)
    with pytest.raises(BusError):
        await asyncio.gather(waiting.ahead(delivery(seq=5)), waiting.ahead(delivery(seq=6)))


def test_a_task_without_order_keeps_its_encoding() -> None:
    """A task stored by an older version (no `order_seq`) decodes as unordered."""
    plain = msgspec.structs.asdict(delivery())
    del plain["order_seq"]
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(plain), type=DeliveryTask).order_seq == 0


async def test_relay_no_wait_when_nothing_ahead_of_it_is_here() -> None:
    relay = Relay()
    relay.enter("other", 1)
    relay.enter("pair", 9)
    alone = relay.enter("pair", 5)
    assert not await relay.behind("pair", alone, patience_s=10.0)  # 9 comes after it


async def test_relay_wakes_the_lowest_one_left_when_one_is_over() -> None:
    relay = Relay()
    head = relay.enter("pair", 3)
    nine, seven = relay.enter("pair", 9), relay.enter("pair", 7)
    waiting_nine = asyncio.create_task(relay.behind("pair", nine, patience_s=10.0))
    waiting_seven = asyncio.create_task(relay.behind("pair", seven, patience_s=10.0))
    await asyncio.sleep(0)
    relay.leave("pair", head)
    assert await asyncio.wait_for(waiting_seven, 1.0)
    assert not waiting_nine.done()
    relay.leave("pair", seven)
    assert await asyncio.wait_for(waiting_nine, 1.0)
    relay.leave("pair", nine)
    assert not await relay.behind("pair", relay.enter("pair", 1), patience_s=10.0)


async def test_relay_waits_at_most_its_patience() -> None:
    relay = Relay()
    relay.enter("pair", 1)
    later = relay.enter("pair", 2)
    assert await relay.behind("pair", later, patience_s=0.01)  # not woken: asks anyway
    assert not await relay.behind("pair", later, patience_s=0.0)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        pytest.param({}, "none", id="default-none"),
        pytest.param({"ordering": "job"}, "job", id="job"),
        pytest.param({"ordering": "JOB"}, "job", id="any-case"),
        pytest.param({"ordering": None}, "none", id="null-is-absent"),
    ],
)
def test_a_webhook_ordering(node: dict[str, object], expected: str) -> None:
    hook = parse_webhook({"id": "erp", "url": URL, **node})
    assert hook.ordering == expected


def test_a_bad_webhook_ordering_names_its_field() -> None:
    with pytest.raises(ConfigError, match=r"^bridge.yaml: webhooks\[0\].ordering: expected one"):
        parse_webhook({"id": "erp", "url": URL, "ordering": "stream"}, "bridge.yaml: webhooks[0]")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, "none", id="default-off"),
        pytest.param({"WEBHOOK_ORDERING": "job"}, "job", id="on"),
    ],
)
def test_webhook_ordering_setting(env: dict[str, str], expected: str) -> None:
    assert load_settings(env).ordering == expected


def test_a_bad_webhook_ordering_setting_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^WEBHOOK_ORDERING: expected one of none, job"):
        load_settings({"WEBHOOK_ORDERING": "fifo"})
