"""WEBHOOK_PROXY_URL: what is accepted, what stops start-up, and that credentials never show."""

from __future__ import annotations

import base64
import re

import pytest

from bridge.config.proxy import parse_proxy_url
from bridge.config.settings import load_settings
from bridge.config.values import ConfigError
from bridge.config.view import redacted


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("text", "host", "port", "authorization", "shown"),
    [
        ("http://proxy.internal:4750", "proxy.internal", 4750, None, "http://proxy.internal:4750"),
        ("http://127.0.0.1:3128/", "127.0.0.1", 3128, None, "http://127.0.0.1:3128"),
        ("http://[::1]:3128", "::1", 3128, None, "http://[::1]:3128"),
        ("http://u:p@proxy:80", "proxy", 80, _basic("u", "p"), "http://***@proxy:80"),
        ("http://u%40x:p%3Aw@proxy:80", "proxy", 80, _basic("u@x", "p:w"), "http://***@proxy:80"),
        ("http://only-user@proxy:80", "proxy", 80, _basic("only-user", ""), "http://***@proxy:80"),
    ],
)
def test_accepted_proxy_urls(
    text: str, host: str, port: int, authorization: str | None, shown: str
) -> None:
    proxy = parse_proxy_url(text)
    assert (proxy.host, proxy.port, proxy.shown) == (host, port, shown)
    revealed = proxy.authorization.reveal() if proxy.authorization else None
    assert revealed == authorization


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("https://proxy:443", "https:// proxies"),
        ("socks5://proxy:1080", "expected http://"),
        ("proxy:3128", "expected http://"),
        ("http://proxy", "with the port"),
        ("http://proxy:0", "with the port"),
        ("http://proxy:99999", "not a URL"),
        ("http://:3128", "not a URL"),
        ("http://proxy:3128/path", "no path, query or fragment"),
        ("http://proxy:3128?x=1", "no path, query or fragment"),
        ("http://proxy:3128#f", "no path, query or fragment"),
    ],
)
def test_refused_proxy_urls(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_proxy_url(text)


@pytest.mark.parametrize(
    "text", ["https://user:hunter2@proxy:443", "http://user:hunter2@proxy", "ftp://u:hunter2@p:1"]
)
def test_a_bad_proxy_url_stops_start_up_naming_the_variable_not_the_password(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"WEBHOOK_PROXY_URL": text})
    message = str(caught.value)
    assert message.startswith("WEBHOOK_PROXY_URL: ")
    assert "hunter2" not in message
    assert "\n" not in message


def test_unset_means_no_proxy() -> None:
    assert load_settings({}).proxy_url is None
    assert load_settings({"WEBHOOK_PROXY_URL": ""}).proxy_url is None


def test_the_settings_view_and_repr_hide_the_credentials() -> None:
    settings = load_settings({"WEBHOOK_PROXY_URL": "http://bridge:hunter2@proxy:4750"})
    assert redacted(settings)["proxy_url"] == "http://***@proxy:4750"
    assert settings.proxy_url is not None
    shown = f"{settings.proxy_url!r} {settings.proxy_url.authorization!r} {redacted(settings)}"
    assert "hunter2" not in shown
    assert "bridge:" not in shown
    assert base64.b64encode(b"bridge:hunter2").decode() not in shown
