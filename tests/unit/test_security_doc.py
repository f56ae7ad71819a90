"""The receiver snippets in SECURITY.md verify what the bridge signs (Python and Node)."""

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

from bridge.signing import WEBHOOK_SIGNATURE_HEADER, signature_headers

DOC = Path(__file__).resolve().parents[2] / "SECURITY.md"
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


CASES: list[tuple[str, dict[str, str], str, str, bytes, bool, bool]] = [
    # name, headers, greenlight secret, whsec, body, greenlight ok, standard ok
    ("one secret", signed([NEW]), NEW, whsec(NEW), BODY, True, True),
    ("rotation, new", signed([NEW, OLD]), NEW, whsec(NEW), BODY, True, True),
    ("rotation, old", signed([NEW, OLD]), OLD, whsec(OLD), BODY, False, True),
    ("wrong secret", signed([NEW]), OLD, whsec(OLD), BODY, False, False),
    ("tampered body", signed([NEW]), NEW, whsec(NEW), BODY + b" ", False, False),
    ("stale timestamp", signed([NEW], int(time.time()) - 3600), NEW, whsec(NEW), BODY, True, False),
    ("whsec secret", signed([whsec(NEW)]), whsec(NEW), whsec(NEW), BODY, True, True),
]


def _run_python(case: tuple[str, dict[str, str], str, str, bytes, bool, bool]) -> list[bool]:
    namespace: dict[str, Any] = {}
    exec(snippet("python"), namespace)  # the documented code, exactly as printed
    greenlight: Callable[..., bool] = namespace["verify_greenlight"]
    standard: Callable[..., bool] = namespace["verify_standard"]
    _name, headers, secret, key, body, *_ = case
    return [
        greenlight(secret, body, headers["X-Greenlight-Signature"]),
        standard(key, body, headers),
    ]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_python_snippet(case: tuple[str, dict[str, str], str, str, bytes, bool, bool]) -> None:
    assert _run_python(case) == [case[5], case[6]]


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
    cases = [[h, s, k, base64.b64encode(b).decode()] for _n, h, s, k, b, *_ in CASES]
    result = subprocess.run(
        [node, str(script)], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [[case[5], case[6]] for case in CASES]


def test_rotation_sends_one_standard_signature_per_secret() -> None:
    assert len(signed([NEW, OLD])[WEBHOOK_SIGNATURE_HEADER].split()) == 2
