"""Per-job ordering, the pure part: which deliveries wait their turn, where they wait, when
their turn has come, and how long a delivery whose turn has not come waits before it looks
again.

An ordered delivery (`ordering: job` on its named webhook, `WEBHOOK_ORDERING=job` for the
default and per-job URLs; only events with a `job_id`) is stored as a task on a subject of
its own, `<tasks stream>.ordered.<key>.<seq>`: `key` names the (job, URL) pair, `seq` is the
event's stream sequence. A delivery's turn has come when (1) every event before it in the
stream has been fanned out (the events consumer's ack floor has reached `seq - 1`), so any
earlier delivery to the pair is stored, and (2) no subject of the pair with a smaller `seq`
still holds a task: every earlier delivery was delivered or dead-lettered (its task acked).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec

from bridge.config.webhooks import NamedWebhook
from bridge.policy.tasks import DeliveryTask

STEP_S = 0.05  # a waiting delivery looks again after this per earlier delivery...
MAX_WAIT_S = 5.0  # ...doubling each time it waited, up to this
MAX_DOUBLINGS = 16


def ordered(task: DeliveryTask, hook: NamedWebhook | None, default: str) -> bool:
    """Whether the task waits its turn: a named webhook's own `ordering`, else `default`
    (WEBHOOK_ORDERING); never for an event without a job."""
    if task.job_id is None:
        return False
    setting = hook.ordering if task.target.webhook_id is not None and hook else default
    return setting == "job"


def in_turn(
    task: DeliveryTask, hook: NamedWebhook | None, default: str, sequence: int
) -> DeliveryTask:
    """The first task of a delivery, marked with its event's stream sequence when ordered."""
    if not sequence or not ordered(task, hook, default):
        return task
    return msgspec.structs.replace(task, order_seq=sequence)


def pair_key(job_id: str, url: str) -> str:
    """One subject token for a (job, URL) pair; job ids and URLs are arbitrary strings."""
    framed = f"{len(job_id)}:{job_id}{url}"  # no two pairs frame alike
    return hashlib.sha256(framed.encode()).hexdigest()[:32]


def prefix(tasks_stream: str) -> str:
    return f"{tasks_stream}.ordered."


def wildcard(tasks_stream: str) -> str:
    """The stream subject under which every ordered delivery waits."""
    return f"{prefix(tasks_stream)}*.*"


def subject(tasks_stream: str, task: DeliveryTask) -> str:
    return f"{pair_filter(tasks_stream, task).removesuffix('*')}{task.order_seq}"


def pair_filter(tasks_stream: str, task: DeliveryTask) -> str:
    """The subjects of every waiting delivery of the task's (job, URL) pair."""
    return f"{prefix(tasks_stream)}{pair_key(task.job_id or '', task.target.url)}.*"


def earlier(order_seq: int, subjects: Iterable[str]) -> int:
    """How many deliveries of the pair, among the subjects holding tasks, come before it."""
    tails = (name.rpartition(".")[2] for name in subjects)
    return sum(1 for tail in tails if tail.isdigit() and int(tail) < order_seq)


def wait_s(earlier_count: int, delivered: int) -> float:
    """How long a delivery with `earlier_count` deliveries ahead waits before it looks again,
    the `delivered`-th time it looks: a step per delivery ahead (they usually go one by one
    within milliseconds), doubling while it keeps waiting (one ahead may be retrying), capped."""
    doublings = min(max(delivered - 1, 0), MAX_DOUBLINGS)
    return min(MAX_WAIT_S, STEP_S * max(earlier_count, 1) * float(2**doublings))
