"""deploy/kubernetes/, checked without a cluster: the Kubernetes JSON schemas (from the
kubernetes-validate package), and what the manifests must agree on with each other and SPEC."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bridge.config.durations import parse_duration_s
from bridge.config.settings import FIELDS, load_settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30"
CUSTOM_KINDS = {"ServiceMonitor"}  # a Prometheus Operator CRD: not in the Kubernetes schemas
SHUTDOWN_MARGIN_S = 10  # closing NATS (≤5 s) and the pod's own exit after the drain deadline
Resource = dict[str, Any]


def _kustomization() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    return document


def _resources() -> list[Resource]:
    found = []
    for name in _kustomization()["resources"]:
        found.extend(d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d)
    return found


def _one(kind: str, name: str | None = None) -> Resource:
    (found,) = [
        r
        for r in _resources()
        if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)
    ]
    return found


def _container() -> dict[str, Any]:
    (container,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_kustomization_lists_every_manifest() -> None:
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize(
    "resource",
    [r for r in _resources() if r["kind"] not in CUSTOM_KINDS],
    ids=lambda r: f"{r['kind']}/{r['metadata']['name']}",
)
def test_valid_against_the_kubernetes_schema(resource: Resource) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def _misspell_probe(deployment: Resource) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container["readinesProbe"] = container.pop("readinessProbe")


def _replicas_as_text(deployment: Resource) -> None:
    deployment["spec"]["replicas"] = "two"


@pytest.mark.parametrize("mistake", [_misspell_probe, _replicas_as_text])
def test_the_schema_catches_mistakes(mistake: Callable[[Resource], None]) -> None:
    broken = _one("Deployment")
    mistake(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_service_monitor_scrapes_the_service_metrics_port() -> None:
    monitor, service = _one("ServiceMonitor"), _one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    labels = monitor["spec"]["selector"]["matchLabels"]
    assert labels.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_deployment_runs_replicas_with_probes_and_resources() -> None:
    deployment, container = _one("Deployment"), _container()
    assert deployment["spec"]["replicas"] >= 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (port,) = container["ports"]
    assert port["containerPort"] == FIELDS["HTTP_PORT"][1]
    assert container["readinessProbe"]["httpGet"]["port"] == port["name"]
    assert set(container["resources"]) == {"requests", "limits"}
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def _env() -> dict[str, str]:
    """The container's environment: its ConfigMap and Secret, as envFrom gives them."""
    env: dict[str, str] = {}
    for source in _container()["envFrom"]:
        if "configMapRef" in source:
            env |= _one("ConfigMap", source["configMapRef"]["name"])["data"]
        else:
            env |= _one("Secret", source["secretRef"]["name"])["stringData"]
    return env


def test_grace_period_outlasts_the_drain_deadline() -> None:
    grace_s = _one("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    shutdown_s = parse_duration_s(_env()["SHUTDOWN_TIMEOUT"])
    assert grace_s >= shutdown_s + SHUTDOWN_MARGIN_S


def test_pod_runs_as_non_root_with_a_read_only_root() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    container = _container()["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    assert "USER 10001:10001" in (ROOT / "Dockerfile").read_text()  # the image agrees


def test_secrets_come_from_the_secret_and_settings_from_the_config_map() -> None:
    settings_env = _one("ConfigMap", "webhook-bridge-env")["data"]
    secret_env = _one("Secret")["stringData"]
    assert set(settings_env) <= {*FIELDS, "BRIDGE_CONFIG"}
    assert {"WEBHOOK_SECRET", "ADMIN_TOKEN"} <= set(secret_env)
    assert not {"WEBHOOK_SECRET", "ADMIN_TOKEN", "NATS_PASSWORD", "NATS_TOKEN"} & set(settings_env)
    assert all(value.startswith("replace-me") for value in secret_env.values())


def _mounted_config(tmp_path: Path) -> Path:
    """Where BRIDGE_CONFIG points in the pod, mapped to the ConfigMap's file here."""
    container, pod = _container(), _one("Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    (item,) = volume["configMap"]["items"]
    assert _env()["BRIDGE_CONFIG"] == f"{mount['mountPath']}/{item['path']}"
    local = tmp_path / item["path"]
    local.write_text(_one("ConfigMap", volume["configMap"]["name"])["data"][item["key"]])
    return local


def test_the_pod_configuration_is_valid(tmp_path: Path) -> None:
    env = _env() | {"BRIDGE_CONFIG": str(_mounted_config(tmp_path))}
    settings = load_settings(env)
    assert [hook.id for hook in settings.webhooks] == list(settings.default_webhooks)


@pytest.mark.parametrize("kind", ["Service", "PodDisruptionBudget"])
def test_selectors_match_the_pods(kind: str) -> None:
    spec = _one(kind)["spec"]
    selector = spec["selector"].get("matchLabels", spec["selector"])
    pod_labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()


def test_disruption_budget_keeps_a_replica_serving() -> None:
    budget = _one("PodDisruptionBudget")["spec"]
    assert 1 <= budget["minAvailable"] < _one("Deployment")["spec"]["replicas"]
