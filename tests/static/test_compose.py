"""docker-compose.yml, checked without Docker: the Compose schema, the files it mounts, and the
ports, env names and wiring the bridge, Prometheus and Grafana agree on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from harness.prometheus import require_tool, run_tool

from bridge.config.settings import FIELDS, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
SETTING_NAMES = {*FIELDS, "BRIDGE_CONFIG"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = _yaml(COMPOSE)
    return document


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_catches_mistakes(compose: dict[str, Any]) -> None:
    """The vendored schema is not vacuous: a wrong port entry and restart policy fail it."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["bridge"]["ports"] = [{"bogus": 1}]
    broken["services"]["nats"]["restart"] = 3
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    assert len(list(validator.iter_errors(broken))) == 2


def _bind_sources(compose: dict[str, Any]) -> list[str]:
    sources = []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                sources.append(source)
    return sources


def test_every_file_compose_mounts_or_builds_exists(compose: dict[str, Any]) -> None:
    sources = _bind_sources(compose)
    assert "./deploy/prometheus/alerts.yml" in sources
    assert "./deploy/grafana/dashboards" in sources
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert missing == []
    assert (ROOT / _service(compose, "bridge")["build"] / "Dockerfile").is_file()


def test_named_volumes_are_declared_and_nats_keeps_its_store(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in declared, source
    nats = _service(compose, "nats")
    assert "nats-data:/data" in nats["volumes"]
    command = nats["command"]
    assert "-js" in command
    assert command[command.index("-sd") + 1] == "/data"


def test_depends_on_names_services_that_exist(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    for service in compose["services"].values():
        assert set(service.get("depends_on", [])) <= services


def test_bridge_env_uses_only_settings_the_bridge_knows(compose: dict[str, Any]) -> None:
    environment = _service(compose, "bridge")["environment"]
    assert set(environment) <= SETTING_NAMES
    # and it is a valid configuration, with compose's ${VAR:-default} taken at its default
    env = {name: _compose_default(str(value)) for name, value in environment.items()}
    settings = load_settings(env)
    assert settings.nats_urls == ("nats://nats:4222",)
    assert all(url.startswith("http://receiver:9000/") for url in settings.default_webhook_urls)


def _compose_default(value: str) -> str:
    if value.startswith("${") and ":-" in value:
        return value.split(":-", 1)[1].rstrip("}")
    return value


def test_ports_agree_with_the_spec_and_the_image(compose: dict[str, Any]) -> None:
    bridge_port = str(FIELDS["HTTP_PORT"][1])
    bridge = _service(compose, "bridge")
    assert bridge["environment"]["HTTP_PORT"] == bridge_port
    assert f"{bridge_port}:{bridge_port}" in bridge["ports"]
    assert f"EXPOSE {bridge_port}" in (ROOT / "Dockerfile").read_text()
    nats_port = FIELDS["NATS_URL"][1].rsplit(":", 1)[1]
    assert f"{nats_port}:{nats_port}" in _service(compose, "nats")["ports"]
    receiver = _service(compose, "receiver")["environment"]["RECEIVER_PORT"]
    assert f":{receiver}/" in bridge["environment"]["DEFAULT_WEBHOOK_URLS"]


def test_receiver_and_bridge_share_the_secret(compose: dict[str, Any]) -> None:
    secret = _service(compose, "bridge")["environment"]["WEBHOOK_SECRET"]
    assert _service(compose, "receiver")["environment"]["WEBHOOK_SECRET"] == secret


def test_publisher_publishes_with_the_cli(compose: dict[str, Any]) -> None:
    publisher = _service(compose, "publisher")
    script = publisher["entrypoint"][-1]
    mounted = {v.split(":")[1]: ROOT / v.split(":")[0] for v in publisher["volumes"]}
    assert "webhook-bridge publish" in mounted[script].read_text()
    assert publisher["environment"]["NATS_URL"] == "nats://nats:4222"


def test_prometheus_scrapes_the_bridge_and_loads_the_alert_rules(compose: dict[str, Any]) -> None:
    config = _yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    mounts = dict(v.split(":")[:2] for v in _service(compose, "prometheus")["volumes"])
    assert mounts["./deploy/prometheus/alerts.yml"] in config["rule_files"]
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"bridge:{FIELDS['HTTP_PORT'][1]}"]


def test_grafana_provisions_the_data_source_and_the_dashboard(compose: dict[str, Any]) -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    mounts = dict(v.split(":")[:2] for v in _service(compose, "grafana")["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (source,) = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090:9090" in _service(compose, "prometheus")["ports"]
    (provider,) = _yaml(provisioning / "dashboards" / "webhook-bridge.yml")["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/webhook-bridge.json").read_text())
    assert dashboard["title"]


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    config = _yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    config["rule_files"] = [str(ROOT / "deploy" / "prometheus" / "alerts.yml")]  # as mounted
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = run_tool(promtool, "check", "config", str(local))
    assert result.returncode == 0, result.stdout + result.stderr
