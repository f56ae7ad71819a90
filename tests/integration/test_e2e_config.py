"""Bad configuration stops start-up: exit code 2, one clear line naming the culprit, no trace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from harness.bridge import Bridges, CliResult

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

EXIT_BAD_CONFIG = 2
MALFORMED_YAML = "webhooks:\n  - id: erp\n    url: [unclosed\n  headers: {\n"
BAD_URL_YAML = "webhooks:\n  - id: erp\n    url: not-a-url\n    secret: s3cret\n"

# (case id, env, YAML file content or None, regex the error line must match)
BAD_RUN_CONFIGS = [
    ("timeout-not-a-duration", {"WEBHOOK_TIMEOUT": "abc"}, None, r"WEBHOOK_TIMEOUT"),
    ("negative-max-retry", {"WEBHOOK_MAX_RETRY": "-1"}, None, r"WEBHOOK_MAX_RETRY"),
    ("unknown-default-webhook", {"DEFAULT_WEBHOOKS": "unknown-id"}, None, r"DEFAULT_WEBHOOKS"),
    ("malformed-yaml", {}, MALFORMED_YAML, r"BRIDGE_CONFIG|bridge\.yaml"),
    ("yaml-bad-url", {}, BAD_URL_YAML, r"webhooks\W+(0|erp)\W+url"),
    ("http-port-not-a-port", {"HTTP_PORT": "notaport"}, None, r"HTTP_PORT"),
    (
        "proxy-without-port",
        {"WEBHOOK_PROXY_URL": "http://u:pw@proxy"},
        None,
        r"WEBHOOK_PROXY_URL: expected",
    ),
]


def _with_yaml(env: dict[str, str], yaml_text: str | None, tmp_path: Path) -> dict[str, str]:
    if yaml_text is None:
        return env
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml_text)
    return env | {"BRIDGE_CONFIG": str(path)}


def _assert_one_clear_line(result: CliResult, pattern: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == EXIT_BAD_CONFIG, (result.returncode, result.stderr)
    assert len(lines) == 1, f"want exactly one line on stderr, got: {lines}"
    assert re.search(pattern, lines[0]), f"{lines[0]!r} does not name {pattern!r}"


@pytest.mark.parametrize(
    ("env", "yaml_text", "pattern"),
    [pytest.param(env, text, pattern, id=case) for case, env, text, pattern in BAD_RUN_CONFIGS],
)
async def test_run_refuses_bad_config(
    bridges: Bridges, tmp_path: Path, env: dict[str, str], yaml_text: str | None, pattern: str
) -> None:
    bridge = bridges.new(_with_yaml(env, yaml_text, tmp_path))
    await bridge.start()
    returncode = await bridge.wait_exit(15)
    result = CliResult(returncode, bridge.stdout_text(), bridge.stderr_text())
    _assert_one_clear_line(result, pattern)


async def test_config_check_refuses_bad_value(bridges: Bridges) -> None:
    result = await bridges.cli("config", "check", env={"WEBHOOK_RETRY_MAX_WAIT": "soon"})
    _assert_one_clear_line(result, r"WEBHOOK_RETRY_MAX_WAIT")


async def test_config_check_accepts_the_suite_config(bridges: Bridges) -> None:
    result = await bridges.cli("config", "check")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
