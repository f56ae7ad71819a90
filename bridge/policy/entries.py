"""Which per-job `webhook` entries an event may carry and a job may remember (SPEC §13).

One rule for both: entries are taken in order, and each is kept while there is room: at most
`max_entries` of them, each at most ENTRY_MAX_CHARS characters, and, for a job, all of them
together small enough to be stored as one KV value (`max_bytes`, the JSON list). For a job the
order is what it already remembers first, then the new event's entries: the earliest win, so
the webhooks a job started with cannot be pushed out by a later event. Whatever is not kept is
returned as dropped; the caller dead-letters it (reason `too_many_webhooks`).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

ENTRY_MAX_CHARS = 2048
_LIST_BRACKETS_BYTES = 2


class Admitted(msgspec.Struct, frozen=True):
    """The entries kept, in order, and those dropped, de-duplicated."""

    kept: tuple[str, ...]
    dropped: tuple[str, ...] = ()


def admit(entries: Iterable[str], max_entries: int, max_bytes: int | None = None) -> Admitted:
    """Keep entries in order while they fit; `max_bytes` bounds their JSON list."""
    kept: list[str] = []
    dropped: list[str] = []
    size = _LIST_BRACKETS_BYTES
    for entry in dict.fromkeys(entries):
        cost = _json_bytes(entry) if max_bytes is not None else 0
        if _fits(entry, len(kept), max_entries) and (max_bytes is None or size + cost <= max_bytes):
            kept.append(entry)
            size += cost
        else:
            dropped.append(entry)
    return Admitted(tuple(kept), tuple(dropped))


def _fits(entry: str, count: int, max_entries: int) -> bool:
    return count < max_entries and len(entry) <= ENTRY_MAX_CHARS


def _json_bytes(entry: str) -> int:
    """The entry's share of the JSON list: the quoted, escaped text and a comma."""
    return len(msgspec.json.encode(entry)) + 1
