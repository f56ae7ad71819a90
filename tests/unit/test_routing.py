"""Routing an event to targets: defaults, per-job entries, filters, de-duplication, ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config.settings import load_settings
from bridge.policy.events import Event
from bridge.policy.routing import Route, Router, Target, delivery_id, host_of

CONFIG = """
webhooks:
  - id: erp
    url: https://erp.example.com/hooks
    events: ["job.*"]
  - id: acme-only
    url: https://acme.example.com/hooks
    tenants: [acme]
  - id: retired
    url: https://retired.example.com/hooks
    active: false
  - id: crm
    url: https://crm.example.com/hooks
"""
URL_A = "https://a.example.com/hooks"
URL_B = "https://b.example.com/hooks"
JOB_URL = "https://receiver.example.org/job"


def router(tmp_path: Path, **env: str) -> Router:
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return Router(load_settings({"BRIDGE_CONFIG": str(path), **env}))


def event(
    name: str = "job.completed", tenant_id: str | None = "acme", webhooks: tuple[str, ...] = ()
) -> Event:
    return Event(
        id="GREENLIGHT_EVENTS-1",
        name=name,
        job_id="j_1",
        tenant_id=tenant_id,
        webhooks=webhooks,
        body=b"{}",
        published_at_s=0.0,
    )


NAMED_URLS = {
    "erp": "https://erp.example.com/hooks",
    "acme-only": "https://acme.example.com/hooks",
    "retired": "https://retired.example.com/hooks",
    "crm": "https://crm.example.com/hooks",
}


def named(hook_id: str) -> Target:
    return Target(NAMED_URLS[hook_id], hook_id, "named", webhook_id=hook_id)


def default(url: str) -> Target:
    return Target(url, host_of(url), "default")


def job(url: str) -> Target:
    return Target(url, host_of(url), "job", trusted=False)


def to(*targets: Target, unknown: tuple[str, ...] = ()) -> Route:
    return Route(targets=targets, unknown_ids=unknown)


def not_routed(the_event: Event) -> object:
    return pytest.param({}, the_event, (), to())


CRM_URL = NAMED_URLS["crm"]
ROUTES = [
    # (env, event, remembered per-job entries, expected route)
    ({}, event(), (), to()),
    ({"DEFAULT_WEBHOOK_URLS": f"{URL_A},{URL_B}"}, event(), (), to(default(URL_A), default(URL_B))),
    (
        {"DEFAULT_WEBHOOKS": "crm,erp", "DEFAULT_WEBHOOK_URLS": URL_A},
        event(),
        (),
        to(named("crm"), named("erp"), default(URL_A)),
    ),
    ({}, event(webhooks=(JOB_URL,)), (), to(job(JOB_URL))),
    ({}, event(webhooks=("crm",)), (), to(named("crm"))),
    ({}, event(webhooks=("nope",)), (), to(unknown=("nope",))),
    ({}, event(webhooks=("nope", "crm", "x")), (), to(named("crm"), unknown=("nope", "x"))),
    # de-duplication by URL keeps the first
    ({"DEFAULT_WEBHOOK_URLS": URL_A}, event(webhooks=(URL_A,)), (), to(default(URL_A))),
    ({"DEFAULT_WEBHOOKS": "crm"}, event(webhooks=("crm",)), (), to(named("crm"))),
    ({"DEFAULT_WEBHOOKS": "crm"}, event(webhooks=(CRM_URL,)), (), to(named("crm"))),
    ({"DEFAULT_WEBHOOK_URLS": CRM_URL}, event(webhooks=("crm",)), (), to(default(CRM_URL))),
    # named webhook filters on defaults
    ({"DEFAULT_WEBHOOKS": "erp"}, event("job.completed"), (), to(named("erp"))),
    ({"DEFAULT_WEBHOOKS": "erp"}, event("job.failed"), (), to(named("erp"))),
    ({"DEFAULT_WEBHOOKS": "erp"}, event("approval.rejected"), (), to()),
    ({"DEFAULT_WEBHOOKS": "erp"}, event("job"), (), to()),
    ({"DEFAULT_WEBHOOKS": "acme-only"}, event(tenant_id="acme"), (), to(named("acme-only"))),
    ({"DEFAULT_WEBHOOKS": "acme-only"}, event(tenant_id="globex"), (), to()),
    ({"DEFAULT_WEBHOOKS": "acme-only"}, event(tenant_id=None), (), to()),
    ({"DEFAULT_WEBHOOKS": "retired"}, event(), (), to()),
    # named webhook filters on per-job ids: filtered out is not unknown
    ({}, event("job.failed", webhooks=("erp",)), (), to(named("erp"))),
    not_routed(event("approval.rejected", webhooks=("erp",))),
    not_routed(event(tenant_id="globex", webhooks=("acme-only",))),
    not_routed(event(webhooks=("retired",))),
    # remembered entries
    ({}, event(), (JOB_URL, "crm"), to(job(JOB_URL), named("crm"))),
    ({}, event(webhooks=("crm",)), (JOB_URL, "crm"), to(named("crm"), job(JOB_URL))),
    ({}, event(), ("gone-id",), to(unknown=("gone-id",))),
    (
        {"DEFAULT_WEBHOOK_URLS": URL_A},
        event(webhooks=(JOB_URL,)),
        (URL_A, JOB_URL),
        to(default(URL_A), job(JOB_URL)),
    ),
]


@pytest.mark.parametrize(("env", "the_event", "remembered", "expected"), ROUTES)
def test_route(
    tmp_path: Path,
    env: dict[str, str],
    the_event: Event,
    remembered: tuple[str, ...],
    expected: Route,
) -> None:
    assert router(tmp_path, **env).route(the_event, remembered) == expected


def test_named_lookup(tmp_path: Path) -> None:
    routes = router(tmp_path)
    hook = routes.named("crm")
    assert hook is not None
    assert hook.url == NAMED_URLS["crm"]
    assert routes.named("nope") is None


@pytest.mark.parametrize(
    ("event_id", "url", "same_as"),
    [
        ("E-1", URL_A, ("E-1", URL_A)),
        ("E-1", URL_B, None),
        ("E-2", URL_A, None),
        ("E-1", URL_A + "/", None),
    ],
)
def test_delivery_id(event_id: str, url: str, same_as: tuple[str, str] | None) -> None:
    reference = delivery_id("E-1", URL_A)
    value = delivery_id(event_id, url)
    assert value.startswith("dlv_")
    assert len(value) == 36
    assert value == delivery_id(event_id, url)
    assert (value == reference) == (same_as is not None)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Hooks.Example.com:8443/x?y=1", "hooks.example.com"),
        ("http://user:pw@example.org/", "example.org"),
        ("http://[::1]:80/", "::1"),
        ("http://192.0.2.7/h", "192.0.2.7"),
        ("not a url", "unknown"),
        ("http://[bad", "unknown"),
        ("", "unknown"),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host
