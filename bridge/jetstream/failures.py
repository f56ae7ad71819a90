"""Events whose handling failed: handed back to be tried again, or given up on for good.

No event may be redelivered for ever (SPEC §13). A failed event is handed back until it has
been delivered EVENT_MAX_FAILURES times; a failure at or past that count dead-letters it
(reason `handler_error`, its raw bytes and the last error) and acks it.

The count is JetStream's `num_delivered`: durable and shared by every replica, but it counts
every delivery, not only failed ones: hand-backs at shutdown, redeliveries after a crash or a
lost ack, and retries through a NATS outage add to it too. None of these can dead-letter a
healthy event, because the decision is taken only when the delivery at hand failed, and never
for a failure that is a NATS outage (a `BusError` that is not `refused`: the event is not at
fault, and its dead letter could not be written either). The events consumer never hands an
event back to shed load or to defer it: a first attempt that must wait is stored as a task
(the tasks consumer, which this does not govern) and the event acked. So an event whose
handling succeeds whenever NATS answers is never dead-lettered as `handler_error`, however
often it was delivered.

Giving up must itself end: when the dead letter is refused, a bare one (nothing copied from
the message) is tried, and when that is refused too the message is terminated, with an error
log. Only an outage leaves the event to be handed back and settled once NATS answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from bridge.jetstream.bus import BusError
from bridge.observability.logs import log
from bridge.policy.dead_letter import DeadLetter, bare

Publish = Callable[[DeadLetter], Awaitable[None]]


def gives_up(delivered: int, max_failures: int, error: Exception) -> bool:
    """Whether the failure of the `delivered`-th delivery of an event is its last."""
    return delivered >= max_failures and not is_outage(error)


def is_outage(error: Exception) -> bool:
    return isinstance(error, BusError) and not error.refused


async def settle(msg: Msg, record: DeadLetter, publish: Publish) -> bool:
    """Dead-letter and ack; else a bare record and ack; else terminate. False (nothing done)
    when NATS is unreachable: the caller hands the message back."""
    for attempt in (record, bare(record)):
        try:
            await publish(attempt)
        except Exception as error:
            if is_outage(error):
                return False
            log.warning("dead letter refused", event_id=record.event_id, error=str(error))
            continue
        await msg.ack()
        return True
    log.error("event terminated: no dead letter could be written", event_id=record.event_id)
    await msg.term()
    return True
