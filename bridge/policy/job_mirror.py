"""The in-memory mirror of per-job webhook entries: jobs by key, each until it expires.

Pure state, no I/O: `bridge.jetstream.job_webhooks` feeds it from the KV bucket's watch and
from events as they are decoded, and asks the bucket only when the mirror cannot answer. A
job keeps what `bridge.policy.entries.admit` keeps. The mirror holds at most `max_jobs` jobs:
past that the oldest is dropped and the mirror is no longer `complete` (a miss may then be a
job it dropped, not a job without per-job webhooks). Expired jobs are swept now and then,
since the bucket's TTL removes them without a notice. The clock is passed in (Unix seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bridge.policy.entries import Admitted, admit

SWEEP_INTERVAL_S = 60.0
Entries = tuple[str, ...]


class JobMirror:
    """Job key → (expires at, entries)."""

    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int,
        max_value_bytes: int,
        max_jobs: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._max_value_bytes = max_value_bytes
        self._max_jobs = max_jobs
        self._clock = clock
        self._jobs: dict[str, tuple[float, Entries]] = {}
        self._next_sweep_s = 0.0
        self.complete = True  # False once the size cap dropped a job

    def known(self, key: str) -> Entries:
        self._sweep()
        hit = self._jobs.get(key)
        if hit is None or hit[0] < self._clock():
            return ()
        return hit[1]

    def admit(self, known: Entries, entries: Entries) -> Admitted:
        return admit((*known, *entries), self._max_entries, self._max_value_bytes)

    def add(self, key: str, entries: Entries, seen_s: float | None = None) -> Entries:
        """Merge entries seen at `seen_s` (now by default); the job's entries now."""
        if not entries:
            return self.known(key)
        seen_s = self._clock() if seen_s is None else seen_s
        expires_s, known = self._jobs.get(key, (0.0, ()))
        merged = self.admit(known, entries).kept
        self._jobs[key] = (max(expires_s, seen_s + self._ttl_s), merged)
        if len(self._jobs) > self._max_jobs:
            del self._jobs[next(iter(self._jobs))]
            self.complete = False
        return merged

    def forget(self, key: str, known: Entries, dropped: Entries) -> Entries:
        """Entries the bucket refused leave the mirror too, though an event noted them."""
        if not dropped or not set(dropped) & set(known):
            return known
        kept = tuple(entry for entry in known if entry not in dropped)
        hit = self._jobs.get(key)
        if hit is not None:
            self._jobs[key] = (hit[0], kept)
        return kept

    def remove(self, key: str) -> None:
        self._jobs.pop(key, None)

    def _sweep(self) -> None:
        now_s = self._clock()
        if now_s < self._next_sweep_s:
            return
        self._next_sweep_s = now_s + SWEEP_INTERVAL_S
        expired = [key for key, (expires_s, _) in self._jobs.items() if expires_s < now_s]
        for key in expired:
            del self._jobs[key]
