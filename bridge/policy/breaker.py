"""An endpoint's circuit breaker (SPEC §11), pure: what counts as a failure, when a run of them
opens an endpoint, when it may be probed, and how the probe interval grows.

An endpoint is a URL's origin. It is `healthy` until `failures` consecutive failures open it;
while `open`, nothing is sent to it but one probe at a time, each `interval_s` after the last
failed one, the interval doubling up to a cap; a probe in flight makes it `half_open` until
the probe ends or its lease (`probe_until_s`) runs out, so a replica that died mid-probe does
not keep the endpoint shut. A success closes it: a healthy endpoint has no record at all.
Times are Unix seconds, shared by every replica; the clock comes in as an argument.
"""

from __future__ import annotations

from typing import Literal

import msgspec

State = Literal["healthy", "open", "half_open"]
STATES: tuple[State, ...] = ("healthy", "open", "half_open")
PROBE_INTERVAL_CAP_S = 60.0
_FAILED_STATUSES = frozenset({429})


def is_failure(outcome: str, status_code: int | None) -> bool:
    """Whether an attempt says the endpoint is down: a connection error, a timeout, 5xx or
    429. Any other answer (a 2xx, a 4xx) says it is up."""
    if outcome in ("connection_error", "timeout"):
        return True
    return status_code is not None and (status_code >= 500 or status_code in _FAILED_STATUSES)


class Breaker(msgspec.Struct, frozen=True, kw_only=True):
    """One endpoint that is not healthy, as the replicas share it."""

    endpoint: str
    state: State
    since_s: float
    interval_s: float
    next_probe_s: float
    probe_until_s: float = 0.0
    prober: str = ""  # the delivery id of the probe in flight


def opened(endpoint: str, now_s: float, interval_s: float) -> Breaker:
    return Breaker(
        endpoint=endpoint,
        state="open",
        since_s=now_s,
        interval_s=interval_s,
        next_probe_s=now_s + interval_s,
    )


def may_probe(breaker: Breaker, now_s: float) -> bool:
    """Open and due, or half-open with a probe whose lease ran out."""
    if breaker.state == "half_open":
        return now_s >= breaker.probe_until_s
    return now_s >= breaker.next_probe_s


def probing(breaker: Breaker, now_s: float, lease_s: float, prober: str) -> Breaker:
    """The breaker while one probe, delivery `prober`, runs, for at most `lease_s`."""
    return msgspec.structs.replace(
        breaker, state="half_open", probe_until_s=now_s + lease_s, prober=prober
    )


def probe_failed(breaker: Breaker, now_s: float, first_interval_s: float) -> Breaker:
    """Open again, the next probe twice as far off, up to a minute (or the first interval)."""
    cap_s = max(PROBE_INTERVAL_CAP_S, first_interval_s)
    interval_s = min(cap_s, breaker.interval_s * 2)
    return msgspec.structs.replace(
        breaker,
        state="open",
        interval_s=interval_s,
        next_probe_s=now_s + interval_s,
        probe_until_s=0.0,
        prober="",
    )


def recheck_s(breaker: Breaker, now_s: float, probing_s: float, shortest_s: float) -> float:
    """How long a held delivery waits before it looks at the endpoint again: until the next
    probe is due, when it may be released (the probe interval is capped, and so is this); a
    probe running, as long as it has run (at least `probing_s`, at most its lease): a quick
    answer is seen soon, and a probe that hangs brings each waiting delivery back a few
    times, not once a second. `shortest_s` at least."""
    if breaker.state == "half_open":
        running_s = max(probing_s, now_s - breaker.next_probe_s)  # leased once it was due
        return max(shortest_s, min(running_s, breaker.probe_until_s - now_s))
    return max(shortest_s, breaker.next_probe_s - now_s)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Breaker)


def encode(breaker: Breaker) -> bytes:
    return _ENCODER.encode(breaker)


def decode(data: bytes) -> Breaker:
    """Raises msgspec.DecodeError (or ValidationError) for bytes that are not a breaker."""
    return _DECODER.decode(data)
