"""ed25519 keys from the command line, the real command against a real bridge: `webhooks add
--ed25519` and `rotate-secret --ed25519` make the key on the operator's side and print only
the public key; `verify` checks a received `v1a,` signature with it and refuses a forged one."""

from __future__ import annotations

import json

import pytest
from harness.bridge import BridgeProcess, Bridges, CliResult, run_cli
from harness.receiver import Received, Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

TOKEN = "cli-ed25519-admin-token"


async def _webhooks(bridge: BridgeProcess, *args: str) -> CliResult:
    env = {"BRIDGE_API": bridge.admin_url(""), "ADMIN_TOKEN": TOKEN}
    result = await run_cli(["webhooks", *args], env)
    assert result.returncode == 0, result.stderr
    assert "whsk_" not in result.stdout + result.stderr, "the private key is never printed"
    return result


async def verify(key: str, delivery: Received, body: bytes | None = None) -> CliResult:
    headers = delivery.headers
    args = ["--secret", key, "--signature", headers["webhook-signature"]]
    args += ["--id", headers["webhook-id"], "--timestamp", headers["webhook-timestamp"]]
    return await run_cli(["verify", *args], {}, stdin=delivery.body if body is None else body)


async def test_add_and_rotate_with_ed25519_then_verify_v1a(
    receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start({"ADMIN_TOKEN": TOKEN, "WEBHOOK_ALLOW_PRIVATE_URLS": "true"})
    url = receiver.url("/erp")
    added = await _webhooks(bridge, "add", "--id", "erp", "--url", url, "--ed25519", "--json")
    public = json.loads(added.stdout)["public_key"]
    assert public.startswith("whpk_")
    assert "secret" not in json.loads(added.stdout)
    await _webhooks(bridge, "test", "erp")
    [probe] = receiver.received("/erp")

    valid = await verify(public, probe)
    assert (valid.returncode, valid.stderr.strip()) == (0, "signature is valid")
    forged = await verify(public, probe, probe.body.replace(b"webhook.test", b"webhook.fake"))
    assert (forged.returncode, forged.stderr.strip()) == (1, "signature does NOT match")
    malformed = await verify("whpk_c2hvcnQ=", probe)
    assert malformed.returncode == 2
    assert "--secret: a whpk_ key must be 32 bytes, got 5" in malformed.stderr

    rotated = await _webhooks(bridge, "rotate-secret", "erp")
    new = rotated.stdout.strip()
    assert new.startswith("whpk_")
    assert new != public
    assert "give receivers this public key" in rotated.stderr
    await _webhooks(bridge, "test", "erp")
    during = receiver.received("/erp")[-1]
    assert (await verify(new, during)).returncode == 0
    assert (await verify(public, during)).returncode == 0, "the old key signs during the grace"
