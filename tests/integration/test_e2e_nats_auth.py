"""NATS authorization and TLS against a real nats-server: the bridge connects, consumes and
delivers with the right credentials, and wrong ones give one clear line.

Scenarios: user/password, token, a `.creds` file (operator/account/user JWTs made in the
test, see harness.natsjwt), server TLS with our CA (`NATS_TLS_CA`), and mutual TLS with a
client certificate (`verify: true`). Certificates come from a throwaway CA (harness.tls).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from harness.bridge import TEST_SECRET, Bridges
from harness.nats import NatsServer
from harness.natsjwt import make_decentralised_auth
from harness.publish import job_event, publish_event
from harness.receiver import Receiver
from harness.signatures import greenlight_signature_valid
from harness.tls import make_tls_files
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

PASSWORD = "s3cret-nats-password"
TOKEN = "s3cret-nats-token"
# after "authorization violation", or after a reset that swallowed it
AUTH_HINT = "check NATS_CREDS, NATS_USER and NATS_PASSWORD, or NATS_TOKEN"


@dataclass(frozen=True)
class Scenario:
    """How the server is protected, and what a good and a bad client bring."""

    server_config: str
    client_options: dict[str, Any]
    good_env: dict[str, str]
    bad_env: dict[str, str]
    error: str  # in the one-line error a bad client gets
    scheme: str = "nats"
    secrets: tuple[str, ...] = field(default=())


def _user_password(_tmp: Path) -> Scenario:
    return Scenario(
        server_config=f'authorization {{ user: bridge, password: "{PASSWORD}" }}\n',
        client_options={"user": "bridge", "password": PASSWORD},
        good_env={"NATS_USER": "bridge", "NATS_PASSWORD": PASSWORD},
        bad_env={"NATS_USER": "bridge", "NATS_PASSWORD": "wrong-password"},
        error=AUTH_HINT,
        secrets=(PASSWORD, "wrong-password"),
    )


def _token(_tmp: Path) -> Scenario:
    return Scenario(
        server_config=f'authorization {{ token: "{TOKEN}" }}\n',
        client_options={"token": TOKEN},
        good_env={"NATS_TOKEN": TOKEN},
        bad_env={"NATS_TOKEN": "wrong-token"},
        error=AUTH_HINT,
        secrets=(TOKEN, "wrong-token"),
    )


def _creds(tmp: Path) -> Scenario:
    auth = make_decentralised_auth(tmp)
    return Scenario(
        server_config=auth.server_config,
        client_options={"user_credentials": str(auth.creds_path)},
        good_env={"NATS_CREDS": str(auth.creds_path)},
        bad_env={"NATS_CREDS": str(auth.stranger_creds_path)},
        error=AUTH_HINT,
    )


def _tls(tmp: Path) -> Scenario:
    tls = make_tls_files(tmp)
    return Scenario(
        server_config=f'tls {{ cert_file: "{tls.server_cert}", key_file: "{tls.server_key}" }}\n',
        client_options={"tls": ssl.create_default_context(cafile=str(tls.ca))},
        good_env={"NATS_TLS_CA": str(tls.ca)},
        bad_env={"NATS_TLS_CA": str(tls.other_ca)},
        error="TLS: certificate verify failed (check NATS_TLS_CA",
    )


def _mutual_tls(tmp: Path) -> Scenario:
    tls = make_tls_files(tmp)
    client = ssl.create_default_context(cafile=str(tls.ca))
    client.load_cert_chain(str(tls.client_cert), str(tls.client_key))
    good = {
        "NATS_TLS_CA": str(tls.ca),
        "NATS_TLS_CERT": str(tls.client_cert),
        "NATS_TLS_KEY": str(tls.client_key),
    }
    return Scenario(
        server_config=(
            f'tls {{ cert_file: "{tls.server_cert}", key_file: "{tls.server_key}", '
            f'ca_file: "{tls.ca}", verify: true }}\n'
        ),
        client_options={"tls": client},
        good_env=good,
        bad_env={"NATS_TLS_CA": str(tls.ca)},  # no client certificate
        error="certificate required (check NATS_TLS_CA",
        scheme="tls",
    )


SCENARIOS: dict[str, Callable[[Path], Scenario]] = {
    "user-password": _user_password,
    "token": _token,
    "creds": _creds,
    "tls": _tls,
    "mutual-tls": _mutual_tls,
}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Scenario:
    return SCENARIOS[request.param](tmp_path / "auth")


@pytest.fixture
async def nats_server(scenario: Scenario, tmp_path: Path) -> AsyncIterator[NatsServer]:
    """Replaces conftest's open server with a protected one."""
    server = NatsServer(
        store_dir=tmp_path / "nats-store",
        log_path=tmp_path / "nats-server.log",
        config=scenario.server_config,
        client_options=scenario.client_options,
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def js(nats_server: NatsServer, scenario: Scenario) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url, **scenario.client_options)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
def url(nats_server: NatsServer, scenario: Scenario) -> str:
    return nats_server.url.replace("nats://", f"{scenario.scheme}://", 1)


async def test_bridge_connects_consumes_and_delivers(
    scenario: Scenario, url: str, js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    env = {"NATS_URL": url, "DEFAULT_WEBHOOK_URLS": receiver.url("/hook"), **scenario.good_env}
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-auth"), "evt-auth")
    await bridges.wait_for(lambda: receiver.count("/hook") == 1, 20, "event not delivered")
    [request] = receiver.received("/hook")
    signature = request.headers["X-Greenlight-Signature"]
    assert greenlight_signature_valid(TEST_SECRET, request.body, signature)
    logs = bridge.stdout_text() + bridge.stderr_text()
    for secret in scenario.secrets:
        assert secret not in logs


async def test_wrong_credentials_fail_with_one_clear_line(
    scenario: Scenario, url: str, nats_server: NatsServer, bridges: Bridges
) -> None:
    result = await bridges.cli("dlq", "list", env={"NATS_URL": url, **scenario.bad_env})
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert scenario.error.lower() in lines[0].lower(), lines[0]
    assert "no servers available" not in lines[0]
    for secret in scenario.secrets:
        assert secret not in result.stderr + result.stdout


@pytest.mark.parametrize("scenario", ["user-password", "tls"], indirect=True)
async def test_a_running_bridge_with_wrong_credentials_says_why_and_stays_unready(
    nats_server: NatsServer, scenario: Scenario, url: str, bridges: Bridges
) -> None:
    bridge = bridges.new({"NATS_URL": url, **scenario.bad_env})
    await bridge.start()

    def said_why() -> bool:
        return any(
            scenario.error.lower() in str(record.get("error", "")).lower()
            for record in bridge.log_records()
        )

    await bridges.wait_for(said_why, 20, lambda: f"no clear error logged: {bridge.tail()}")
    status, _body = await bridge.get("/readyz")
    assert status == 503
    for secret in scenario.secrets:
        assert secret not in bridge.stdout_text() + bridge.stderr_text()
    assert await bridge.terminate() == 0
