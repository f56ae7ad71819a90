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
from pathlib import Path
from typing import Any

import pytest

from bridge.policy.signing import WEBHOOK_SIGNATURE_HEADER, signature_headers

DOC = Path(__file__).resolve().parents[2] / "docs" / "receivers.md"
BODY = b'{"event":"job.completed","job_id":"j_1","note":"caf\xc3\xa9"}'
DELIVERY_ID = "dlv_0123456789abcdef0123456789abcdef"
NEW, OLD = "new-secret", "old-secret"


def snippet(language: str) -> str:
    [code] = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
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
    exec(snippet("python"), namespace)  # the documented code, exactly as printed
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


def test_node_snippet(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = tmp_path / "verify.js"
    script.write_text(snippet("js") + NODE_DRIVER, encoding="utf-8")
    cases = [
        [headers_of(case), secret, key, base64.b64encode(body).decode()]
        for case in CASES
        for _n, _s, _a, secret, key, body, *_ in [case]
    ]
    result = subprocess.run(
        [node, str(script)], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [[case[6], case[7]] for case in CASES]


def test_rotation_sends_one_standard_signature_per_secret() -> None:
    assert len(signed([NEW, OLD])[WEBHOOK_SIGNATURE_HEADER].split()) == 2
