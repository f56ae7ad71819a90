"""deploy/prometheus/alerts.yml: promtool accepts the rules and passes their unit tests, every
alert is tested firing and quiet, and every runbook link lands on a section of
docs/operations.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.prometheus import (
    ALERT_TESTS,
    ALERTS,
    OPERATIONS,
    alert_rules,
    require_tool,
    run_tool,
)


@pytest.fixture
def promtool() -> Path:
    return require_tool("promtool")


def test_promtool_check_rules(promtool: Path) -> None:
    result = run_tool(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_test_rules(promtool: Path) -> None:
    result = run_tool(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def _expected_by_alert() -> dict[str, list[list[Any]]]:
    """alert name -> the exp_alerts of every evaluation of it in alerts.test.yml."""
    cases: dict[str, list[list[Any]]] = {}
    for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in test["alert_rule_test"]:
            cases.setdefault(check["alertname"], []).append(check["exp_alerts"])
    return cases


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = _expected_by_alert()
    for rule in alert_rules():
        expected = cases.get(rule["alert"], [])
        assert any(expected), f"{rule['alert']}: no test where it fires"
        assert not all(expected), f"{rule['alert']}: no test where it stays quiet"


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_links_a_runbook_in_operations() -> None:
    operations = OPERATIONS.read_text()
    headings = re.findall(r"^#+ (.+)$", operations, flags=re.MULTILINE)
    anchors = {_github_anchor(heading) for heading in headings}
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        link = rule["annotations"]["runbook_url"]
        assert link == f"docs/operations.md#{_github_anchor(rule['alert'])}", rule["alert"]
        assert link.split("#", 1)[1] in anchors, f"{rule['alert']}: no runbook section {link}"
