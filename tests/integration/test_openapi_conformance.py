"""The running admin server conforms to its own OpenAPI document (schemathesis, real bridge)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness.bridge import Bridges
from harness.publish import has_dead_letters, job_event, publish_event
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

TOKEN = "openapi-admin-token"
SCHEMATHESIS = Path(sys.executable).parent / "st"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    )
)


async def _schemathesis(base_url: str, workdir: Path, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "15",
        "--seed",
        "1",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
        # a fuzzed webhook would make the bridge resolve random host names (and its test
        # route call them): creation is checked against the document in test_webhooks_api
        "--exclude-name",
        "POST /webhooks",
        *extra,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=workdir,  # schemathesis keeps a cache directory where it runs
    )
    out, _err = await asyncio.wait_for(proc.communicate(), 200)
    return int(proc.returncode or 0), out.decode(errors="replace")


@pytest.mark.skipif(shutil.which(str(SCHEMATHESIS)) is None, reason="schemathesis not installed")
async def test_admin_api_conforms_to_its_openapi_document(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    receiver.reply("/dead", 500)
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/dead"), "WEBHOOK_MAX_RETRY": "0"}
    bridge = await bridges.start({**env, "ADMIN_TOKEN": TOKEN})
    await publish_event(js, job_event("job.failed", "j-openapi"), "evt-openapi")
    await bridges.wait_for(has_dead_letters(js, 1), 15, "no dead letter to list")
    code, output = await _schemathesis(
        bridge.admin_url(""), tmp_path, "-H", f"Authorization: Bearer {TOKEN}"
    )
    assert code == 0, output[-6000:]
    assert bridge.running, "the bridge died under schemathesis"
