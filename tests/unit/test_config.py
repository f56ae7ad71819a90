"""Settings from env and YAML: defaults, durations, error messages, interpolation, redaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.config.secret import Secret
from bridge.config.settings import NamedWebhook, Settings, load_settings
from bridge.config.values import ConfigError


def write_yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_yaml(tmp_path: Path, text: str, **env: str) -> Settings:
    return load_settings({"BRIDGE_CONFIG": write_yaml(tmp_path, text), **env})


def error_of(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return str(caught.value)


def yaml_error_of(tmp_path: Path, text: str, **env: str) -> str:
    return error_of({"BRIDGE_CONFIG": write_yaml(tmp_path, text), **env})


# --- defaults and values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("timeout_s", 15.0),
        ("max_retry", 4),
        ("retry_min_wait_s", 1.0),
        ("retry_max_wait_s", 30.0),
        ("concurrency", 256),
        ("endpoint_concurrency", 16),
        ("http_host", "0.0.0.0"),
        ("http_port", 8080),
        ("nats_urls", ("nats://127.0.0.1:4222",)),
        ("nats_stream", "GREENLIGHT_EVENTS"),
        ("nats_subjects", ("greenlight.events.>",)),
        ("nats_durable", "webhook-bridge"),
        ("nats_replicas", 1),
        ("nats_password", None),
        ("nats_token", None),
        ("dlq_stream", "GREENLIGHT_WEBHOOKS_DLQ"),
        ("dlq_max_age_s", 14 * 86400.0),
        ("delivery_log_stream", "GREENLIGHT_WEBHOOKS_LOG"),
        ("delivery_log_max_age_s", 7 * 86400.0),
        ("max_event_bytes", 1048576),
        ("default_webhooks", ()),
        ("default_webhook_urls", ()),
        ("webhooks", ()),
        ("allow_private_urls", False),
        ("require_https", False),
        ("admin_token", None),
        ("log_level", "info"),
        ("log_format", "json"),
        ("config_path", None),
    ],
)
def test_defaults(field: str, expected: Any) -> None:
    assert getattr(load_settings({}), field) == expected


def test_default_secret() -> None:
    settings = load_settings({})
    assert settings.secret.reveal() == "secret"
    assert settings.secret_is_default


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("15s", 15.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        ("2.5", 2.5),
        ("10", 10.0),
        (" 3s ", 3.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert load_settings({"WEBHOOK_TIMEOUT": text}).timeout_s == seconds


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"WEBHOOK_MAX_RETRY": "0"}, "max_retry", 0),
        ({"HTTP_PORT": "0"}, "http_port", 0),
        ({"LOG_LEVEL": "DEBUG"}, "log_level", "debug"),
        ({"LOG_FORMAT": "console"}, "log_format", "console"),
        ({"WEBHOOK_ALLOW_PRIVATE_URLS": "yes"}, "allow_private_urls", True),
        ({"WEBHOOK_ALLOW_PRIVATE_URLS": "0"}, "allow_private_urls", False),
        ({"NATS_REPLICAS": "3"}, "nats_replicas", 3),
        ({"NATS_REPLICAS": "5"}, "nats_replicas", 5),
        (
            {"NATS_URL": "nats://a:4222, tls://b:4222"},
            "nats_urls",
            ("nats://a:4222", "tls://b:4222"),
        ),
        (
            {"DEFAULT_WEBHOOK_URLS": "https://a.example/h,,https://b.example/h"},
            "default_webhook_urls",
            ("https://a.example/h", "https://b.example/h"),
        ),
        ({"WEBHOOK_RETRY_MIN_WAIT": "30s"}, "retry_min_wait_s", 30.0),  # equal to max is fine
    ],
)
def test_env_values(env: dict[str, str], field: str, expected: Any) -> None:
    assert getattr(load_settings(env), field) == expected


# --- bad values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WEBHOOK_TIMEOUT": "abc"}, "WEBHOOK_TIMEOUT"),
        ({"WEBHOOK_TIMEOUT": "0"}, "WEBHOOK_TIMEOUT"),
        ({"WEBHOOK_TIMEOUT": "-1s"}, "WEBHOOK_TIMEOUT"),
        ({"WEBHOOK_TIMEOUT": ""}, "WEBHOOK_TIMEOUT"),
        ({"WEBHOOK_MAX_RETRY": "-1"}, "WEBHOOK_MAX_RETRY"),
        ({"WEBHOOK_MAX_RETRY": "x"}, "WEBHOOK_MAX_RETRY"),
        ({"WEBHOOK_CONCURRENCY": "0"}, "WEBHOOK_CONCURRENCY"),
        ({"MAX_EVENT_BYTES": "10"}, "MAX_EVENT_BYTES"),
        ({"HTTP_PORT": "70000"}, "HTTP_PORT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"WEBHOOK_ALLOW_PRIVATE_URLS": "maybe"}, "WEBHOOK_ALLOW_PRIVATE_URLS"),
        ({"NATS_URL": "http://x"}, "NATS_URL"),
        ({"NATS_URL": ""}, "NATS_URL"),
        ({"NATS_STREAM": "has space"}, "NATS_STREAM"),
        ({"NATS_REPLICAS": "0"}, "NATS_REPLICAS"),
        ({"NATS_REPLICAS": "6"}, "NATS_REPLICAS"),
        ({"NATS_REPLICAS": "three"}, "NATS_REPLICAS"),
        ({"DEFAULT_WEBHOOK_URLS": "ftp://x"}, "DEFAULT_WEBHOOK_URLS"),
        ({"DEFAULT_WEBHOOK_URLS": "not a url"}, "DEFAULT_WEBHOOK_URLS"),
        ({"DEFAULT_WEBHOOKS": "nope"}, "DEFAULT_WEBHOOKS"),
        ({"WEBHOOK_RETRY_MIN_WAIT": "31s"}, "WEBHOOK_RETRY_MIN_WAIT"),
        (
            {"WEBHOOK_RETRY_MIN_WAIT": "1m", "WEBHOOK_RETRY_MAX_WAIT": "10s"},
            "WEBHOOK_RETRY_MIN_WAIT",
        ),
        (
            {"WEBHOOK_REQUIRE_HTTPS": "true", "DEFAULT_WEBHOOK_URLS": "http://hooks.example.com/h"},
            "DEFAULT_WEBHOOK_URLS",
        ),
        ({"NATS_TLS_CERT": __file__}, "NATS_TLS_KEY"),  # any readable file will do
        ({"BRIDGE_CONFIG": "/nonexistent/bridge.yaml"}, "BRIDGE_CONFIG"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    message = error_of(env)
    assert message.startswith(f"{variable}:")
    assert "\n" not in message


@pytest.mark.parametrize(
    "env",
    [
        {"WEBHOOK_TIMEOUT": "1\n2"},
        {"LOG_LEVEL": "info\nerror"},
        {"DEFAULT_WEBHOOK_URLS": "https://a.example\n/h"},
        {"NATS_URL": "nats://a\nb"},
    ],
)
def test_messages_are_one_line_even_for_multi_line_values(env: dict[str, str]) -> None:
    assert "\n" not in error_of(env)


@pytest.mark.parametrize(
    "env",
    [
        {"WEBHOOK_SECRET": "hunter2", "LOG_LEVEL": "loud"},
        {"ADMIN_TOKEN": "hunter2", "HTTP_PORT": "x"},
        {"NATS_PASSWORD": "hunter2", "NATS_URL": "http://x"},
        {"NATS_URL": "http://user:hunter2@nats.example:4222"},
        {"DEFAULT_WEBHOOK_URLS": "ftp://user:hunter2@hooks.example.com/h"},
        pytest.param(
            {
                "WEBHOOK_REQUIRE_HTTPS": "true",
                "DEFAULT_WEBHOOK_URLS": "http://user:hunter2@hooks.example.com/h",
            },
        ),
        pytest.param(
            {"NATS_URL": "user:hunter2@nats.example:4222"},
        ),
    ],
)
def test_messages_never_show_secrets(env: dict[str, str]) -> None:
    assert "hunter2" not in error_of(env)


# --- YAML -----------------------------------------------------------------------------------

FULL_YAML = """
webhooks:
  - id: erp
    url: https://erp.example.com/hooks/greenlight
    secret: ${ERP_SECRET}
    events: ["job.completed", "job.failed"]
    tenants: [acme]
    headers: {Authorization: "Bearer ${ERP_TOKEN:-anonymous}"}
    active: true
  - id: crm
    url: https://crm.example.com/hooks
    secrets: [new-secret, old-secret]
    active: false
  - id: plain
    url: http://plain.example.com/hooks
"""


def test_yaml_webhooks(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, FULL_YAML, ERP_SECRET="erp-secret")
    assert settings.webhooks == (
        NamedWebhook(
            id="erp",
            url="https://erp.example.com/hooks/greenlight",
            secrets=(Secret("erp-secret"),),
            events=("job.completed", "job.failed"),
            tenants=("acme",),
            headers=(("Authorization", Secret("Bearer anonymous")),),
            active=True,
        ),
        NamedWebhook(
            id="crm",
            url="https://crm.example.com/hooks",
            secrets=(Secret("new-secret"), Secret("old-secret")),
            active=False,
        ),
        NamedWebhook(id="plain", url="http://plain.example.com/hooks", secrets=()),
    )
    assert settings.config_path == str(tmp_path / "bridge.yaml")


@pytest.mark.parametrize(
    ("env", "authorization"),
    [
        ({}, "Bearer anonymous"),
        ({"ERP_TOKEN": "t0ken"}, "Bearer t0ken"),
        ({"ERP_TOKEN": ""}, "Bearer"),  # set but empty wins over the default; value is stripped
    ],
)
def test_yaml_interpolation(tmp_path: Path, env: dict[str, str], authorization: str) -> None:
    settings = load_yaml(tmp_path, FULL_YAML, ERP_SECRET="s", **env)
    assert settings.webhooks[0].headers[0][1].reveal() == authorization


def test_yaml_unset_variable_names_the_path(tmp_path: Path) -> None:
    message = yaml_error_of(tmp_path, FULL_YAML)
    assert message.startswith("bridge.yaml")
    assert "webhooks[0]" in message
    assert "secret" in message
    assert "ERP_SECRET" in message


ONE_HOOK = "webhooks:\n  - id: erp\n    url: https://erp.example.com/h\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("webhooks: [\n", "not valid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("bogus: 1\n", "bogus"),
        ("bridge_config: x.yaml\n", "bridge_config"),
        ("webhooks: {id: erp}\n", "webhooks"),
        ("webhooks: [erp]\n", "webhooks[0]"),
        (ONE_HOOK + "    color: red\n", "webhooks[0].color"),
        (ONE_HOOK + "  - id: erp\n    url: https://other.example.com/h\n", "webhooks[1].id"),
        ("webhooks:\n  - id: erp\n", "webhooks[0].url"),
        ("webhooks:\n  - url: https://erp.example.com/h\n", "webhooks[0].id"),
        ("webhooks:\n  - id: 'a b'\n    url: https://erp.example.com/h\n", "webhooks[0].id"),
        ("webhooks:\n  - id: erp\n    url: ftp://erp.example.com/h\n", "webhooks[0].url"),
        ("webhooks:\n  - id: erp\n    url: not a url\n", "webhooks[0].url"),
        (ONE_HOOK + "    secret: a\n    secrets: [b]\n", "webhooks[0]"),
        (ONE_HOOK + "    secret: ''\n", "webhooks[0].secret"),
        (ONE_HOOK + "    secrets: a\n", "webhooks[0].secrets"),
        (ONE_HOOK + "    headers: {X-Greenlight-Signature: forged}\n", "webhooks[0].headers"),
        (ONE_HOOK + "    headers: {Content-Type: text/plain}\n", "webhooks[0].headers"),
        (ONE_HOOK + "    headers: {webhook-id: x}\n", "webhooks[0].headers"),
        (ONE_HOOK + "    headers: {'Bad Name': x}\n", "webhooks[0].headers"),
        (ONE_HOOK + '    headers: {X-Token: "a\\nb"}\n', "webhooks[0].headers"),
        (ONE_HOOK + "    headers: [a]\n", "webhooks[0].headers"),
        (ONE_HOOK + "    active: maybe\n", "webhooks[0].active"),
        ("webhook_timeout: abc\n", "webhook_timeout"),
        ("http_port: 70000\n", "http_port"),
        ("nats_replicas: 7\n", "nats_replicas"),
        ("webhook_max_retry: true\n", "webhook_max_retry"),
    ],
)
def test_yaml_errors_name_the_path(tmp_path: Path, text: str, fragment: str) -> None:
    message = yaml_error_of(tmp_path, text)
    assert message.startswith("bridge.yaml")
    assert fragment in message
    assert "\n" not in message


def test_yaml_require_https_applies_to_webhooks(tmp_path: Path) -> None:
    message = yaml_error_of(tmp_path, FULL_YAML, ERP_SECRET="s", WEBHOOK_REQUIRE_HTTPS="1")
    assert message.startswith("bridge.yaml: webhooks[2].url")


@pytest.mark.parametrize(
    ("text", "env", "field", "expected"),
    [
        ("", {}, "timeout_s", 15.0),
        ("webhook_timeout: 2s\n", {}, "timeout_s", 2.0),
        ("webhook_timeout: 2s\n", {"WEBHOOK_TIMEOUT": "3s"}, "timeout_s", 3.0),
        ("webhook_timeout: ${T:-4s}\n", {}, "timeout_s", 4.0),
        ("webhook_timeout: ${T:-4s}\n", {"T": "5s"}, "timeout_s", 5.0),
        ("webhook_max_retry: 7\n", {}, "max_retry", 7),
        ("webhook_max_retry: 7\n", {"WEBHOOK_MAX_RETRY": "1"}, "max_retry", 1),
        ("http_port: 9090\n", {}, "http_port", 9090),
        ("nats_replicas: 3\n", {}, "nats_replicas", 3),
        ("webhook_allow_private_urls: true\n", {}, "allow_private_urls", True),
        ("log_level: debug\n", {"LOG_LEVEL": "error"}, "log_level", "error"),
        (
            "default_webhook_urls: [https://a.example/h, https://b.example/h]\n",
            {},
            "default_webhook_urls",
            ("https://a.example/h", "https://b.example/h"),
        ),
        (ONE_HOOK + "default_webhooks: [erp]\n", {}, "default_webhooks", ("erp",)),
        (ONE_HOOK, {"DEFAULT_WEBHOOKS": "erp"}, "default_webhooks", ("erp",)),
    ],
)
def test_yaml_settings_and_env_precedence(
    tmp_path: Path, text: str, env: dict[str, str], field: str, expected: Any
) -> None:
    assert getattr(load_yaml(tmp_path, text, **env), field) == expected


# --- secrets in repr ------------------------------------------------------------------------

SECRETS_ENV = {
    "WEBHOOK_SECRET": "env-webhook-secret",
    "NATS_PASSWORD": "nats-password-value",
    "NATS_TOKEN": "nats-token-value",
    "ADMIN_TOKEN": "admin-token-value",
    "ERP_SECRET": "erp-secret-value",
    "ERP_TOKEN": "erp-header-value",
}


def test_repr_hides_secrets(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, FULL_YAML, NATS_USER="bridge", **SECRETS_ENV)
    text = repr(settings) + str(settings) + repr(settings.webhooks)
    for secret in (*SECRETS_ENV.values(), "new-secret", "old-secret"):
        assert secret not in text


@pytest.mark.parametrize(
    "env",
    [
        {"NATS_URL": "nats://user:hunter2@nats.example:4222"},
        {"DEFAULT_WEBHOOK_URLS": "https://user:hunter2@hooks.example.com/h"},
    ],
)
def test_repr_hides_url_passwords(env: dict[str, str]) -> None:
    assert "hunter2" not in repr(load_settings(env))


# --- YAML 1.2 scalars: only true/false are booleans, other plain scalars keep their text ---


@pytest.mark.parametrize("word", ["off", "no", "on", "yes", "y", "n", "Off", "NO", "0755", "1_0"])
def test_yaml_string_fields_keep_the_scalar_text(tmp_path: Path, word: str) -> None:
    text = f"webhooks:\n  - id: {word}\n    url: https://h.example/x\n    tenants: [{word}]\n"
    (hook,) = load_yaml(tmp_path, text).webhooks
    assert (hook.id, hook.tenants) == (word, (word,))


@pytest.mark.parametrize(
    ("scalar", "active"), [("true", True), ("false", False), ("True", True), ("FALSE", False)]
)
def test_yaml_booleans_are_true_and_false(tmp_path: Path, scalar: str, active: bool) -> None:
    text = f"webhooks:\n  - id: a\n    url: https://h.example/x\n    active: {scalar}\n"
    assert load_yaml(tmp_path, text).webhooks[0].active is active


def test_yaml_numbers_are_read_from_their_text(tmp_path: Path) -> None:
    # YAML 1.1 reads 010 as 8; the port and count parsers read the text, as from the env
    settings = load_yaml(tmp_path, "webhook_timeout: 90\nhttp_port: 010\nnats_replicas: 3\n")
    assert (settings.timeout_s, settings.http_port, settings.nats_replicas) == (90.0, 10, 3)


def test_yaml_sexagesimal_is_no_longer_a_silent_number(tmp_path: Path) -> None:
    # YAML 1.1 read `1:30` as 90 seconds; as text it is not a duration, and says where
    with pytest.raises(ConfigError, match="webhook_timeout: invalid duration '1:30'"):
        load_yaml(tmp_path, "webhook_timeout: 1:30\n")
