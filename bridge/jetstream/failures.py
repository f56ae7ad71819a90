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

These functions decide (`bridge.policy.decisions`); the fetch loop carries the decision out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bridge.jetstream.bus import BusError
from bridge.observability.logs import log
from bridge.policy.dead_letter import DeadLetter, bare
from bridge.policy.decisions import ACK, TERM, Ack, Decision, Nak, Term
from bridge.policy.trace_context import trace_id_of

Publish = Callable[[DeadLetter], Awaitable[None]]
HAND_BACK_DELAY_S = 1.0
HAND_BACK = Nak(HAND_BACK_DELAY_S)


def gives_up(delivered: int, max_failures: int, error: Exception) -> bool:
    """Whether the failure of the `delivered`-th delivery of an event is its last."""
    return delivered >= max_failures and not is_outage(error)


def is_outage(error: Exception) -> bool:
    return isinstance(error, BusError) and not error.refused


async def hand_back(_msg: object, _error: Exception) -> Decision:
    """After a failure: try again after a pause."""
    return HAND_BACK


async def settle(record: DeadLetter, publish: Publish) -> Ack | Term | None:
    """Dead-letter, then ack; else a bare record, then ack; else terminate. None (nothing
    done) when NATS is unreachable: the caller hands the message back."""
    for attempt in (record, bare(record)):
        try:
            await publish(attempt)
        except Exception as error:
            if is_outage(error):
                return None
            log.warning(
                "dead letter refused",
                event_id=record.event_id,
                error=str(error),
                trace_id=trace_id_of(record.trace),
            )
            continue
        return ACK
    log.error(
        "event terminated: no dead letter could be written",
        event_id=record.event_id,
        trace_id=trace_id_of(record.trace),
    )
    return TERM
