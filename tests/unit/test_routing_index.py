"""The router's index of global webhooks against a brute-force reference: every webhook's
`events` globs and `tenants` checked one by one, for random webhooks and events."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.config.settings import load_settings
from bridge.config.webhooks import NamedWebhook
from bridge.policy.events import Event
from bridge.policy.routing import Router

NAMES = ["job.queued", "job.completed", "job.failed", "approval.rejected", "a.b.c", "job"]
PATTERNS = [*NAMES, "job.*", "*", "*.completed", "job.?ailed", "[ab]*", "a.*.c", "nothing"]
TENANTS = ["acme", "globex", "initech"]

webhooks = st.builds(
    NamedWebhook,
    id=st.uuids().map(lambda u: f"wh_{u.hex[:12]}"),
    url=st.uuids().map(lambda u: f"https://{u.hex[:8]}.example.com/hooks"),
    events=st.lists(st.sampled_from(PATTERNS), max_size=3).map(tuple),
    tenants=st.lists(st.sampled_from(TENANTS), max_size=2).map(tuple),
    active=st.booleans(),
    scope=st.sampled_from(["global", "on_demand"]),
    source=st.just("api"),
)
events = st.builds(
    lambda name, tenant: Event("e-1", name, "j-1", tenant, (), b"{}", 0.0),
    st.sampled_from(NAMES),
    st.sampled_from([*TENANTS, None]),
)


def reference(hooks: list[NamedWebhook], event: Event) -> set[str]:
    """What a scan of every webhook would pick."""
    return {
        hook.id
        for hook in hooks
        if hook.scope == "global"
        and hook.active
        and (not hook.events or any(fnmatchcase(event.name, p) for p in hook.events))
        and (not hook.tenants or event.tenant_id in hook.tenants)
    }


@settings(max_examples=300, deadline=None)
@given(
    st.lists(webhooks, max_size=30, unique_by=lambda hook: hook.id),
    st.lists(events, min_size=1, max_size=8),
)
def test_index_picks_what_a_scan_of_every_webhook_picks(
    hooks: list[NamedWebhook], batch: list[Event]
) -> None:
    router = Router(load_settings({}))
    router.replace_api(hooks)
    for event in batch:
        picked = {t.webhook_id for t in router.route(event).targets}
        assert picked == reference(hooks, event)


def test_a_replacement_forgets_the_cached_routes() -> None:
    router = Router(load_settings({}))
    hook = NamedWebhook(id="x", url="https://x.example.com/", scope="global", source="api")
    event = Event("e-1", "job.completed", "j-1", "acme", (), b"{}", 0.0)
    router.replace_api([hook])
    assert [t.webhook_id for t in router.route(event).targets] == ["x"]
    router.replace_api([])
    assert router.route(event).targets == ()


def test_api_webhooks_are_vetted_like_per_job_urls() -> None:
    router = Router(load_settings({}))
    router.replace_api([NamedWebhook(id="x", url="https://x.example.com/", source="api")])
    event = Event("e-1", "job.completed", "j-1", None, ("x",), b"{}", 0.0)
    (target,) = router.route(event).targets
    assert target.trusted is False


def test_a_webhook_with_more_name_tenant_pairs_than_the_index_takes_still_routes() -> None:
    names = tuple(f"job.e{i}" for i in range(10))
    tenants = tuple(f"t{i}" for i in range(10))  # 100 pairs: indexed by name only
    wide = NamedWebhook(
        id="wide", url="https://w.example.com/", events=names, tenants=tenants, scope="global"
    )
    router = Router(load_settings({}))
    router.replace_api([wide])

    def picked(name: str, tenant: str | None) -> list[str | None]:
        event = Event("e-1", name, "j-1", tenant, (), b"{}", 0.0)
        return [t.webhook_id for t in router.route(event).targets]

    assert picked("job.e3", "t7") == ["wide"]
    assert picked("job.e3", "other") == []
    assert picked("job.e3", None) == []
    assert picked("job.e10", "t7") == []
