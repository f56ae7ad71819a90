"""One attempt's response handling: the body read is capped, whatever the receiver sends."""

from __future__ import annotations

import aiohttp
import pytest

from bridge.delivery import MAX_RESPONSE_BYTES, _drain, describe_error


class EndlessContent:
    """A response body that never ends; counts what the reader took."""

    def __init__(self) -> None:
        self.taken = 0

    async def read(self, n: int = -1) -> bytes:
        assert n > 0, "an unbounded read of an endless body never returns"
        chunk = min(n, 1 << 20)  # more than the cap in one go, if asked for it
        self.taken += chunk
        return b"x" * chunk


class FakeResponse:
    def __init__(self) -> None:
        self.content = EndlessContent()
        self.closed = False

    def close(self) -> None:
        self.closed = True


async def test_an_endless_body_is_read_up_to_the_cap_and_the_connection_closed() -> None:
    response = FakeResponse()
    await _drain(response)  # type: ignore[arg-type]
    assert response.content.taken == MAX_RESPONSE_BYTES == 64 * 1024
    assert response.closed


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.InvalidURL("http://user:hunter2@example.com:0/"),
        ValueError("cannot send to http://user:hunter2@example.com/\nsecond line"),
    ],
)
def test_error_descriptions_never_quote_url_passwords(error: Exception) -> None:
    described = describe_error(error)
    assert "hunter2" not in described
    assert "\n" not in described
    assert "example.com" in described
