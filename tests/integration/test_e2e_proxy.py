"""The egress proxy, end to end: every delivery passes through a real forward proxy on
loopback (absolute form for http, CONNECT for https), and a proxy that refuses fails the
attempts without its credentials ever showing."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.bridge import Bridges
from harness.proxy import ForwardProxy
from harness.publish import has_dead_letters, job_event, publish_event, read_dead_letters
from harness.receiver import Receiver
from harness.tls import make_tls_files
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

USER, PASSWORD = "bridge", "pr0xy-Pa55word"


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    server = ForwardProxy(credentials=(USER, PASSWORD))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def https_receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    """An HTTPS receiver whose certificate the test CA (`_ca`) signed."""
    server = Receiver(tls=make_tls_files(tmp_path / "tls").server_context())
    await server.start()
    yield server
    await server.stop()


def _ca(tmp_path: Path) -> str:
    return str(tmp_path / "tls" / "ca.pem")


def _through(proxy: ForwardProxy, receiver: Receiver) -> bool:
    """Every request the receiver got came on a connection the proxy opened."""
    return all(r.peer_port in proxy.upstream_ports for r in receiver.received())


async def test_http_deliveries_go_through_the_proxy_on_one_keep_alive_connection(
    js: JetStreamContext, receiver: Receiver, proxy: ForwardProxy, bridges: Bridges
) -> None:
    env = {
        "DEFAULT_WEBHOOK_URLS": receiver.url("/p"),
        "WEBHOOK_PROXY_URL": proxy.url(USER, PASSWORD),
    }
    await bridges.start(env)
    for n in range(3):
        await publish_event(js, job_event("job.completed", f"j-{n}"), f"evt-proxy-{n}")
        await bridges.wait_for(lambda n=n: receiver.count("/p") > n, 20, "delivered via proxy")

    assert _through(proxy, receiver)
    assert [p.target for p in proxy.forwarded()] == [receiver.url("/p")] * 3
    assert all(p.allowed for p in proxy.seen)
    assert proxy.connections == 1, "the connection to the proxy is kept alive"
    assert not any("Proxy-Authorization" in r.headers for r in receiver.received())


async def test_https_deliveries_tunnel_with_connect_and_verify_the_target_name(
    js: JetStreamContext,
    https_receiver: Receiver,
    proxy: ForwardProxy,
    bridges: Bridges,
    tmp_path: Path,
) -> None:
    url = https_receiver.url("/s", host="localhost")  # resolved by the proxy, checked by TLS
    env = {
        "DEFAULT_WEBHOOK_URLS": url,
        "WEBHOOK_PROXY_URL": proxy.url(USER, PASSWORD),
        "SSL_CERT_FILE": _ca(tmp_path),
    }
    await bridges.start(env)
    for n in range(2):
        await publish_event(js, job_event("job.completed", f"j-tls-{n}"), f"evt-proxy-tls-{n}")
        await bridges.wait_for(
            lambda n=n: https_receiver.count("/s") > n, 20, "delivered via the tunnel"
        )

    assert _through(proxy, https_receiver)
    assert [(t.target, t.allowed) for t in proxy.tunnels()] == [
        (f"localhost:{https_receiver.port}", True)
    ], "one tunnel, kept alive for the second delivery"
    assert not any("Proxy-Authorization" in r.headers for r in https_receiver.received())


async def test_wrong_credentials_fail_every_attempt_and_never_show(
    js: JetStreamContext,
    https_receiver: Receiver,
    proxy: ForwardProxy,
    bridges: Bridges,
    tmp_path: Path,
) -> None:
    wrong = "wr0ng-Secret-pw"
    # the proxy refuses before any target is reached: an http URL needs no receiver
    urls = f"http://127.0.0.1:{https_receiver.port}/h,{https_receiver.url('/t')}"
    env = {
        "DEFAULT_WEBHOOK_URLS": urls,
        "WEBHOOK_PROXY_URL": proxy.url(USER, wrong),
        "WEBHOOK_MAX_RETRY": "1",
        "SSL_CERT_FILE": _ca(tmp_path),
    }
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-denied"), "evt-proxy-denied")
    await bridges.wait_for(has_dead_letters(js, 2), 20, "both deliveries dead-lettered")

    letters = await read_dead_letters(js)
    errors = [a["error"] for letter in letters for a in letter.body["attempts"]]
    endpoint = f"proxy 127.0.0.1:{proxy.port} refused"
    assert len(errors) == 4
    assert all(error.startswith(endpoint) and "407" in error for error in errors), errors
    assert any("CONNECT localhost" not in e and "CONNECT 127.0.0.1" in e for e in errors)
    assert https_receiver.count() == 0
    assert not any(p.allowed for p in proxy.seen)
    exposed = json.dumps([letter.body for letter in letters]) + bridge.stderr_text()
    exposed += bridge.stdout_text() + (await bridges.cli("config", "check", env=env)).stdout
    exposed += (await bridge.get("/webhooks"))[1]
    encoded = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    assert wrong not in exposed
    assert encoded not in exposed
    assert f"http://***@127.0.0.1:{proxy.port}" in exposed  # the start-up line's settings
