"""Whether the bridge has finished with every published event: the events consumer acked it."""

from __future__ import annotations

from nats.js import JetStreamContext

EVENTS_STREAM = "GREENLIGHT_EVENTS"
EVENTS_DURABLE = "webhook-bridge"


async def events_settled(js: JetStreamContext, last_seq: int) -> bool:
    """Every event up to stream sequence `last_seq` was handed out and acked, none is waiting
    for a redelivery: delivered or dead-lettered, not looping."""
    info = await js.consumer_info(EVENTS_STREAM, EVENTS_DURABLE)
    return (
        info.delivered.stream_seq is not None
        and info.delivered.stream_seq >= last_seq
        and not info.num_pending
        and not info.num_ack_pending
        and not info.num_redelivered
    )


async def events_state(js: JetStreamContext) -> str:
    info = await js.consumer_info(EVENTS_STREAM, EVENTS_DURABLE)
    return (
        f"delivered up to {info.delivered.stream_seq}, pending {info.num_pending}, "
        f"ack pending {info.num_ack_pending}, redelivered {info.num_redelivered}"
    )
