"""The in-memory mirror of per-job webhooks: merge, expiry, the size cap, refused entries."""

from __future__ import annotations

import pytest
from harness.clock import FakeClock

from bridge.policy.job_mirror import SWEEP_INTERVAL_S, JobMirror

A, B, C = "https://a.example/h", "https://b.example/h", "https://c.example/h"


def mirror(clock: FakeClock, *, max_entries: int = 10, max_jobs: int = 100) -> JobMirror:
    return JobMirror(
        60.0, max_entries=max_entries, max_value_bytes=4096, max_jobs=max_jobs, clock=clock
    )


@pytest.mark.parametrize(
    ("max_entries", "batches", "known"),
    [
        (10, [(A,)], (A,)),
        (10, [(A,), (B,)], (A, B)),
        (10, [(A, B), (B, C)], (A, B, C)),  # merged in order, each once
        (2, [(A, B), (C,)], (A, B)),  # two at most: the earliest win
        (10, [(), (A,)], (A,)),
    ],
)
def test_entries_merge_in_order_within_the_cap(
    clock: FakeClock, max_entries: int, batches: list[tuple[str, ...]], known: tuple[str, ...]
) -> None:
    jobs = mirror(clock, max_entries=max_entries)
    for entries in batches:
        jobs.add("job", entries)
    assert jobs.known("job") == known


def test_a_job_expires_a_ttl_after_it_was_last_seen(clock: FakeClock) -> None:
    jobs = mirror(clock)
    jobs.add("job", (A,))
    clock.now_s += 50
    jobs.add("job", (B,))  # seen again: its expiry moves on
    clock.now_s += 50
    assert jobs.known("job") == (A, B)
    clock.now_s += 11
    assert jobs.known("job") == ()


def test_entries_seen_long_ago_are_already_expired(clock: FakeClock) -> None:
    jobs = mirror(clock)
    jobs.add("job", (A,), seen_s=clock.now_s - 61)
    assert jobs.known("job") == ()


def test_expired_jobs_are_swept(clock: FakeClock) -> None:
    jobs = mirror(clock)
    jobs.add("old", (A,))
    clock.now_s += SWEEP_INTERVAL_S + 61
    jobs.add("new", (B,))
    assert jobs.known("new") == (B,)
    assert "old" not in jobs._jobs


def test_past_the_size_cap_the_oldest_goes_and_the_mirror_is_incomplete(clock: FakeClock) -> None:
    jobs = mirror(clock, max_jobs=2)
    for key in ("j1", "j2"):
        jobs.add(key, (A,))
    assert jobs.complete
    jobs.add("j3", (A,))
    assert (jobs.known("j1"), jobs.known("j3"), jobs.complete) == ((), (A,), False)


@pytest.mark.parametrize(
    ("known", "dropped", "kept"),
    [
        ((A, B), (), (A, B)),
        ((A, B), (C,), (A, B)),  # dropped entries the mirror never held
        ((A, B, C), (B,), (A, C)),
    ],
)
def test_entries_the_bucket_refused_leave_the_mirror(
    clock: FakeClock, known: tuple[str, ...], dropped: tuple[str, ...], kept: tuple[str, ...]
) -> None:
    jobs = mirror(clock)
    jobs.add("job", known)
    assert jobs.forget("job", known, dropped) == kept
    assert jobs.known("job") == kept


def test_a_deleted_job_is_removed(clock: FakeClock) -> None:
    jobs = mirror(clock)
    jobs.add("job", (A,))
    jobs.remove("job")
    jobs.remove("never-seen")
    assert jobs.known("job") == ()
