"""What becomes of a message once its handler is done: the handler decides, the loop acts.

`Ack`: done with it. `Nak(delay_s)`: deliver it again after `delay_s`. `Term`: never deliver it
again. Pure values, so a handler is tested by what it returns; the fetch loop
(`bridge.jetstream.consumers`) is the one place that applies them to a NATS message. The
common outcome is the shared `ACK`, so deciding costs the hot path no allocation.
"""

from __future__ import annotations

import msgspec


class Ack(msgspec.Struct, frozen=True):
    """Handled: every record it called for is stored."""


class Nak(msgspec.Struct, frozen=True):
    """Hand it back, to be delivered again after `delay_s`."""

    delay_s: float


class Term(msgspec.Struct, frozen=True):
    """Unreadable or given up on: never deliver it again."""


Decision = Ack | Nak | Term

ACK = Ack()
TERM = Term()
