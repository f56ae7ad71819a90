"""A plain delivery task for tests that need one and care only about its URL and identity."""

from __future__ import annotations

from bridge.policy.routing import Target
from bridge.policy.tasks import DeliveryTask


def plain_task(url: str, index: int) -> DeliveryTask:
    """Task `index` to `url`: an unordered first attempt of an event without a job."""
    return DeliveryTask(
        delivery_id=f"d{index}-{url}",
        event_id=f"e{index}",
        event="job.done",
        job_id=None,
        tenant_id=None,
        target=Target(url, "ep", "default"),
        body=b"{}",
        published_at_s=1.0,
    )
