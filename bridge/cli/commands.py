"""What each subcommand does, on top of the modules; the CLI parses, this acts."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from bridge.admin import queries
from bridge.app import Bridge
from bridge.cli import terminal
from bridge.cli.demo import run_demo
from bridge.config.durations import parse_duration_s
from bridge.config.settings import Settings
from bridge.config.values import ConfigError
from bridge.config.view import redacted
from bridge.jetstream import bus, dlq
from bridge.jetstream.bus import Connection
from bridge.jetstream.dlq import Filter, Replay, Stored
from bridge.jetstream.embedded import EmbeddedNats, embedded_port
from bridge.jetstream.webhook_store import current_router
from bridge.policy import asymmetric
from bridge.policy.pacing import Pacer
from bridge.policy.routing import host_of
from bridge.policy.signing import verify_greenlight, verify_standard


async def run(settings: Settings, stopping: asyncio.Event, data_dir: Path | None) -> int:
    if data_dir is None:
        await Bridge(settings).run(stopping)
        return 0
    server = EmbeddedNats(data_dir, embedded_port(settings.nats_urls[0]))
    url = await server.start()
    try:
        embedded = msgspec.structs.replace(settings, nats_urls=(url,))
        await Bridge(embedded).run(stopping)
    finally:
        await server.stop()
    return 0


async def demo(stopping: asyncio.Event) -> int:
    return await run_demo(stopping)


def config_check(settings: Settings) -> int:
    print(json.dumps(redacted(settings), indent=2))
    print("configuration is valid", file=sys.stderr)
    return 0


def verify(secret: str, signature: str, msg_id: str | None, timestamp_s: int | None) -> int:
    """A Greenlight (`sha256=`) or Standard Webhooks (`v1,` with a shared secret, `v1a,` with
    a `whpk_` public key) signature of the body on stdin; a malformed key exits 2."""
    body = sys.stdin.buffer.read()
    ed25519 = asymmetric.is_ed25519(secret)
    if signature.startswith("sha256=") and ed25519:
        raise ConfigError("--secret: an ed25519 key checks v1a signatures, not sha256= ones")
    if signature.startswith("sha256="):
        valid = verify_greenlight(secret, body, signature)
    elif msg_id is None or timestamp_s is None:
        raise ConfigError("--id and --timestamp are needed for a webhook-signature value")
    else:
        valid = _verify_standard(secret, msg_id, timestamp_s, body, signature)
    print("signature is valid" if valid else "signature does NOT match", file=sys.stderr)
    return 0 if valid else 1


def _verify_standard(secret: str, msg_id: str, timestamp_s: int, body: bytes, sig: str) -> bool:
    try:
        return verify_standard(secret, msg_id, timestamp_s, body, sig)
    except ValueError as error:  # the key's message never repeats the key
        raise ConfigError(f"--secret: {error}") from None


@asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[Connection]:
    nc = await bus.connect(settings)
    try:
        async with bus.nats_errors("NATS request failed"):
            yield nc
    finally:
        await nc.close()


async def publish(
    settings: Settings, event: str, job_id: str | None, webhooks: list[str], data: str | None
) -> int:
    body = _event_body(event, job_id or f"j_{uuid.uuid4().hex[:12]}", webhooks, data)
    subject = f"{settings.nats_subjects[0].removesuffix('>')}{event}"
    async with connected(settings) as nc:
        ack = await nc.jetstream().publish(subject, body, headers={"Nats-Msg-Id": uuid.uuid4().hex})
    print(f"published {event} on {subject} (stream {ack.stream}, seq {ack.seq})")
    return 0


def _event_body(event: str, job_id: str, webhooks: list[str], data: str | None) -> bytes:
    fields: dict[str, object] = {"event": event, "job_id": job_id}
    if data:
        try:
            extra = json.loads(data)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--data: not valid JSON: {error.msg}") from None
        if not isinstance(extra, dict):
            raise ConfigError("--data: expected a JSON object")
        fields.update(extra)
    if webhooks:
        fields["webhook"] = webhooks if len(webhooks) > 1 else webhooks[0]
    return json.dumps(fields).encode()


def dlq_filter(event: str | None, endpoint: str | None, since: str | None, every: bool) -> Filter:
    since_s = None
    if since:
        try:
            since_s = parse_duration_s(since)
        except ValueError as error:
            raise ConfigError(f"--since: {error}") from None
    return Filter(event=event, endpoint=endpoint, since_s=since_s, include_replayed=every)


async def _read(settings: Settings, nc: Connection, wanted: Filter) -> list[Stored]:
    js = nc.jetstream()
    await bus.ensure_topology(js, settings)
    marks = await js.key_value(settings.replays_bucket)
    return await dlq.read(js, settings.dlq_stream, marks, wanted)


async def dlq_list(settings: Settings, wanted: Filter, *, as_json: bool) -> int:
    async with connected(settings) as nc:
        found = await _read(settings, nc, wanted)
    if as_json:
        for stored in found:
            view = msgspec.json.encode(queries.stored_view(stored))
            print(json.dumps(json.loads(view)))  # json.dumps: the spacing `dlq list` always had
        return 0
    if found:
        print(terminal.table(DLQ_COLUMNS, [_dlq_row(stored) for stored in found]))
    print(f"{len(found)} dead letter(s)", file=sys.stderr)
    return 0


DLQ_COLUMNS = (
    "SEQ",
    "DEAD-LETTERED AT",
    "EVENT",
    "ENDPOINT",
    "REASON",
    "TRIES",
    "DELIVERY",
    "REPLAYED AT",
)


def _dlq_row(stored: Stored) -> tuple[str, ...]:
    record = stored.record
    endpoint = record.endpoint
    where = endpoint.id or (host_of(endpoint.url) if endpoint.url else "-")
    what = (record.dead_lettered_at, record.event or "-", where, record.reason)
    tries = str(len(record.attempts))
    return (str(stored.seq), *what, tries, record.delivery_id, stored.replayed_at or "-")


async def dlq_replay(
    settings: Settings, wanted: Filter, *, dry_run: bool, rate_per_s: float
) -> int:
    async with connected(settings) as nc:
        js = nc.jetstream()
        await bus.ensure_topology(js, settings)
        plan = await dlq.plan_replay(js, settings, await current_router(js, settings), wanted)
        if dry_run:
            return _show_plan(plan, rate_per_s)
        pacer = Pacer(rate_per_s) if rate_per_s > 0 else None
        total = sum(1 for item in plan if item.task is not None)
        with terminal.Progress(sys.stderr, "replaying", total) as progress:
            replayed, skipped = await dlq.requeue(js, settings, plan, pacer, progress.update)
    print(f"replayed {replayed} dead letter(s), skipped {skipped} with nothing to deliver")
    return 0


def _show_plan(plan: list[Replay], rate_per_s: float) -> int:
    """The dry run's answer: what would be replayed or skipped; nothing was changed."""
    rows = [(("replay" if item.task else "skip"), *_dlq_row(item.stored)) for item in plan]
    if rows:
        print(terminal.table(("ACTION", *DLQ_COLUMNS), rows))
    replayable = sum(1 for item in plan if item.task is not None)
    pace = f" at {rate_per_s:g}/s (about {replayable / rate_per_s:.0f} s)" if rate_per_s > 0 else ""
    print(
        f"dry run: would replay {replayable} dead letter(s){pace}, skip "
        f"{len(plan) - replayable} with nothing to deliver; nothing was changed"
    )
    return 0


async def deliveries(
    settings: Settings, job_id: str | None, event_id: str | None, limit: int, *, as_json: bool
) -> int:
    async with connected(settings) as nc:
        js = nc.jetstream()
        await bus.ensure_topology(js, settings)
        found = msgspec.to_builtins(
            (await queries.deliveries(js, settings, job_id, event_id, limit)).deliveries
        )
    if as_json:
        for entry in found:
            print(json.dumps(entry))
        return 0
    print(terminal.table(ATTEMPT_COLUMNS, [_attempt_row(entry) for entry in found]))
    print(f"{len(found)} attempt(s)", file=sys.stderr)
    return 0


ATTEMPT_COLUMNS = ("AT", "EVENT", "ENDPOINT", "TRY", "RESULT", "NEXT", "DELIVERY")


def _attempt_row(entry: dict[str, Any]) -> tuple[str, ...]:
    endpoint = entry["endpoint"]
    what = entry["result"] + (f" ({entry['reason']})" if entry.get("reason") else "")
    where = endpoint.get("id") or endpoint.get("url") or "-"
    attempt = str(entry["attempt"])
    return (
        entry["at"],
        entry["event"],
        where,
        attempt,
        entry["message"],
        what,
        entry["delivery_id"],
    )
