"""README stays true: the configuration reference matches the config model, and the code
snippets of the producer and receiver guides are clean and verify real signatures."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bridge.config import FIELDS
from bridge.signing import signature_headers

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RUFF = Path(sys.executable).parent / "ruff"
SECRET, ROTATED_OUT = "receiver-guide-secret", "the-previous-secret"
BODY = b'{"event":"job.completed","job_id":"j_42"}'


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "config_reference", ROOT / "tools/config_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)


def _block_with(language: str, text: str) -> str:
    (block,) = [b for b in _blocks(language) if text in b]
    return block


def test_quick_start_is_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in quick_start
    assert "make test" in quick_start


def test_configuration_reference_is_generated_from_the_model() -> None:
    generator = _generator()
    assert set(generator.MEANINGS) == set(FIELDS), "MEANINGS and FIELDS list different settings"
    assert generator.updated(README) == README, "run: python tools/config_reference.py"


@pytest.mark.parametrize("code", _blocks("python"), ids=lambda code: code.split("\n")[0])
def test_python_snippets_compile_and_are_ruff_clean(code: str) -> None:
    compile(code, "README.md", "exec")
    for command in (["check", "--quiet"], ["format", "--check", "--quiet"]):
        result = subprocess.run(
            [str(RUFF), *command, "--stdin-filename", "README_snippet.py", "-"],
            input=code,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _signed(secrets: list[str], body: bytes = BODY) -> dict[str, str]:
    return signature_headers(secrets, "dlv_0123456789abcdef", int(time.time()), body)


def _python_receiver() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(_block_with("python", "def greenlight_valid"), namespace)  # README's own code
    return namespace


CASES = [
    # (headers signed with, body received, both valid?)
    ([SECRET], BODY, True),
    ([SECRET, ROTATED_OUT], BODY, True),  # rotation: one of two webhook-signature values
    ([ROTATED_OUT], BODY, False),
    ([SECRET], BODY + b" ", False),
]


@pytest.mark.parametrize(("secrets", "body", "valid"), CASES)
def test_python_receiver_snippet_verifies_the_bridge_signatures(
    secrets: list[str], body: bytes, valid: bool
) -> None:
    receiver, headers = _python_receiver(), _signed(secrets)
    key = SECRET.encode()
    assert receiver["greenlight_valid"](key, body, headers["X-Greenlight-Signature"]) is (
        valid and secrets[0] == SECRET
    )
    assert receiver["standard_valid"](key, body, headers) is valid


def test_python_receiver_refuses_a_non_ascii_signature_without_raising() -> None:
    receiver = _python_receiver()
    assert receiver["greenlight_valid"](SECRET.encode(), BODY, "sha256=é") is False


NODE_CHECK = """
const { greenlightValid, standardValid } = require(process.argv[2]);
const cases = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const key = Buffer.from(cases.secret);
const verdicts = cases.cases.map(({ headers, body }) => {
  const raw = Buffer.from(body, 'base64');
  return [greenlightValid(key, raw, headers['X-Greenlight-Signature']),
          standardValid(key, raw, headers)];
});
console.log(JSON.stringify(verdicts));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_receiver_snippet_verifies_the_bridge_signatures(tmp_path: Path) -> None:
    (tmp_path / "receiver.js").write_text(_block_with("js", "function greenlightValid"))
    (tmp_path / "check.js").write_text(NODE_CHECK)
    cases = [
        {"headers": _signed(secrets), "body": base64.b64encode(body).decode()}
        for secrets, body, _valid in CASES
    ]
    result = subprocess.run(
        ["node", str(tmp_path / "check.js"), str(tmp_path / "receiver.js")],
        input=json.dumps({"secret": SECRET, "cases": cases}),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    expected = [[valid and secrets[0] == SECRET, valid] for secrets, _body, valid in CASES]
    assert json.loads(result.stdout) == expected
