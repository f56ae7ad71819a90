"""`dlq list` as a table and `dlq replay --dry-run / --rate`, run as the real command."""

from __future__ import annotations

import json

import pytest
from harness.bridge import BridgeProcess, Bridges, run_cli
from harness.nats import NatsServer
from harness.publish import has_dead_letters, job_event, publish_event
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

TASKS_STREAM = "webhook-bridge-tasks"  # <NATS_DURABLE>-tasks


async def _three_dead_letters(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> BridgeProcess:
    receiver.reply("/down", 500)
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/down"), "WEBHOOK_MAX_RETRY": "0"}
    bridge = await bridges.start(env)
    for i in range(3):
        await publish_event(js, job_event("job.failed", f"j-{i}"), f"evt-{i}")
    await bridges.wait_for(has_dead_letters(js, 3), 20, "three dead letters")
    return bridge


async def _unreplayed(env: dict[str, str]) -> int:
    result = await run_cli(["dlq", "list", "--json"], env)
    assert result.returncode == 0, result.stderr
    return sum(1 for line in result.stdout.splitlines() if not json.loads(line)["replayed_at"])


async def test_dry_run_lists_what_would_be_replayed_and_changes_nothing(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await _three_dead_letters(js, receiver, bridges)
    queued_before = (await js.stream_info(TASKS_STREAM)).state.last_seq
    receiver.reply("/down", 200)

    result = await run_cli(["dlq", "replay", "--dry-run"], bridge.env)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ACTION", "SEQ", "DEAD-LETTERED"]
    assert sum(1 for line in lines if line.startswith("replay ")) == 3
    assert "would replay 3 dead letter(s) at 50/s" in lines[-1]
    assert "nothing was changed" in lines[-1]
    # nothing was queued for delivery, nothing was marked replayed
    assert (await js.stream_info(TASKS_STREAM)).state.last_seq == queued_before
    assert await _unreplayed(bridge.env) == 3
    assert receiver.count("/down") == 3  # only the three first attempts


async def test_a_rate_limited_replay_delivers_everything_and_reports_the_count(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await _three_dead_letters(js, receiver, bridges)
    receiver.reply("/down", 200)

    result = await run_cli(["dlq", "replay", "--rate", "20"], bridge.env)

    assert result.returncode == 0, result.stderr
    # not a terminal: no progress bar on stderr, the count line on stdout
    assert "\r" not in result.stderr
    assert result.stdout.strip() == "replayed 3 dead letter(s), skipped 0 with nothing to deliver"
    await bridges.wait_for(lambda: receiver.count("/down") == 6, 20, "the replayed deliveries")
    assert await _unreplayed(bridge.env) == 0


async def test_dlq_list_is_a_table_with_a_count(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await _three_dead_letters(js, receiver, bridges)

    result = await run_cli(["dlq", "list"], bridge.env)

    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        *("SEQ", "DEAD-LETTERED", "AT", "EVENT", "ENDPOINT", "REASON"),
        *("TRIES", "DELIVERY", "REPLAYED", "AT"),
    ]
    assert len(rows) == 3
    assert all(
        row.split()[2:5] == ["job.failed", "127.0.0.1", "max_retries_exceeded"] for row in rows
    )
    assert result.stderr.strip() == "3 dead letter(s)"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["dlq", "replay", "--rate", "-1"], 2, "--rate: expected a number of at least 0"),
        (["dlq", "replay", "--rate", "fast"], 2, "--rate: expected a number of at least 0"),
        (["dlq", "list", "--since", "yesterday"], 2, "--since:"),
        (["dlq", "frobnicate"], 2, "invalid choice"),
        (["dlq", "list"], 1, "cannot connect to NATS"),
    ],
)
async def test_exit_codes(nats_server: NatsServer, args: list[str], code: int, says: str) -> None:
    await nats_server.stop()  # a runtime failure for the commands that get as far as NATS
    result = await run_cli(args, {"NATS_URL": nats_server.url})
    assert result.returncode == code, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
