"""How attempt errors read: one line, never a URL password."""

from __future__ import annotations

import ssl

import pytest

from bridge.delivery.attempt import describe_error
from bridge.delivery.client import ConnectFailed, Disconnected
from bridge.delivery.http1 import ResponseError


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            ConnectFailed("127.0.0.1", 9, ConnectionRefusedError(111, "Connection refused")),
            "connection refused (127.0.0.1:9)",
        ),
        (
            ConnectFailed("h.test", 443, ssl.SSLCertVerificationError(1, "bad")),
            "tls: handshake failed (h.test:443)",
        ),
        (Disconnected("server disconnected"), "server disconnected"),
        (
            ResponseError("bad status line b'HTP/1.1'"),
            "invalid response: bad status line b'HTP/1.1'",
        ),
    ],
)
def test_network_errors_read_as_one_line(error: Exception, expected: str) -> None:
    assert describe_error(error) == expected


@pytest.mark.parametrize(
    "error",
    [
        ValueError("cannot send to http://user:hunter2@example.com/\nsecond line"),
        OSError("http://user:hunter2@example.com:0/ is unreachable"),
    ],
)
def test_error_descriptions_never_quote_url_passwords(error: Exception) -> None:
    described = describe_error(error)
    assert "hunter2" not in described
    assert "\n" not in described
    assert "example.com" in described
