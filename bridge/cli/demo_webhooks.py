"""The demo's last chapter: a webhook added, tested and paused with `webhook-bridge webhooks`
while events flow (SPEC §9). The commands are the real CLI, run as a user would type them,
against the demo bridge's admin API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable

from bridge.config.settings import Settings
from bridge.jetstream.bus import JetStream

ADMIN_TOKEN = "demo-admin-token"
TRANSFORM = "{event: event, job_id: job_id, percent: percent}"
FLOW_EVERY_S = 0.2
EVENTS_WHILE_PAUSED = 5
Until = Callable[[Callable[[], bool], str], Awaitable[None]]
Counts = Callable[[str], int]


async def manage_a_webhook(
    js: JetStream, settings: Settings, *, url: str, secret: str, delivered: Counts, until: Until
) -> tuple[int, int]:
    """Add, test and pause webhook `bi` while job.progress events flow; returns how many
    reached it and how many went by while it was paused."""
    print("\n▶ a webhook managed at run time, while events flow:", flush=True)
    flowing = asyncio.Event()
    flowing.set()
    flow = asyncio.create_task(_flow(js, flowing))
    try:
        add = ("add", "--id", "bi", "--url", url, "--scope", "global", "--event", "job.progress")
        await _cli(settings, *add, "--transform", TRANSFORM, "--secret-stdin", stdin=secret)
        await until(lambda: delivered("bi") >= 3, "deliveries to bi")
        await _cli(settings, "test", "bi")
        await _cli(settings, "update", "bi", "--active", "false")
        return await _paused(delivered, until)
    finally:
        # a flag, not cancel(): nats-py's publish can swallow a cancellation (see demo.py)
        flowing.clear()
        with contextlib.suppress(Exception):
            await flow


async def _paused(delivered: Counts, until: Until) -> tuple[int, int]:
    """One event settles what was in flight at the pause; then more go by without reaching bi."""
    settled = delivered("erp") + 1
    await until(lambda: delivered("erp") >= settled, "an event after the pause")
    at_pause, erp_at_pause = delivered("bi"), delivered("erp")
    target = erp_at_pause + EVENTS_WHILE_PAUSED
    await until(lambda: delivered("erp") >= target, "events after the pause")
    return at_pause, delivered("bi") - at_pause


async def _flow(js: JetStream, flowing: asyncio.Event) -> None:
    percent = 0
    while flowing.is_set():
        percent += 1
        body = {"event": "job.progress", "job_id": "j_demo_flow", "tenant_id": "acme"}
        data = json.dumps({**body, "percent": percent % 101}).encode()
        headers = {"Nats-Msg-Id": f"demo-flow-{percent}-{time.time_ns()}"}
        await js.publish("greenlight.events.job.progress", data, headers=headers)
        await asyncio.sleep(FLOW_EVERY_S)


async def _cli(settings: Settings, *args: str, stdin: str | None = None) -> None:
    """Run `webhook-bridge webhooks ARGS` against the demo bridge; print it and its output."""
    shown = " ".join(_quoted(arg) for arg in args)
    print(f"  $ webhook-bridge webhooks {shown}", flush=True)
    api = f"http://127.0.0.1:{settings.http_port}"
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bridge", "webhooks", *args, "--api", api),
        env={**os.environ, "ADMIN_TOKEN": ADMIN_TOKEN},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await proc.communicate((stdin or "").encode())
    except asyncio.CancelledError:  # Ctrl-C: the command goes too
        proc.kill()
        await proc.wait()
        raise
    for line in out.decode(errors="replace").splitlines():
        print(f"    {line}", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"webhook-bridge webhooks {args[0]} failed ({proc.returncode})")


def _quoted(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in " {}*") else arg
