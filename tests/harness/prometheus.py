"""Prometheus for the deploy/ tests: finding promtool and prometheus, reading the PromQL of the
dashboard and the alert rules, and a real Prometheus server on loopback that scrapes a bridge."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.ports import LOOPBACK, free_port
from harness.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "webhook-bridge.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = REPO / "deploy" / "prometheus" / "alerts.test.yml"
OPERATIONS = REPO / "docs" / "operations.md"  # the dashboard and the alerts' runbooks

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)
# Grafana's interval variables, given values Prometheus accepts for a short test.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}

_SELECTOR = re.compile(r"\b(webhook_bridge_[a-zA-Z0-9_:]*)\s*(?:\{([^}]*)\})?")
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def require_tool(name: str) -> Path:
    """`name` from the venv (where `make tools` puts it) or else from PATH; skips the test when
    it is in neither."""
    in_venv = Path(sys.executable).parent / name
    if in_venv.is_file():
        return in_venv
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not found: `make tools` unpacks it from Debian's `prometheus` package")
    return Path(found)


def run_tool(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command-line tool in the repository root, output captured."""
    return subprocess.run(
        [str(program), *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


# --- the PromQL of deploy/ -------------------------------------------------------------------


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def dashboard() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return value


def dashboard_panels() -> list[dict[str, Any]]:
    return list(_panels(dashboard()["panels"]))


def dashboard_exprs() -> list[str]:
    """Every query of the dashboard, Grafana's variables replaced as Prometheus would see them."""
    exprs = []
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_exprs() -> list[str]:
    return [rule["expr"] for rule in alert_rules()]


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op in ("=", "!="):
            return (actual == self.value) == (self.op == "=")
        return (re.fullmatch(self.value, actual) is not None) == (self.op == "=~")


@dataclass(frozen=True)
class Selector:
    """A vector selector of the bridge's metrics, as written in an expression."""

    text: str
    name: str
    matchers: tuple[Matcher, ...]

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        return name == self.name and all(m.matches(labels) for m in self.matchers)


def selectors(expr: str) -> list[Selector]:
    found = []
    for match in _SELECTOR.finditer(expr):
        matchers = tuple(Matcher(*m) for m in _MATCHER.findall(match.group(2) or ""))
        found.append(Selector(match.group(0).strip(), match.group(1), matchers))
    return found


def grouping_labels(expr: str) -> set[str]:
    """Labels named in `by (...)` / `without (...)` clauses."""
    return {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",")}


# --- /metrics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]


def samples(exposition: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition (histograms give _bucket, _sum, _count)."""
    return [
        Sample(sample.name, dict(sample.labels))
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    ]


# --- a real Prometheus -------------------------------------------------------------------------


def scrape_config(target: str, rule_files: list[Path]) -> dict[str, Any]:
    """Scrape `target` and evaluate `rule_files` every second."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": "webhook-bridge", "static_configs": [{"targets": [target]}]}
        ],
    }


class PrometheusServer:
    """`prometheus` on LOOPBACK:<free port> with its own config and storage under `work_dir`."""

    def __init__(self, program: Path, config: dict[str, Any], work_dir: Path) -> None:
        self.port = free_port()
        self._config_path = work_dir / "prometheus.yml"
        self._config_path.write_text(yaml.safe_dump(config))
        self._log_path = work_dir / "prometheus.log"
        self._args = [
            str(program),
            f"--config.file={self._config_path}",
            f"--storage.tsdb.path={work_dir / 'tsdb'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
        ]
        self._proc: asyncio.subprocess.Process | None = None

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    async def start(self) -> None:
        with self._log_path.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *self._args, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        await wait_for(self._ready, READY_TIMEOUT_S, lambda: f"prometheus not ready: {self.log()}")

    async def _ready(self) -> bool:
        assert self._proc is not None
        assert self._proc.returncode is None, f"prometheus exited: {self.log()}"
        try:
            return (await self._get("/-/ready"))[0] == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-3000:] if self._log_path.exists() else ""

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
            session.get(self.url(path), params=params) as response,
        ):
            body = await response.text()
            return response.status, json.loads(body) if body.startswith("{") else body

    async def api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer, or AssertionError."""
        status, body = await self._get(f"/api/v1/{path}", params)
        assert status == 200, f"{path} {params}: {status} {body}"
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        data = await self.api("query", {"query": expr})
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result
