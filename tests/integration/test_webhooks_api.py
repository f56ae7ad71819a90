"""Webhooks as data (SPEC §9), end to end: real `webhook-bridge run` replicas on one
nats-server, an aiohttp receiver, the admin API over HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from harness.bridge import Answer, BridgeProcess, Bridges
from harness.metrics import metric_total
from harness.publish import job_event, publish_event, publish_events_async, read_dead_letters
from harness.receiver import Receiver
from harness.signatures import greenlight_signature_valid
from nats.js import JetStreamContext
from standardwebhooks import Webhook, WebhookVerificationError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = "webhooks-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"ADMIN_TOKEN": TOKEN, "WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
SECRET = "whsec_" + base64.b64encode(b"a-secret-of-32-bytes-for-tests!!").decode()


async def create(bridge: BridgeProcess, **fields: Any) -> Answer:
    return await bridge.call("POST", "/webhooks", fields, AUTH)


async def listed(bridge: BridgeProcess, webhook_id: str) -> dict[str, Any] | None:
    """The webhook as this replica routes it (GET /webhooks shows the router's view)."""
    _status, text = await bridge.get("/webhooks", AUTH)
    found = [w for w in json.loads(text)["webhooks"] if w["id"] == webhook_id]
    return found[0] if found else None


def standard_valid(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


async def delivered_to(bridge: BridgeProcess, endpoint: str) -> float:
    _status, text = await bridge.get("/metrics")
    lines = [line for line in text.splitlines() if f'endpoint="{endpoint}"' in line]
    return metric_total("\n".join(lines), "webhook_bridge_deliveries_total")


async def test_created_on_one_replica_delivered_by_both_and_paused_from_the_other(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    env = {**ENV, "WEBHOOK_CONCURRENCY": "4", "DEFAULT_WEBHOOK_URLS": receiver.url("/control")}
    one, two = await bridges.start(env), await bridges.start(env)
    answer = await create(one, id="crm", url=receiver.url("/crm"), scope="global")
    assert answer.status == 201, answer.text
    assert answer.headers["Location"] == "/webhooks/crm"
    assert answer.json()["secret"].startswith("whsec_")  # generated, shown once
    await bridges.wait_for(lambda: _known(two, "crm"), 10, "the other replica never saw it")

    events = [(f"evt-{i}", job_event("job.completed", f"job-{i}")) for i in range(300)]
    await publish_events_async(js, events)
    await bridges.wait_for(lambda: receiver.count("/crm") >= 300, 60, "not all delivered")
    assert await delivered_to(one, "crm") > 0
    assert await delivered_to(two, "crm") > 0

    paused = await two.call("PATCH", "/webhooks/crm", {"active": False}, AUTH)
    assert paused.status == 200
    assert paused.json()["active"] is False
    await bridges.wait_for(lambda: _inactive(one, "crm"), 10, "replica one still routes it")
    before = receiver.count("/crm")
    more = [(f"evt-late-{i}", job_event("job.completed", f"late-{i}")) for i in range(50)]
    await publish_events_async(js, more)
    await bridges.wait_for(lambda: receiver.count("/control") >= 350, 60, "control missing")
    assert receiver.count("/crm") == before


async def _known(bridge: BridgeProcess, webhook_id: str) -> bool:
    return await listed(bridge, webhook_id) is not None


async def _inactive(bridge: BridgeProcess, webhook_id: str) -> bool:
    found = await listed(bridge, webhook_id)
    return found is not None and found["active"] is False


async def test_stale_if_match_configured_webhooks_and_field_errors(
    receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(f"webhooks:\n  - id: erp\n    url: {receiver.url('/erp')}\n")
    bridge = await bridges.start({**ENV, "BRIDGE_CONFIG": str(config)})
    created = await create(bridge, id="crm", url=receiver.url("/crm"), secret=SECRET)
    assert created.status == 201, created.text
    etag = created.headers["ETag"]
    assert "secret" not in created.json()  # given, so never shown
    first = await bridge.call("PATCH", "/webhooks/crm", {"description": "v2"}, AUTH)
    assert first.status == 200
    assert first.headers["ETag"] != etag
    stale = await bridge.call(
        "PATCH", "/webhooks/crm", {"active": False}, {**AUTH, "If-Match": etag}
    )
    assert stale.status == 412
    fresh = {**AUTH, "If-Match": first.headers["ETag"]}
    assert (await bridge.call("PATCH", "/webhooks/crm", {"active": False}, fresh)).status == 200

    for method, path in [("PATCH", "/webhooks/erp"), ("DELETE", "/webhooks/erp")]:
        assert (await bridge.call(method, path, {"active": False}, AUTH)).status == 409
    assert (await bridge.call("POST", "/webhooks/erp/secret/rotate", None, AUTH)).status == 409
    assert (await create(bridge, id="erp", url=receiver.url("/x"))).status == 409
    assert (await create(bridge, id="crm", url=receiver.url("/x"))).status == 409
    nulls = await create(bridge, id="nulls", url=receiver.url("/n"), secret=None, events=None)
    assert nulls.status == 201, nulls.text  # null is absent: the secret is generated
    assert nulls.json()["secret"].startswith("whsec_")

    for fields, named in [
        ({"id": "x", "url": receiver.url("/x"), "colour": "red"}, "colour"),
        ({"id": "x", "url": "ftp://example.com/"}, "url"),
        ({"id": "x", "url": receiver.url("/x"), "transform": "{a: "}, "transform"),
        ({"id": "x", "url": receiver.url("/x"), "scope": "sometimes"}, "scope"),
        ({"id": "bad id", "url": receiver.url("/x")}, "id"),
        ({"id": "x", "url": receiver.url("/x"), "rate_limit": -1}, "rate_limit"),
    ]:
        refused = await create(bridge, **fields)
        assert refused.status == 400, fields
        error = refused.json()["error"]
        assert error.startswith(f"{named}:"), error
        assert "\n" not in error
    assert (await bridge.call("DELETE", "/webhooks/crm", None, AUTH)).status == 204
    assert (await bridge.call("GET", "/webhooks/crm", None, AUTH)).status == 404


async def test_api_urls_pass_the_ssrf_guard_at_create_time(
    receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start({"ADMIN_TOKEN": TOKEN})  # private URLs not allowed
    for url in (receiver.url("/x"), "http://localhost:9/x", "http://[::1]:9/x"):
        refused = await create(bridge, id="x", url=url)
        assert refused.status == 400, url
        assert refused.json()["error"].startswith("url:"), url


async def test_the_transform_output_is_exactly_what_is_signed_and_sent(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start(ENV)
    transform = "{job: job_id, state: status, tenant: tenant_id}"
    fields = {"scope": "global", "secret": SECRET, "transform": transform}
    assert (await create(bridge, id="bi", url=receiver.url("/bi"), **fields)).status == 201
    await publish_event(js, {**job_event("job.completed", "j-7"), "status": "success"}, "e-7")
    await bridges.wait_for(lambda: receiver.count("/bi") >= 1, 15, "nothing delivered")
    (request,) = receiver.received("/bi")
    assert request.body == b'{"job":"j-7","state":"success","tenant":"acme"}'
    assert standard_valid(SECRET, request.body, request.header_dict())
    signature = request.headers["X-Greenlight-Signature"]
    assert greenlight_signature_valid(SECRET, request.body, signature)  # the secret as given


async def test_a_transform_that_fails_on_an_event_dead_letters_that_delivery(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start(ENV)
    fields = {"scope": "global", "transform": "abs(job_id)"}
    assert (await create(bridge, id="broken", url=receiver.url("/b"), **fields)).status == 201
    await publish_event(js, job_event("job.completed", "j-8"), "e-8")
    await bridges.wait_for(lambda: _has_letters(js), 15, "no dead letter")
    (letter,) = await read_dead_letters(js)
    assert letter.body["reason"] == "transform_error"
    assert letter.body["endpoint"]["id"] == "broken"
    assert "abs" in letter.body["error"]
    assert receiver.count("/b") == 0


async def _has_letters(js: JetStreamContext) -> bool:
    return bool(await read_dead_letters(js))


async def test_rotation_signs_with_both_secrets_during_the_grace_period_only(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start({**ENV, "WEBHOOK_SECRET_ROTATION_GRACE": "3s"})
    hook = {"scope": "global", "secret": SECRET}
    assert (await create(bridge, id="erp", url=receiver.url("/erp"), **hook)).status == 201
    rotated = await bridge.call("POST", "/webhooks/erp/secret/rotate", None, AUTH)
    assert rotated.status == 200, rotated.text
    new = rotated.json()["secret"]
    await publish_event(js, job_event("job.completed", "j-1"), "e-1")
    await bridges.wait_for(lambda: receiver.count("/erp") >= 1, 15, "nothing delivered")
    during = receiver.received("/erp")[0]
    assert standard_valid(new, during.body, during.header_dict())
    assert standard_valid(SECRET, during.body, during.header_dict())
    assert len(during.headers["webhook-signature"].split()) == 2

    await bridges.wait_for(lambda: _grace_over(bridge, "erp"), 15, "the grace never ended")
    await publish_event(js, job_event("job.completed", "j-2"), "e-2")
    await bridges.wait_for(lambda: receiver.count("/erp") >= 2, 15, "nothing delivered")
    after = receiver.received("/erp")[1]
    assert standard_valid(new, after.body, after.header_dict())
    assert not standard_valid(SECRET, after.body, after.header_dict())


async def _grace_over(bridge: BridgeProcess, webhook_id: str) -> bool:
    shown = await bridge.call("GET", f"/webhooks/{webhook_id}", None, AUTH)
    return shown.json()["previous_secret_until"] is None


async def test_test_send_answers_the_error_and_makes_no_retry(
    receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/down", 500)
    bridge = await bridges.start(ENV)
    assert (await create(bridge, id="down", url=receiver.url("/down"))).status == 201
    tested = await bridge.call("POST", "/webhooks/down/test", None, AUTH)
    assert tested.status == 200
    answer = tested.json()
    assert answer["status"] == "error"
    assert answer["status_code"] == 500
    assert answer["message"] == "unexpected status code: 500"
    (sent,) = receiver.received("/down")
    assert sent.json()["event"] == "webhook.test"
    assert sent.json()["webhook_id"] == "down"
    await bridges.stays_true(lambda: receiver.count("/down") == 1, 3, "the test was retried")
    shown = (await bridge.call("GET", "/webhooks/down", None, AUTH)).json()
    assert [a["result"] for a in shown["attempts"]] == ["tested"]
    assert shown["status"] == "error"


async def test_a_replica_started_after_100_changes_sees_the_final_state(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    first = await bridges.start(ENV)
    assert (await create(first, id="crm", url=receiver.url("/crm"), scope="global")).status == 201
    for i in range(100):
        change = {"description": f"change {i}", "active": i % 2 == 1}
        assert (await first.call("PATCH", "/webhooks/crm", change, AUTH)).status == 200
    final = (await first.call("GET", "/webhooks/crm", None, AUTH)).json()
    late = await bridges.start(ENV)
    seen = await listed(late, "crm")
    assert seen is not None
    assert seen["revision"] == final["revision"]
    assert seen["active"] is True
    await publish_event(js, job_event("job.completed", "j-1"), "e-1")
    await bridges.wait_for(lambda: receiver.count("/crm") >= 1, 15, "the final state not used")


async def test_a_kv_outage_keeps_the_last_known_webhooks_and_readyz_says_so(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start(ENV)
    assert (await create(bridge, id="crm", url=receiver.url("/crm"), scope="global")).status == 201
    assert json.loads((await bridge.get("/readyz"))[1])["webhooks"] == "live"
    await js.delete_stream("KV_webhook-bridge-webhooks")
    await bridges.wait_for(lambda: _readyz_says(bridge, "stale"), 30, "readyz never said stale")
    await publish_event(js, job_event("job.completed", "j-1"), "e-1")
    await bridges.wait_for(lambda: receiver.count("/crm") >= 1, 15, "the last known one failed")
    assert (await bridge.get("/readyz"))[0] == 200


async def _readyz_says(bridge: BridgeProcess, state: str) -> bool:
    return json.loads((await bridge.get("/readyz"))[1]).get("webhooks") == state


async def test_answers_match_the_openapi_document(receiver: Receiver, bridges: Bridges) -> None:
    bridge = await bridges.start(ENV)
    document = json.loads((await bridge.get("/openapi.json"))[1])
    created = await create(bridge, id="crm", url=receiver.url("/crm"), events=["job.*"])
    shown = await bridge.call("GET", "/webhooks/crm", None, AUTH)
    rotated = await bridge.call("POST", "/webhooks/crm/secret/rotate", None, AUTH)
    for answer, name in [
        (created, "WebhookDetail"),
        (shown, "WebhookDetail"),
        (rotated, "Rotated"),
    ]:
        schema = {"$ref": f"#/components/schemas/{name}", **document}
        jsonschema.validate(answer.json(), schema)


async def test_a_dead_letter_of_an_api_webhook_is_replayed_by_the_cli(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/erp", 500)
    bridge = await bridges.start(ENV)
    hook = {"scope": "global", "max_retry": 0, "secret": SECRET}
    assert (await create(bridge, id="erp", url=receiver.url("/erp"), **hook)).status == 201
    await publish_event(js, job_event("job.completed", "j-1"), "e-1")
    await bridges.wait_for(lambda: _has_letters(js), 15, "max_retry 0 made no dead letter")
    assert receiver.count("/erp") == 1  # the webhook's own max_retry, not WEBHOOK_MAX_RETRY
    receiver.reply("/erp", 200)
    replayed = await bridges.cli("dlq", "replay", env=ENV)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1" in replayed.stdout
    await bridges.wait_for(lambda: receiver.count("/erp") >= 2, 15, "not replayed")
    again = receiver.received("/erp")[1]
    assert standard_valid(SECRET, again.body, again.header_dict())  # its own secret


async def test_the_audit_trail_records_each_action_and_no_secret(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start(ENV)
    header_value = "Bearer header-secret-value"
    hook = {"secret": SECRET, "headers": {"Authorization": header_value}}
    assert (await create(bridge, id="erp", url=receiver.url("/erp"), **hook)).status == 201
    assert (await bridge.call("PATCH", "/webhooks/erp", {"description": "v2"}, AUTH)).status == 200
    rotated = await bridge.call("POST", "/webhooks/erp/secret/rotate", None, AUTH)
    assert (await bridge.call("POST", "/webhooks/erp/test", None, AUTH)).status == 200
    assert (await bridge.call("DELETE", "/webhooks/erp", None, AUTH)).status == 204
    generated = await create(bridge, id="bi", url=receiver.url("/bi"))

    trail = json.loads((await bridge.get("/audit?webhook=erp", AUTH))[1])["audit"]
    assert [r["action"] for r in trail] == ["create", "update", "rotate", "test", "delete"]
    assert {r["actor"] for r in trail} == {"admin"}
    assert trail[0]["change"]["secret"] == "***"
    assert trail[0]["change"]["headers"] == {"Authorization": "***"}
    assert trail[3]["change"]["status"] == "success"
    secrets = (SECRET, header_value, rotated.json()["secret"], generated.json()["secret"], TOKEN)
    raw = await _raw_audit(js)
    assert len(raw) == 6
    assert not [s for s in secrets if any(s.encode() in record for record in raw)]
    logs = bridge.stdout_text() + bridge.stderr_text()
    assert not [s for s in secrets if s in logs], "a secret in the bridge's log"
    listed = (await bridge.get("/webhooks", AUTH))[1] + (await bridge.get("/webhooks/bi", AUTH))[1]
    assert not [s for s in secrets if s in listed], "a secret in an answer"
    metrics = (await bridge.get("/metrics"))[1]
    assert 'webhook_bridge_config_changes_total{action="create"} 2.0' in metrics


async def _raw_audit(js: JetStreamContext) -> list[bytes]:
    state = (await js.stream_info("GREENLIGHT_WEBHOOKS_AUDIT")).state
    return [
        (await js.get_msg("GREENLIGHT_WEBHOOKS_AUDIT", seq)).data or b""
        for seq in range(state.first_seq, state.last_seq + 1)
    ]
