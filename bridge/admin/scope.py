"""What a tenant-scoped principal may see of the admin API's answers (SPEC §9 Roles).

Deliveries and dead letters: only its tenants' (`keep`, and `dlq.Filter.tenants`). Webhooks:
only those whose tenants all lie within its own, never an all-tenants one (a raw
DEFAULT_WEBHOOK_URLS URL serves every tenant). The effective configuration names every
webhook and tenant, so a scoped principal gets none of it. Endpoints: only its webhooks'.
Unscoped principals see it all.
"""

from __future__ import annotations

import msgspec

from bridge.admin.auth import Principal
from bridge.admin.responses import Endpoints, Webhooks
from bridge.delivery.slots import origin_of
from bridge.jetstream.delivery_log import Entry, Keep
from bridge.policy.routing import Router


def keep(who: Principal) -> Keep:
    """The delivery log entries `who` may see."""

    def visible(entry: Entry) -> bool:
        return who.sees_tenant(entry.tenant_id)

    return visible


def webhooks(answer: Webhooks, who: Principal) -> Webhooks:
    """`GET /webhooks` as `who` may see it (its recent attempts are already kept by `keep`)."""
    if not who.scoped:
        return answer
    shown = tuple(
        hook for hook in answer.webhooks if hook.source != "env" and who.sees_webhook(hook.tenants)
    )
    return msgspec.structs.replace(answer, config={}, webhooks=shown)


def endpoints(answer: Endpoints, who: Principal, router: Router) -> Endpoints:
    """`GET /endpoints` as `who` may see it: only the origins of the webhooks it sees (a
    per-job URL's host is another tenant's business)."""
    if not who.scoped:
        return answer
    mine = {origin_of(h.url) for h in router.webhooks() if who.sees_webhook(h.tenants)}
    shown = tuple(status for status in answer.endpoints if status.endpoint in mine)
    return Endpoints(shown)
