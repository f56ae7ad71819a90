"""nats-py's exceptions become the bridge's own in one place: `bus.nats_errors`."""

from __future__ import annotations

import nats.errors
import nats.js.errors
import pytest

from bridge.jetstream.bus import BusError, NoAnswer, NotFound, found, nats_errors


@pytest.mark.parametrize(
    ("raised", "kind", "refused", "message"),
    [
        (nats.errors.TimeoutError(), NoAnswer, False, "act: nats: timeout"),
        (nats.js.errors.FetchTimeoutError(), NoAnswer, False, "act: nats: fetch timeout"),
        (TimeoutError("no ack from the stream"), NoAnswer, False, "act: no ack from the stream"),
        (nats.js.errors.NotFoundError(), NotFound, True, None),
        (nats.js.errors.KeyNotFoundError(), NotFound, True, None),
        (nats.js.errors.BucketNotFoundError(), NotFound, True, None),
        (nats.errors.MaxPayloadError(), BusError, True, None),
        (nats.js.errors.BadRequestError(), BusError, True, None),
        (nats.js.errors.ServerError(), BusError, False, None),
        (
            nats.js.errors.ServiceUnavailableError(),
            BusError,
            False,
            "act: JetStream unavailable (no leader: a cluster election?)",
        ),
        (nats.errors.ConnectionClosedError(), BusError, False, "act: nats: connection closed"),
        (ConnectionResetError("reset"), BusError, False, "act: reset"),
    ],
)
async def test_each_nats_error_has_one_translation(
    raised: Exception, kind: type[BusError], refused: bool, message: str | None
) -> None:
    with pytest.raises(BusError) as caught:
        async with nats_errors("act"):
            raise raised
    assert type(caught.value) is kind
    assert caught.value.refused is refused
    assert caught.value.__cause__ is raised
    if message is not None:
        assert str(caught.value) == message


async def test_other_exceptions_pass_through() -> None:
    with pytest.raises(ValueError, match="a bug"):
        async with nats_errors("act"):
            raise ValueError("a bug")


async def lookup(result: object = None, error: Exception | None = None) -> object:
    if error is not None:
        raise error
    return result


async def test_found_is_none_only_when_nats_has_no_such_thing() -> None:
    assert await found("look", lookup("value")) == "value"
    assert await found("look", lookup(error=nats.js.errors.KeyNotFoundError())) is None
    with pytest.raises(NoAnswer, match=r"^look: "):
        await found("look", lookup(error=nats.errors.TimeoutError()))
    with pytest.raises(BusError, match=r"^look: "):
        await found("look", lookup(error=nats.errors.ConnectionClosedError()))
