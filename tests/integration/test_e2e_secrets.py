"""No secret value ever shows: not in logs, errors, `config check`, the admin API, the CLI's
dead-letter and delivery-log output, or what receivers are sent besides their own header.

One bridge is given every kind of secret (webhook secrets, rotation, header values, URL
passwords for NATS, default and per-job URLs, the admin token), made to succeed, fail,
dead-letter and refuse; then everything it printed or serves is searched for each value.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.bridge import Bridges
from harness.nats import NatsServer
from harness.publish import has_dead_letters, job_event, publish_event, read_dead_letters
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SECRETS = {
    "WEBHOOK_SECRET": "env-webhook-secret-v1",
    "NEW_SECRET": "named-new-secret-v2",
    "OLD_SECRET": "named-old-secret-v3",
    "HEADER_TOKEN": "header-bearer-secret-v4",
    "ADMIN_TOKEN": "admin-token-secret-v5",
}
NATS_URL_PASSWORD = "nats-url-password-v6"
DEFAULT_URL_PASSWORD = "default-url-password-v7"
NAMED_URL_PASSWORD = "named-url-password-v8"
JOB_URL_PASSWORD = "job-url-password-v9"
ALL_SECRETS = (
    *SECRETS.values(),
    NATS_URL_PASSWORD,
    DEFAULT_URL_PASSWORD,
    NAMED_URL_PASSWORD,
    JOB_URL_PASSWORD,
)

CONFIG = """
webhooks:
  - id: erp
    url: http://erp:{named_password}@127.0.0.1:{port}/named
    secrets: ["${{NEW_SECRET}}", "${{OLD_SECRET}}"]
    headers: {{X-Api-Key: "${{HEADER_TOKEN}}"}}
"""


def _found(text: str) -> list[str]:
    return [secret for secret in ALL_SECRETS if secret in text]


async def test_no_secret_value_shows_anywhere(
    js: JetStreamContext,
    nats_server: NatsServer,
    receiver: Receiver,
    bridges: Bridges,
    tmp_path: Path,
) -> None:
    receiver.reply("/default", 500)
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG.format(named_password=NAMED_URL_PASSWORD, port=receiver.port))
    default_url = f"http://hooks:{DEFAULT_URL_PASSWORD}@127.0.0.1:{receiver.port}/default"
    env = {
        **SECRETS,
        "BRIDGE_CONFIG": str(config),
        "DEFAULT_WEBHOOKS": "erp",
        "DEFAULT_WEBHOOK_URLS": default_url,
        "NATS_URL": nats_server.url.replace("://", f"://bridge:{NATS_URL_PASSWORD}@", 1),
        "WEBHOOK_MAX_RETRY": "0",
    }
    bridge = await bridges.start(env)
    job_url = f"http://job:{JOB_URL_PASSWORD}@127.0.0.1:{receiver.port}/job"
    await publish_event(js, job_event("job.completed", "j-secrets", webhook=job_url), "evt-s")
    # the default URL fails (500) and the per-job URL is refused (loopback): two dead letters
    await bridges.wait_for(has_dead_letters(js, 2), 20, "two dead letters expected")
    await bridges.wait_for(lambda: receiver.count("/named") == 1, 20, "named not delivered")

    # What receivers get: the named webhook sees its own header, nobody sees other secrets.
    [named] = receiver.received("/named")
    assert named.headers["X-Api-Key"] == SECRETS["HEADER_TOKEN"]
    for request in receiver.requests:
        shown = str(dict(request.headers)) + request.body.decode()
        assert set(_found(shown)) <= {SECRETS["HEADER_TOKEN"], NAMED_URL_PASSWORD}, request.path
        assert DEFAULT_URL_PASSWORD not in request.body.decode()

    auth = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
    outputs = {}
    for path in ("/webhooks", "/deliveries?job_id=j-secrets", "/dlq", "/metrics"):
        status, body = await bridge.get(path, headers=auth)
        assert status == 200, (path, body)
        outputs[path] = body
    for args in (("config", "check"), ("dlq", "list"), ("dlq", "list", "--json")):
        result = await bridges.cli(*args, env=env)
        assert result.returncode == 0, result
        outputs[" ".join(args)] = result.stdout + result.stderr
    result = await bridges.cli("deliveries", "--job-id", "j-secrets", "--json", env=env)
    outputs["deliveries"] = result.stdout + result.stderr
    assert "j-secrets" in outputs["deliveries"]
    assert await bridge.terminate() == 0
    outputs["bridge logs"] = bridge.stdout_text() + bridge.stderr_text()

    # The stored records: signing secrets, header values and tokens are never in them. (The
    # full URL of a failed delivery is, as in the tasks stream: replay needs it.)
    stored = str([letter.body for letter in await read_dead_letters(js)])
    assert [secret for secret in SECRETS.values() if secret in stored] == []

    leaks = {where: found for where, text in outputs.items() if (found := _found(text))}
    assert leaks == {}
    assert "***" in outputs["config check"]
    assert f"hooks:***@127.0.0.1:{receiver.port}/default" in outputs["/dlq"]


def _warned_about_default(records: list[dict[str, object]]) -> bool:
    return any(
        record.get("level") == "warning" and "WEBHOOK_SECRET is the default" in str(record)
        for record in records
    )


async def test_the_default_secret_gets_a_loud_warning(bridges: Bridges) -> None:
    default = await bridges.start({"WEBHOOK_SECRET": "secret"})
    assert _warned_about_default(default.log_records())
    real = await bridges.start({"WEBHOOK_SECRET": "a-real-secret"})
    assert not _warned_about_default(real.log_records())
