"""What a receiver tells the bridge about its webhook (SPEC §11), pure.

- `410 Gone`: the webhook is gone for good: a named webhook is disabled (`disabled_reason`
  `gone`), a per-job URL is forgotten for its job; the delivery is dead-lettered (`gone`).
- `webhook-delivery: abort-message` on a failed attempt: stop this delivery (dead letter
  `aborted_by_receiver`); on a 2xx it is delivered and the header means nothing more.
- `webhook-delivery: disable`: disable the webhook (`disabled_reason` `receiver`).
- `failing` is the bridge's own: a webhook whose endpoint has had only failures for
  `WEBHOOK_DISABLE_AFTER` is disabled (`disabled_reason` `failing`).
"""

from __future__ import annotations

from typing import Literal

ABORT = "abort-message"
DISABLE = "disable"
Signal = Literal["gone", "abort", "disable", "failing"]
DISABLED_REASONS: dict[Signal, str] = {"gone": "gone", "disable": "receiver", "failing": "failing"}


def signal_of(status_code: int | None, header: str | None, ok: bool) -> Signal | None:
    """The signal an attempt's answer carries, if any."""
    if status_code == 410:
        return "gone"
    if header == DISABLE:
        return "disable"
    if header == ABORT and not ok:
        return "abort"
    return None
