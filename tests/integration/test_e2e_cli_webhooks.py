"""`webhook-bridge webhooks ...` as the real command against a real bridge's admin API.

The same commands against an in-memory stand-in of the API: tests/unit/test_cli_webhooks.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from harness.bridge import BridgeProcess, Bridges, CliResult, run_cli
from harness.receiver import Receiver
from harness.signatures import greenlight_signature_valid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

TOKEN = "cli-e2e-admin-token"
# SPEC §9: a change applies to events consumed after it was acknowledged, within 2 s
APPLIED_WITHIN_S = 2.0


async def _bridge(bridges: Bridges) -> BridgeProcess:
    return await bridges.start({"ADMIN_TOKEN": TOKEN, "WEBHOOK_ALLOW_PRIVATE_URLS": "true"})


async def _webhooks(bridge: BridgeProcess, *args: str) -> CliResult:
    env = {"BRIDGE_API": bridge.admin_url(""), "ADMIN_TOKEN": TOKEN}
    result = await run_cli(["webhooks", *args], env)
    assert TOKEN not in result.stdout + result.stderr
    return result


async def _publish_to(bridge: BridgeProcess, job_id: str, *webhook_ids: str) -> None:
    named = [arg for webhook_id in webhook_ids for arg in ("--webhook", webhook_id)]
    result = await run_cli(["publish", "job.completed", "--job-id", job_id, *named], bridge.env)
    assert result.returncode == 0, result.stderr


async def test_add_list_test_pause_rotate_remove(receiver: Receiver, bridges: Bridges) -> None:
    bridge = await _bridge(bridges)

    added = await _webhooks(bridge, "add", "--id", "erp", "--url", receiver.url("/erp"), "--json")
    assert added.returncode == 0, added.stderr
    secret = json.loads(added.stdout)["secret"]
    assert secret.startswith("whsec_")
    assert "will not be shown again" in added.stderr

    listed = await _webhooks(bridge, "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith("erp "))
    assert row[:4] == ["erp", "api", "true", "on_demand"]

    tested = await _webhooks(bridge, "test", "erp")
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.startswith("success: status code: 200")
    probe = receiver.received("/erp")[-1]
    assert probe.json()["event"] == "webhook.test"
    assert probe.json()["webhook_id"] == "erp"
    assert greenlight_signature_valid(secret, probe.body, probe.headers["X-Greenlight-Signature"])

    await asyncio.sleep(APPLIED_WITHIN_S)  # this replica applies the new webhook (SPEC §9)
    await _publish_to(bridge, "j-active", "erp")
    await bridges.wait_for(lambda: receiver.count("/erp") == 2, 20, "the event delivered to erp")

    paused = await _webhooks(bridge, "update", "erp", "--active", "false")
    assert paused.returncode == 0, paused.stderr
    assert ["active", "false"] in [line.split() for line in paused.stdout.splitlines()]
    shown = json.loads((await _webhooks(bridge, "show", "erp", "--json")).stdout)
    assert shown["active"] is False

    rotated = await _webhooks(bridge, "rotate-secret", "erp")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip().startswith("whsec_")
    assert rotated.stdout.strip() != secret

    removed = await _webhooks(bridge, "remove", "erp", "--yes")
    assert (removed.returncode, removed.stdout) == (0, "removed webhook erp\n"), removed.stderr
    gone = await _webhooks(bridge, "show", "erp")
    assert gone.returncode == 2
    assert gone.stderr.startswith("webhook-bridge: 404 ")


async def test_a_webhook_added_inactive_gets_nothing(receiver: Receiver, bridges: Bridges) -> None:
    bridge = await _bridge(bridges)
    for webhook_id, *extra in (("erp", "--inactive"), ("control",)):
        url = receiver.url(f"/{webhook_id}")
        added = await _webhooks(bridge, "add", "--id", webhook_id, "--url", url, *extra)
        assert added.returncode == 0, added.stderr
    await asyncio.sleep(APPLIED_WITHIN_S)

    await _publish_to(bridge, "j-paused", "erp", "control")

    # the same event reached the active webhook: had erp been due one, it would have had it
    await bridges.wait_for(lambda: receiver.count("/control") == 1, 20, "the control delivery")
    assert receiver.count("/erp") == 0


async def test_refusals_exit_2_with_the_apis_line(receiver: Receiver, bridges: Bridges) -> None:
    bridge = await _bridge(bridges)

    blocked = await _webhooks(bridge, "add", "--url", "ftp://example.com/hook")
    unknown = await _webhooks(bridge, "update", "nope", "--active", "false")
    no_token = await run_cli(["webhooks", "list"], {"BRIDGE_API": bridge.admin_url("")})

    assert blocked.returncode == 2
    assert blocked.stderr.startswith("webhook-bridge: 400 url")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("webhook-bridge: 404 ")
    assert no_token.returncode == 2
    assert no_token.stderr.startswith("webhook-bridge: 401 ")
