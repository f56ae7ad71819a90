"""How a delivery's body goes on the wire: `raw` JSON, or a CloudEvent (SPEC §12).

`raw` sends the body as it is. `cloudevents` (structured mode) sends one JSON CloudEvent,
`application/cloudevents+json`, whose `data` is the body's JSON verbatim; `cloudevents-binary`
sends the body as it is and the attributes as `ce-*` headers, percent-encoded as the HTTP
binding requires. Attributes: specversion `1.0`, `id` the event id (stable across retries),
`type` the event name, `source` WEBHOOK_CE_SOURCE, `time` when the event was published,
`subject` the job id when there is one. Signatures are made over what this returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import msgspec

from bridge.config.webhooks import Format
from bridge.policy.tasks import DeliveryTask, timestamp

JSON = "application/json"
STRUCTURED = "application/cloudevents+json"
SPECVERSION = "1.0"
# printable ASCII but space, '"' and '%' stays as it is in a ce-* header (HTTP binding §3.1.3.2)
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
NO_HEADERS: Mapping[str, str] = {}  # a dict, not a MappingProxyType: spread per attempt


def framed(body_format: Format, task: DeliveryTask, source: str) -> tuple[bytes, Mapping[str, str]]:
    """The bytes to send and sign, and the headers that say how to read them (beside
    `Content-Type: application/json`, which they may replace). For `raw` the caller may skip
    the call: the body as it is, no headers."""
    if body_format == "raw":
        return task.body, NO_HEADERS
    attributes = _attributes(task, source)
    if body_format == "cloudevents":
        document = {**attributes, "datacontenttype": JSON, "data": msgspec.Raw(task.body)}
        return msgspec.json.encode(document), {"Content-Type": STRUCTURED}
    return task.body, {
        f"ce-{name}": quote(value, safe=_HEADER_SAFE) for name, value in attributes.items()
    }


def _attributes(task: DeliveryTask, source: str) -> dict[str, str]:
    attributes = {
        "specversion": SPECVERSION,
        "id": task.event_id,
        "source": source,
        "type": task.event,
        "time": timestamp(task.published_at_s),
    }
    return attributes if task.job_id is None else {**attributes, "subject": task.job_id}
