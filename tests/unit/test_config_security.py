"""Security settings: WEBHOOK_ALLOWED_CIDRS, custom headers, NATS credentials and TLS files.

Every refusal is one line naming the variable or YAML path, and never repeats a secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.tls import make_tls_files

from bridge.config.settings import Settings, load_settings, nats_tls_context
from bridge.config.values import ConfigError


def load_yaml(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings({"BRIDGE_CONFIG": str(path), **env})


def error_of(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def yaml_error_of(tmp_path: Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_yaml(tmp_path, text, **env)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- WEBHOOK_ALLOWED_CIDRS ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("10.1.0.0/16", ("10.1.0.0/16",)),
        (" 10.1.0.0/16 , fd00:1::/64,127.0.0.1 ", ("10.1.0.0/16", "fd00:1::/64", "127.0.0.1/32")),
        ("::1", ("::1/128",)),
    ],
)
def test_allowed_cidrs_from_env(value: str, expected: tuple[str, ...]) -> None:
    assert load_settings({"WEBHOOK_ALLOWED_CIDRS": value}).allowed_cidrs == expected


def test_allowed_cidrs_default_is_empty() -> None:
    assert load_settings({}).allowed_cidrs == ()


def test_allowed_cidrs_from_yaml_list_or_string(tmp_path: Path) -> None:
    listed = load_yaml(tmp_path, "webhook_allowed_cidrs: [10.1.0.0/16, 192.168.5.0/24]\n")
    assert listed.allowed_cidrs == ("10.1.0.0/16", "192.168.5.0/24")
    text = load_yaml(tmp_path, "webhook_allowed_cidrs: 10.1.0.0/16,192.168.5.0/24\n")
    assert text.allowed_cidrs == listed.allowed_cidrs


def test_env_allowed_cidrs_win_over_yaml(tmp_path: Path) -> None:
    settings = load_yaml(
        tmp_path, "webhook_allowed_cidrs: [10.1.0.0/16]\n", WEBHOOK_ALLOWED_CIDRS="10.9.0.0/16"
    )
    assert settings.allowed_cidrs == ("10.9.0.0/16",)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("banana", "'banana' is not a CIDR network"),
        ("10.0.0.1/8", "'10.0.0.1/8' is not a CIDR network (10.0.0.1/8 has host bits set)"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not a CIDR network"),
        ("10.0.0.0/8,nope", "'nope' is not a CIDR network"),
    ],
)
def test_invalid_allowed_cidrs_name_the_variable(value: str, fragment: str) -> None:
    message = error_of({"WEBHOOK_ALLOWED_CIDRS": value})
    assert message.startswith("WEBHOOK_ALLOWED_CIDRS: ")
    assert fragment in message


def test_invalid_yaml_allowed_cidrs_name_the_yaml_key(tmp_path: Path) -> None:
    message = yaml_error_of(tmp_path, "webhook_allowed_cidrs: [10.0.0.0/8, 300.1.1.1]\n")
    assert message.startswith("bridge.yaml: webhook_allowed_cidrs: '300.1.1.1' is not a CIDR")


# --- custom headers of named webhooks -----------------------------------------------------

ONE_HOOK = "webhooks:\n  - id: erp\n    url: https://erp.example.com/h\n"


@pytest.mark.parametrize(
    "header",
    [
        "{X-Greenlight-Signature: forged}",
        "{x-greenlight-event: job.completed}",
        "{X-GREENLIGHT-DELIVERY: dlv_x}",
        "{Webhook-Signature: 'v1,forged'}",
        "{WEBHOOK-TIMESTAMP: '1'}",
        "{Host: evil.example}",
        "{Content-Length: '0'}",
        "{Transfer-Encoding: chunked}",
        "{Connection: close}",
        "{Upgrade: websocket}",
        "{Expect: 100-continue}",
        "{Content-Encoding: gzip}",
        "{Proxy-Authorization: 'Basic eA=='}",
        "{User-Agent: spoofed}",
    ],
)
def test_headers_set_by_the_bridge_cannot_be_overridden(tmp_path: Path, header: str) -> None:
    message = yaml_error_of(tmp_path, ONE_HOOK + f"    headers: {header}\n")
    assert message.startswith("bridge.yaml: webhooks[0].headers: ")
    assert "set by the bridge and cannot be overridden" in message


@pytest.mark.parametrize(
    "header",
    [
        '{"X-Token\\r\\nX-Injected": a}',
        '{"X-Token\\n": a}',
        '{"X Token": a}',
        '{"X-Token:": a}',
        '{"": a}',
        '{"X-Tökén": a}',
    ],
)
def test_header_names_must_be_tokens(tmp_path: Path, header: str) -> None:
    message = yaml_error_of(tmp_path, ONE_HOOK + f"    headers: {header}\n")
    assert message.startswith("bridge.yaml: webhooks[0].headers: ")
    assert "is not a valid header name" in message


@pytest.mark.parametrize(
    "value",
    ['"a\\r\\nX-Injected: 1"', '"a\\rb"', '"a\\nb"', '"a\\0b"', '"a\\x1bb"', '"a\\x7fb"'],
)
def test_header_values_refuse_line_breaks_and_controls(tmp_path: Path, value: str) -> None:
    message = yaml_error_of(
        tmp_path, ONE_HOOK + "    headers: {X-Token: '${TOKEN}'}\n", TOKEN=_unescape(value)
    )
    assert message.startswith("bridge.yaml: webhooks[0].headers: X-Token: header values may not")
    assert "X-Injected" not in message  # the value may be a secret: never repeated


def _unescape(quoted: str) -> str:
    return quoted[1:-1].encode().decode("unicode_escape")


def test_header_values_may_hold_tabs_and_unicode(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, ONE_HOOK + '    headers: {X-Token: "a\\tb é"}\n')
    assert settings.webhooks[0].headers[0][1].reveal() == "a\tb é"


def test_url_credentials_and_an_authorization_header_conflict(tmp_path: Path) -> None:
    text = (
        "webhooks:\n  - id: erp\n    url: https://u:hunter2@erp.example.com/h\n"
        "    headers: {authorization: Bearer x}\n"
    )
    message = yaml_error_of(tmp_path, text)
    assert message == (
        "bridge.yaml: webhooks[0]: credentials in url and an Authorization header; give one"
    )


# --- per-webhook secrets ------------------------------------------------------------------


def test_malformed_whsec_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    message = yaml_error_of(
        tmp_path, ONE_HOOK + "    secrets: ['${NEW}', 'whsec_not*base64']\n", NEW="whsec_c2VjcmV0"
    )
    assert message.startswith("bridge.yaml: webhooks[0].secrets: a whsec_ secret must be base64")
    assert "not*base64" not in message


def test_bad_url_passwords_are_not_echoed() -> None:
    message = error_of({"DEFAULT_WEBHOOK_URLS": "ftp://user:hunter2@example.com/"})
    assert message.startswith("DEFAULT_WEBHOOK_URLS: ")
    assert "hunter2" not in message


# --- NATS credentials and TLS files -------------------------------------------------------


@pytest.mark.parametrize("variable", ["NATS_CREDS", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY"])
def test_missing_nats_files_are_refused_at_start(tmp_path: Path, variable: str) -> None:
    missing = tmp_path / "nope.pem"
    env = {variable: str(missing), "NATS_TLS_CERT": __file__, "NATS_TLS_KEY": __file__}
    env[variable] = str(missing)
    message = error_of(env)
    assert message == f"{variable}: cannot read {missing}: No such file or directory"


def test_tls_files_that_load_are_accepted(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path)
    creds = tmp_path / "bridge.creds"
    creds.write_text("not checked before connecting")
    env = {
        "NATS_TLS_CA": str(tls.ca),
        "NATS_TLS_CERT": str(tls.client_cert),
        "NATS_TLS_KEY": str(tls.client_key),
        "NATS_CREDS": str(creds),
    }
    settings = load_settings(env)
    assert (settings.nats_tls_ca, settings.nats_creds) == (str(tls.ca), str(creds))
    assert nats_tls_context(settings) is not None
    assert nats_tls_context(load_settings({})) is None


def test_a_ca_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate")
    assert error_of({"NATS_TLS_CA": str(junk)}).startswith("NATS_TLS_CA: not a PEM CA certificate")


def test_a_client_key_that_does_not_match_is_refused(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path)
    env = {"NATS_TLS_CERT": str(tls.client_cert), "NATS_TLS_KEY": str(tls.server_key)}
    assert error_of(env).startswith("NATS_TLS_CERT, NATS_TLS_KEY: cannot load: ")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NATS_TLS_CERT": __file__}, "NATS_TLS_KEY: required with NATS_TLS_CERT"),
        ({"NATS_TLS_KEY": __file__}, "NATS_TLS_CERT: required with NATS_TLS_KEY"),
        ({"NATS_PASSWORD": "hunter2"}, "NATS_USER: required with NATS_PASSWORD"),
    ],
)
def test_incomplete_nats_credentials_are_refused(env: dict[str, str], message: str) -> None:
    assert error_of(env) == message
