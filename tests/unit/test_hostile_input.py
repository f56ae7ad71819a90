"""Property tests: hostile bytes and values never get past the pure modules as exceptions.

Event decoding, routing, dead-letter records and the URL policy are fed arbitrary bytes,
deep nesting, huge strings, wrong types, unicode edge cases and duplicate keys. Each must
answer (an Event or an InvalidEvent, a Route, a record, a refusal) and never raise anything
else; sizes stay bounded by MAX_EVENT_BYTES and the dead-letter raw cut.

Example counts are modest so the suite stays fast (300 each, the same every run; see the
profiles in tests/conftest.py); `--hypothesis-show-statistics` prints what each produced.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bridge.config.secret import redact_url
from bridge.config.settings import load_settings
from bridge.config.view import redacted
from bridge.policy import dead_letter
from bridge.policy.events import Event, InvalidEvent, decode_event
from bridge.policy.routing import Router, is_url
from bridge.policy.urls import (
    MAX_URL_LENGTH,
    AddressPolicy,
    UrlRefused,
    check_url,
    forbidden_reason,
)

# Example counts come from the profile loaded in tests/conftest.py.
HOSTILE = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_BYTES = 4096
PREFIXES = (("greenlight", "events"),)
MAX_WEBHOOKS = 10
SUBJECT = "greenlight.events.job.completed"
ONE_MIB = 1024 * 1024

# Text that breaks naive code: controls, separators, surrogates escaped in JSON, RTL marks,
# zero-width and combining characters, astral planes.
EDGE_CHARS = st.sampled_from(
    [
        *("\x00", "\r", "\n", "\t", "\x7f", "\u2028", "\u202e", "\u200b", "\ufeff", "e\u0301"),
        *("😀", "\\ud800", '"', "\\", "/", "%00", "%0d%0a", "@", ":", "#", "?", "[", "]"),
    ]
)
TEXT = st.text(max_size=64) | st.lists(EDGE_CHARS, max_size=12).map("".join)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
URL_LIKE = st.builds(
    lambda scheme, userinfo, host, rest: f"{scheme}://{userinfo}{host}{rest}",
    st.sampled_from(["http", "https", "ftp", "file", "javascript", "HTTP", ""]),
    st.sampled_from(["", "user@", "user:hunter2@", ":hunter2@", "a:b:c@"]),
    st.sampled_from(
        [
            *("example.com", "127.0.0.1", "[::1]", "[::ffff:10.0.0.1]", "0x7f.1", "2130706433"),
            *("localhost", "metadata.google.internal", "169.254.169.254", "[fe80::1%25eth0]", ""),
            *("[]", "[::1]@", "a[]", "[::1]x", "[v1.x]", "\\evil.com", "example.com\uff0e"),
        ]
    ),
    TEXT,
)
WEBHOOK_FIELD = JSON_VALUES | URL_LIKE | st.lists(URL_LIKE | TEXT, max_size=5)


def decode(data: bytes, subject: str = SUBJECT) -> Event | InvalidEvent:
    return decode_event(
        data,
        subject=subject,
        event_id="evt-1",
        published_at_s=0.0,
        max_bytes=MAX_BYTES,
        prefixes=PREFIXES,
        max_webhooks=MAX_WEBHOOKS,
    )


def decode_unbounded(data: bytes) -> Event | InvalidEvent:
    """Deep nesting fits in few bytes; a large limit shows that size is not what stops it."""
    return decode_event(
        data,
        subject=SUBJECT,
        event_id="evt-1",
        published_at_s=0.0,
        max_bytes=64 * ONE_MIB,
        prefixes=PREFIXES,
        max_webhooks=MAX_WEBHOOKS,
    )


def tally(result: Event | InvalidEvent) -> None:
    """Count what hypothesis examples produced (shown by --hypothesis-show-statistics)."""
    event(f"decoded: {result.error.split(':')[0] if isinstance(result, InvalidEvent) else 'event'}")


def check_decoded(data: bytes, result: Event | InvalidEvent, max_bytes: int = MAX_BYTES) -> None:
    """What every answer of the decoder must satisfy, whatever went in."""
    if isinstance(result, InvalidEvent):
        assert result.raw == data
        assert result.error
        assert "\n" not in result.error
        return
    assert len(data) <= max_bytes
    assert 0 < len(result.name) <= 200
    assert not any(ord(c) < 32 for c in result.name)
    assert all(entry and entry == entry.strip() for entry in result.webhooks)
    assert len(set(result.webhooks)) == len(result.webhooks)
    body = msgspec.json.decode(result.body)
    assert isinstance(body, dict)
    assert "webhook" not in body


# --- event decoding -----------------------------------------------------------------------


@HOSTILE
@given(st.binary(max_size=2 * MAX_BYTES))
def test_arbitrary_bytes_decode_to_an_answer(data: bytes) -> None:
    result = decode(data)
    tally(result)
    check_decoded(data, result)


@HOSTILE
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "event": JSON_VALUES | TEXT,
            "job_id": JSON_VALUES,
            "tenant_id": JSON_VALUES,
            "webhook": WEBHOOK_FIELD,
            "payload": JSON_VALUES,
        },
    ),
    st.sampled_from([SUBJECT, "greenlight.events", "greenlight.events.\x00", "other.subject"]),
)
def test_json_objects_of_any_shape_decode_to_an_answer(
    fields: dict[str, Any], subject: str
) -> None:
    data = json.dumps(fields).encode()
    result = decode(data, subject)
    tally(result)
    check_decoded(data, result)
    if isinstance(result, Event):
        expected = {k: v for k, v in json.loads(data).items() if k != "webhook"}
        assert json.loads(result.body) == expected  # the body is the producer's, minus webhook


@HOSTILE
@given(
    st.lists(
        st.tuples(st.sampled_from(["event", "webhook", "job_id", "x"]), JSON_VALUES), max_size=8
    )
)
def test_duplicate_keys_decode_to_an_answer(pairs: list[tuple[str, Any]]) -> None:
    members = ",".join(f"{json.dumps(key)}:{json.dumps(value)}" for key, value in pairs)
    data = f"{{{members}}}".encode()
    result = decode(data)
    tally(result)
    check_decoded(data, result)


@HOSTILE
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", "{", '{"a":']))
def test_deep_nesting_decodes_to_an_answer(depth: int, opener: str) -> None:
    closer = {"[": "]", "{": "}", '{"a":': "}"}[opener]
    middle = "1" if opener != "{" else ""
    data = f'{{"event":"job.x","deep":{opener * depth}{middle}{closer * depth}}}'.encode()
    result = decode_unbounded(data)
    tally(result)
    check_decoded(data, result, max_bytes=64 * ONE_MIB)


@pytest.mark.parametrize("depth", [10, 500, 1_000, 10_000, 1_000_000])
@pytest.mark.parametrize("field", ["deep", "webhook", "job_id", "event"])
def test_deep_nesting_in_every_field(depth: int, field: str) -> None:
    data = f'{{"event":"job.x","{field}":{"[" * depth}{"]" * depth}}}'.encode()
    check_decoded(data, decode_unbounded(data), max_bytes=64 * ONE_MIB)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00",
        b'{"event":"\xff"}',
        b'{"\xff":1,"event":"a"}',
        b'{"event":"a","webhook":["\xc3"]}',
        b'{"event":"a","job_id":"\xed\xa0\x80"}',  # an encoded surrogate
        b'{"event":"\\ud800"}',
        b'{"event":"a\\u0000b"}',
        b'{"event":"a\\u2028b"}',
        b'{"event":1e999}',
        b'{"event":"a","job_id":1e999}',
        b'{"event":"a","job_id":123456789012345678901234567890}',
        b'{"event":"a","webhook":{"url":"http://x/"}}',
        b"\xef\xbb\xbf{}",  # a byte order mark
        b'{"event":"a"}' + b" " * (MAX_BYTES - 13),
        b'{"event":"a"}' + b" " * (MAX_BYTES - 12),
        b'{"event":"' + b"a" * (MAX_BYTES - 12) + b'"}',
        b"[" * MAX_BYTES,
        b'"' + b"\\" * (MAX_BYTES - 2) + b'"',
    ],
)
def test_explicit_hostile_events(data: bytes) -> None:
    check_decoded(data, decode(data))


# --- dead letters of invalid events stay small --------------------------------------------


@HOSTILE
@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=400_000))
def test_invalid_event_records_are_bounded(data: bytes, padding: int) -> None:
    raw = data + b"\xff" * padding  # not UTF-8: base64, the largest form
    record = dead_letter.from_invalid(InvalidEvent(id="e", subject=SUBJECT, error="x", raw=raw))
    assert len(dead_letter.encode(record)) < ONE_MIB
    assert record.raw_size == len(raw)


# --- routing ------------------------------------------------------------------------------

ROUTING_CONFIG = """
webhooks:
  - id: erp
    url: https://erp.example.com/hooks
    events: ["job.*"]
  - id: acme-only
    url: https://acme.example.com/hooks
    tenants: [acme]
"""


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    path: Path = tmp_path_factory.mktemp("routing") / "bridge.yaml"
    path.write_text(ROUTING_CONFIG, encoding="utf-8")
    env = {
        "BRIDGE_CONFIG": str(path),
        "DEFAULT_WEBHOOKS": "erp",
        "DEFAULT_WEBHOOK_URLS": "https://default.example.com/h",
    }
    return Router(load_settings(env))


ENTRIES = st.lists(URL_LIKE | TEXT | st.sampled_from(["erp", "acme-only", "nope"]), max_size=8)


@HOSTILE
@given(name=TEXT, tenant=st.none() | TEXT, entries=ENTRIES, remembered=ENTRIES)
def test_routing_any_event_gives_a_route(
    router: Router, name: str, tenant: str | None, entries: list[str], remembered: list[str]
) -> None:
    published = Event(
        id="evt-1",
        name=name,
        job_id="j",
        tenant_id=tenant,
        webhooks=tuple(entries),
        body=b"{}",
        published_at_s=0.0,
    )
    route = router.route(published, tuple(remembered))
    job_targets = any(target.source == "job" for target in route.targets)
    event(f"routed: per-job URLs {job_targets}, unknown ids {bool(route.unknown_ids)}")
    urls = [target.url for target in route.targets]
    assert len(urls) == len(set(urls))
    assert "https://default.example.com/h" in urls
    for target in route.targets:
        assert target.trusted == (target.source != "job")  # producer URLs are never trusted
        if target.source == "job":
            assert target.url in entries or target.url in remembered
    assert all(not is_url(unknown) for unknown in route.unknown_ids)
    assert set(route.unknown_ids) <= set(entries) | set(remembered)


# --- URL policy ---------------------------------------------------------------------------


@HOSTILE
@given(URL_LIKE | TEXT | st.text(min_size=2000, max_size=2100).map(lambda t: "https://a/" + t))
def test_check_url_refuses_or_accepts_never_raises_otherwise(url: str) -> None:
    reason = _refusal(url)
    event(f"check_url: {_reason_class(reason)}")
    if reason is not None:
        assert "hunter2" not in reason
        assert "\n" not in reason
        assert len(reason) < 300
        return
    assert len(url) <= MAX_URL_LENGTH
    assert url.split(":", 1)[0].lower() in ("http", "https")
    assert not any(c in url for c in "\r\n\t \x00")


def _reason_class(reason: str | None) -> str:
    if reason is None:
        return "accepted"
    if "characters long" in reason:
        return f"longer than {MAX_URL_LENGTH}"
    return reason.rsplit(": ", 1)[-1].split("'")[0].strip()


def _refusal(url: str) -> str | None:
    try:
        check_url(url, require_https=False)
    except UrlRefused as refused:
        return refused.reason
    return None


@HOSTILE
@given(URL_LIKE)
def test_redact_url_never_shows_the_password(url: str) -> None:
    assert "hunter2" not in redact_url(url).split("@")[0]


@HOSTILE
@given(st.ip_addresses())
def test_every_address_gets_a_verdict(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    reason = forbidden_reason(address)
    event(f"address v{address.version}: {reason or 'public'}")
    assert reason is None or reason.isascii()
    if isinstance(address, ipaddress.IPv4Address):
        mapped = ipaddress.IPv6Address(f"::ffff:{address}")
        nat64 = ipaddress.IPv6Address(f"64:ff9b::{address}")
        assert forbidden_reason(mapped) == reason  # wrapped forms are judged by what they reach
        assert forbidden_reason(nat64) == reason
        if address.is_private or address.is_loopback or address.is_link_local:
            assert reason is not None


@HOSTILE
@given(host=TEXT, address=TEXT | st.ip_addresses().map(str))
def test_vetting_any_resolver_answer_refuses_or_passes(host: str, address: str) -> None:
    policy = AddressPolicy(["10.1.0.0/16"])
    try:
        policy.vet(host, address)
    except UrlRefused as refused:
        event(f"vet: {refused.reason.rsplit(': ', 1)[-1].split(' address')[0]}")
        return
    event("vet: passed")
    assert forbidden_reason(ipaddress.ip_address(address)) in (None, "private")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:hunter2@h.example/x", "https://u:***@h.example/x"),
        (
            "https://alice@example.com:hunter2@hooks.example.com/x",
            "https://alice@example.com:***@hooks.example.com/x",
        ),
        ("https://a@b:hun@ter2@h.example/x", "https://a@b:***@h.example/x"),
        ("https://u:hunter2@h.example/p@q", "https://u:***@h.example/p@q"),
        ("https://h.example:8443/p@q:r", "https://h.example:8443/p@q:r"),
        ("https://token@h.example/x", "https://token@h.example/x"),
    ],
)
def test_redact_url_table(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_config_view_redacts_a_user_name_with_a_raw_at() -> None:
    url = "https://alice@example.com:hunter2@hooks.example.com/x"
    view = redacted(
        load_settings({"DEFAULT_WEBHOOK_URLS": url, "NATS_URL": "nats://u:hunter2@n:4222"})
    )
    assert "hunter2" not in repr(view)
