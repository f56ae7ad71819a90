"""The in-memory mirror of the per-job webhook bucket (real nats-server, no bridge).

Once the mirror has loaded the bucket, a look-up never asks the bucket: entries written by
another replica must reach it through the watch, and deleted ones must leave it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from harness.waiting import wait_for
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig

import bridge.jetstream.job_webhooks
from bridge.jetstream.job_webhooks import JobWebhooks, job_key

TTL_S = 3600.0
MAX_ENTRIES = 10
MAX_VALUE_BYTES = 64 * 1024


@pytest.fixture
async def jobs(js: JetStreamContext) -> AsyncIterator[JobWebhooks]:
    kv = await js.create_key_value(KeyValueConfig(bucket="jobs", ttl=TTL_S, history=1))
    await kv.put(job_key("j-old"), msgspec.json.encode(["https://old.example/hook"]))
    memory, stopping = (
        JobWebhooks(kv, TTL_S, max_entries=MAX_ENTRIES, max_value_bytes=MAX_VALUE_BYTES),
        asyncio.Event(),
    )
    task = asyncio.create_task(memory.mirror(stopping))
    await wait_for(lambda: memory.synced, 10, "mirror loaded the bucket")
    yield memory
    stopping.set()
    await asyncio.wait_for(task, 10)


async def recalls(jobs: JobWebhooks, job_id: str, expected: tuple[str, ...]) -> bool:
    return await jobs.recall(job_id) == expected


async def test_mirror_loads_what_the_bucket_held(jobs: JobWebhooks) -> None:
    assert await jobs.recall("j-old") == ("https://old.example/hook",)
    assert await jobs.recall("j-unknown") == ()


async def test_entries_another_replica_writes_arrive_through_the_watch(
    jobs: JobWebhooks, js: JetStreamContext
) -> None:
    kv = await js.key_value("jobs")
    await kv.put(job_key("j-new"), msgspec.json.encode(["https://a.example/1"]))
    await wait_for(lambda: recalls(jobs, "j-new", ("https://a.example/1",)), 10, "entry mirrored")
    await kv.delete(job_key("j-new"))
    await wait_for(lambda: recalls(jobs, "j-new", ()), 10, "deleted entry gone")


async def test_noted_entries_are_recalled_before_the_bucket_has_them(jobs: JobWebhooks) -> None:
    jobs.note("j-noted", ("https://b.example/1",))
    assert await jobs.recall("j-noted") == ("https://b.example/1",)
    merged = await jobs.remember("j-noted", ("https://b.example/2",))
    assert merged.kept == ("https://b.example/1", "https://b.example/2")


async def test_past_the_size_cap_misses_ask_the_bucket(
    jobs: JobWebhooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge.jetstream.job_webhooks, "MIRROR_MAX_JOBS", 2)
    for job in ("j-1", "j-2", "j-3"):
        await jobs.remember(job, (f"https://{job}.example/hook",))
    # j-1 was dropped from the mirror (the oldest), yet it is still recalled from the bucket
    assert await jobs.recall("j-1") == ("https://j-1.example/hook",)
    assert await jobs.recall("j-old") == ("https://old.example/hook",)


async def test_two_events_of_a_job_remembered_at_once_keep_both(
    jobs: JobWebhooks, js: JetStreamContext
) -> None:
    """Both read the bucket before either writes: the second write must not replace the
    first (it used to: a plain put), nor may either call keep what the bucket lost."""
    first = tuple(f"https://c.example/1/{n}" for n in range(4))
    second = tuple(f"https://c.example/2/{n}" for n in range(4))
    one, two = await asyncio.gather(jobs.remember("j-both", first), jobs.remember("j-both", second))
    stored = msgspec.json.decode((await (await js.key_value("jobs")).get(job_key("j-both"))).value)
    assert sorted(stored) == sorted(first + second)
    assert set(one.kept) | set(two.kept) <= set(stored)
