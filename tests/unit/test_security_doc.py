"""The receiver snippets of docs/receivers.md (the one copy; README and SECURITY.md link to
it) verify what the bridge signs, executed exactly as printed (Python and Node)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config.webhooks import Format
from bridge.policy.asymmetric import public_key
from bridge.policy.framing import framed
from bridge.policy.routing import Target
from bridge.policy.signing import WEBHOOK_SIGNATURE_HEADER, signature_headers
from bridge.policy.tasks import DeliveryTask

DOC = Path(__file__).resolve().parents[2] / "docs" / "receivers.md"
BODY = b'{"event":"job.completed","job_id":"j_1","note":"caf\xc3\xa9"}'
DELIVERY_ID = "dlv_0123456789abcdef0123456789abcdef"
NEW, OLD = "new-secret", "old-secret"


def snippet(language: str, marker: str) -> str:
    """The one block of `language` that holds `marker` (e.g. the function it defines)."""
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    [code] = [block for block in blocks if marker in block]
    return str(code)


def whsec(secret: str) -> str:
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def signed(secrets: list[str], timestamp_s: int | None = None) -> dict[str, str]:
    now = int(time.time()) if timestamp_s is None else timestamp_s
    return signature_headers(secrets, DELIVERY_ID, now, BODY)


Case = tuple[str, list[str], int, str, str, bytes, bool, bool]
# name, signing secrets, age of the signature (s), greenlight secret, whsec, body,
# greenlight ok, standard ok. Signed when each test runs: the snippets refuse old timestamps.
CASES: list[Case] = [
    ("one secret", [NEW], 0, NEW, whsec(NEW), BODY, True, True),
    ("rotation, new", [NEW, OLD], 0, NEW, whsec(NEW), BODY, True, True),
    ("rotation, old", [NEW, OLD], 0, OLD, whsec(OLD), BODY, False, True),
    ("wrong secret", [NEW], 0, OLD, whsec(OLD), BODY, False, False),
    ("tampered body", [NEW], 0, NEW, whsec(NEW), BODY + b" ", False, False),
    ("stale timestamp", [NEW], 3600, NEW, whsec(NEW), BODY, True, False),
    ("whsec secret", [whsec(NEW)], 0, whsec(NEW), whsec(NEW), BODY, True, True),
]


def headers_of(case: Case) -> dict[str, str]:
    _name, secrets, age_s, *_ = case
    return signed(secrets, int(time.time()) - age_s)


def _python_receiver() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(
        snippet("python", "def verify_greenlight"), namespace
    )  # the documented code, exactly as printed
    return namespace


def _run_python(case: Case) -> list[bool]:
    namespace = _python_receiver()
    greenlight: Callable[..., bool] = namespace["verify_greenlight"]
    standard: Callable[..., bool] = namespace["verify_standard"]
    _name, _secrets, _age_s, secret, key, body, *_ = case
    headers = headers_of(case)
    return [
        greenlight(secret, body, headers["X-Greenlight-Signature"]),
        standard(key, body, headers),
    ]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_python_snippet(case: Case) -> None:
    assert _run_python(case) == [case[6], case[7]]


def test_python_snippet_refuses_a_non_ascii_signature_without_raising() -> None:
    verify_greenlight = _python_receiver()["verify_greenlight"]
    assert verify_greenlight(NEW, BODY, "sha256=\u00e9") is False


NODE_DRIVER = """
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(cases.map(([headers, secret, key, body]) => {
  const raw = Buffer.from(body, 'base64');
  return [verifyGreenlight(secret, raw, headers['X-Greenlight-Signature']),
          verifyStandard(key, raw, headers)];
})));
"""


def run_node(tmp_path: Path, script: str, cases: list[list[Any]]) -> Any:
    """What `script` prints, as JSON, given `cases` as JSON on its standard input."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    path = tmp_path / "verify.js"
    path.write_text(script, encoding="utf-8")
    result = subprocess.run(
        [node, str(path)], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_node_snippet(tmp_path: Path) -> None:
    cases = [
        [headers_of(case), secret, key, base64.b64encode(body).decode()]
        for case in CASES
        for _n, _s, _a, secret, key, body, *_ in [case]
    ]
    script = snippet("js", "function verifyGreenlight") + NODE_DRIVER
    assert run_node(tmp_path, script, cases) == [[case[6], case[7]] for case in CASES]


def test_rotation_sends_one_standard_signature_per_secret() -> None:
    assert len(signed([NEW, OLD])[WEBHOOK_SIGNATURE_HEADER].split()) == 2


# --- ed25519 (v1a) ------------------------------------------------------------------------

NEW_KEY = "whsk_" + base64.b64encode(b"n" * 32).decode()
OLD_KEY = "whsk_" + base64.b64encode(b"o" * 32).decode()
V1aCase = tuple[str, list[str], int, str, bytes, bool]
# name, signing secrets, age of the signature (s), the receiver's public key, body, valid
V1A_CASES: list[V1aCase] = [
    ("one key", [NEW_KEY], 0, public_key(NEW_KEY), BODY, True),
    ("rotation, old key", [NEW_KEY, OLD_KEY], 0, public_key(OLD_KEY), BODY, True),
    ("hmac to ed25519", [NEW_KEY, NEW], 0, public_key(NEW_KEY), BODY, True),
    ("ed25519 to hmac", [NEW, OLD_KEY], 0, public_key(OLD_KEY), BODY, True),
    ("wrong key", [NEW_KEY], 0, public_key(OLD_KEY), BODY, False),
    ("hmac only", [NEW], 0, public_key(NEW_KEY), BODY, False),
    ("tampered body", [NEW_KEY], 0, public_key(NEW_KEY), BODY + b" ", False),
    ("stale timestamp", [NEW_KEY], 3600, public_key(NEW_KEY), BODY, False),
]


@pytest.mark.parametrize("case", V1A_CASES, ids=[case[0] for case in V1A_CASES])
def test_python_v1a_snippet(case: V1aCase) -> None:
    _name, secrets, age_s, whpk, body, valid = case
    verify_v1a = _python_receiver()["verify_v1a"]
    assert verify_v1a(whpk, body, signed(secrets, int(time.time()) - age_s)) is valid


NODE_V1A_DRIVER = """
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(cases.map(([headers, key, body]) =>
  verifyV1a(key, Buffer.from(body, 'base64'), headers))));
"""


def test_node_v1a_snippet(tmp_path: Path) -> None:
    cases = [
        [signed(secrets, int(time.time()) - age_s), whpk, base64.b64encode(body).decode()]
        for _name, secrets, age_s, whpk, body, _valid in V1A_CASES
    ]
    script = snippet("js", "function verifyV1a") + NODE_V1A_DRIVER
    assert run_node(tmp_path, script, cases) == [case[5] for case in V1A_CASES]


# --- CloudEvents --------------------------------------------------------------------------


@pytest.mark.parametrize("body_format", ["cloudevents", "cloudevents-binary"])
def test_cloudevents_snippet_parses_both_modes(body_format: Format) -> None:
    namespace: dict[str, Any] = {}
    exec(snippet("python", "def parse_cloudevent"), namespace)  # as printed
    target = Target(url="https://r.example/h", endpoint="r", source="named", webhook_id="r")
    task = DeliveryTask(
        delivery_id=DELIVERY_ID,
        event_id="evt-1",
        event="job.completed",
        job_id="j_1",
        tenant_id=None,
        target=target,
        body=BODY,
        published_at_s=1768386612.25,
    )
    body, framing = framed(body_format, task, "/webhook-bridge")
    headers = {"Content-Type": "application/json", **framing}  # as the bridge sends them
    parsed = namespace["parse_cloudevent"](headers, body)
    assert parsed == {
        "id": "evt-1",
        "type": "job.completed",
        "source": "/webhook-bridge",
        "time": datetime(2026, 1, 14, 10, 30, 12, 250000, tzinfo=UTC),
        "subject": "j_1",
        "data": json.loads(BODY),
    }
