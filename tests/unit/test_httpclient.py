"""The lean HTTP client against scripted loopback servers: reuse, framing, limits, TLS, vetting."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from harness.abuse import AbusiveReceiver
from harness.tls import make_tls_files
from harness.waiting import wait_for

from bridge.delivery.client import Client, ConnectFailed, Disconnected
from bridge.delivery.http1 import Head, ResponseError
from bridge.policy.urls import AddressPolicy, UrlRefused

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
UNANSWERED = b""  # a reply that closes the connection without a byte
Reply = Callable[[str], bytes | None]  # request path → raw answer (None: never answer)


class ScriptedServer:
    """Answers each request with `reply(path)`; remembers heads and counts connections."""

    def __init__(self, reply: Reply, tls: ssl.SSLContext | None = None) -> None:
        self.reply = reply
        self.tls = tls
        self.heads: list[str] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()

    def close_idle_connections(self) -> None:
        for writer in self._writers:
            writer.close()

    def url(self, path: str = "/hook", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while head := (await reader.readuntil(b"\r\n\r\n")).decode():
                length = next(
                    (
                        int(line.split(":")[1])
                        for line in head.split("\r\n")
                        if line.lower().startswith("content-length:")
                    ),
                    0,
                )
                self.heads.append(head)
                self.bodies.append(await reader.readexactly(length))
                answer = self.reply(head.split(" ")[1])
                if answer is None:
                    await asyncio.Event().wait()
                writer.write(answer)
                await writer.drain()
                if answer == UNANSWERED or answer.startswith(b"HTTP/1.0"):
                    break
                if b"Connection: close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[..., "ScriptedServer"]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[ScriptedServer] = []

    def make(reply: Reply, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(reply, tls))
        return servers[-1]

    yield make
    for server in servers:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    made = Client(AddressPolicy(), max_idle=16)
    made.start()
    yield made
    made.close()


async def post(client: Client, url: str, vetted: bool = False, timeout_s: float = 5) -> Head:
    headers = {"Content-Type": "application/json", "X-Greenlight-Event": "job.completed"}
    return await client.post(url, b'{"a":1}', headers, vetted=vetted, timeout_s=timeout_s)


async def test_requests_reuse_one_keep_alive_connection(client: Client, serve: Serve) -> None:
    server = serve(lambda _path: OK)
    await server.start()
    for _ in range(5):
        assert await post(client, server.url("/hook?x=1")) == Head(200, None)
    assert server.connections == 1
    first = server.heads[0]
    assert first.startswith("POST /hook?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in first
    assert "Content-Length: 7\r\n" in first
    assert "X-Greenlight-Event: job.completed\r\n" in first
    assert server.bodies == [b'{"a":1}'] * 5


RESPONSES = {
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsome\r\n0\r\n\r\n",
    "/continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
    "/busy": b"HTTP/1.1 503 Busy\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n",
    "/closing": b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    "/http10": b"HTTP/1.0 200 OK\r\n\r\nbody until the close",
}


@pytest.mark.parametrize(
    ("path", "head", "connections"),
    [
        ("/chunked", Head(200, None), 1),
        ("/continue", Head(202, None), 1),
        ("/busy", Head(503, "30"), 1),
        ("/closing", Head(500, None), 2),
        ("/http10", Head(200, None), 2),
    ],
)
async def test_each_framing_gives_the_status_and_reuses_only_what_it_may(
    client: Client, serve: Serve, path: str, head: Head, connections: int
) -> None:
    server = serve(lambda p: RESPONSES[p])
    await server.start()
    assert await post(client, server.url(path)) == head
    assert await post(client, server.url(path)) == head
    assert server.connections == connections


def pooled_connections_lost(client: Client) -> bool:
    """True once the client has seen every idle connection closed by its peer."""
    idle = [c for pool in client._pool._idle.values() for c in pool]
    return bool(idle) and all(connection.lost for connection in idle)


async def test_a_connection_the_receiver_closed_is_not_reused(client: Client, serve: Serve) -> None:
    server = serve(lambda _path: OK)
    await server.start()
    await post(client, server.url())
    server.close_idle_connections()
    await wait_for(lambda: pooled_connections_lost(client), 5, "the client never saw the close")
    assert await post(client, server.url()) == Head(200, None)
    assert server.connections == 2


def replies(*answers: bytes) -> Reply:
    """The answers in turn, one per request, whatever its path."""
    left = iter(answers)
    return lambda _path: next(left)


async def test_a_pooled_connection_closed_unanswered_is_sent_again_on_a_new_one(
    client: Client, serve: Serve
) -> None:
    server = serve(replies(OK, UNANSWERED, OK))
    await server.start()
    assert await post(client, server.url()) == Head(200, None)
    assert await post(client, server.url()) == Head(200, None)
    assert (len(server.heads), server.connections) == (3, 2)


async def test_a_new_connection_closed_unanswered_is_not_sent_again(
    client: Client, serve: Serve
) -> None:
    server = serve(replies(UNANSWERED, OK))
    await server.start()
    with pytest.raises(Disconnected):
        await post(client, server.url())
    assert len(server.heads) == 1


async def test_a_pooled_connection_cut_after_a_byte_of_answer_is_not_sent_again(
    client: Client, serve: Serve
) -> None:
    server = serve(replies(OK, b"HTTP/1.1 200 OK\r\nConnection: close\r\n", OK))
    await server.start()
    await post(client, server.url())
    with pytest.raises(Disconnected):
        await post(client, server.url())
    assert len(server.heads) == 2


@pytest.mark.parametrize(
    ("keep_alive", "connections"),
    [
        (b"timeout=1", 2),  # no idle time left once the margin is taken off
        (b"timeout=0, max=100", 2),
        (b"timeout=60, max=100", 1),
        (b"max=100", 1),
        (b"timeout=\xff\xfe", 1),
    ],
)
async def test_the_idle_time_a_receiver_grants_is_honoured(
    client: Client, serve: Serve, keep_alive: bytes, connections: int
) -> None:
    answer = b"HTTP/1.1 200 OK\r\nKeep-Alive: " + keep_alive + b"\r\nContent-Length: 0\r\n\r\n"
    server = serve(lambda _path: answer)
    await server.start()
    for _ in range(2):
        assert await post(client, server.url()) == Head(200, None)
    assert server.connections == connections


async def test_no_answer_times_out_and_the_connection_is_dropped(
    client: Client, serve: Serve
) -> None:
    server = serve(lambda path: None if path == "/silent" else OK)
    await server.start()
    with pytest.raises(TimeoutError):
        await post(client, server.url("/silent"), timeout_s=0.3)
    assert await post(client, server.url("/ok")) == Head(200, None)
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100,  # never completes
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100000,  # past the cap
    ],
)
async def test_the_status_decides_a_body_that_is_late_or_too_long_costs_the_connection(
    client: Client, serve: Serve, answer: bytes
) -> None:
    server = serve(lambda _path: answer)
    await server.start()
    assert await post(client, server.url(), timeout_s=0.5) == Head(200, None)
    assert await post(client, server.url(), timeout_s=0.5) == Head(200, None)
    assert server.connections == 2


# Far more than the receiver's socket buffers can hold, far less than it sends in a timeout.
MAX_SENT_BYTES = 16 * 1024 * 1024


async def test_endless_interim_heads_end_the_attempt_as_an_invalid_response(
    client: Client, abusive: AbusiveReceiver
) -> None:
    with pytest.raises(ResponseError, match="no final response head"):
        await post(client, abusive.url("/continue-forever"), timeout_s=5)
    path = "/continue-forever"
    await wait_for(lambda: abusive.closed_by_client[path] == 1, 5, "the client read on")
    assert abusive.sent[path] < MAX_SENT_BYTES


@pytest.mark.parametrize("path", ["/trailers-forever", "/extensions-forever"])
async def test_a_2xx_whose_framing_never_ends_stands_and_costs_only_the_connection(
    client: Client, abusive: AbusiveReceiver, path: str
) -> None:
    assert await post(client, abusive.url(path), timeout_s=5) == Head(200, None)
    await wait_for(lambda: abusive.closed_by_client[path] == 1, 5, "the client read on")
    assert abusive.sent[path] < MAX_SENT_BYTES


async def test_a_head_that_is_not_utf8_is_still_an_answer(
    client: Client, abusive: AbusiveReceiver
) -> None:
    assert await post(client, abusive.url("/not-utf8")) == Head(200, "\ufffd\ufffd")


async def test_url_credentials_become_basic_auth(client: Client, serve: Serve) -> None:
    server = serve(lambda _path: OK)
    await server.start()
    await post(client, f"http://user:p%40ss@127.0.0.1:{server.port}/hook")
    expected = base64.b64encode(b"user:p@ss").decode()
    assert f"Authorization: Basic {expected}\r\n" in server.heads[0]


async def test_a_header_with_a_line_break_is_refused_before_connecting(
    client: Client, serve
) -> None:
    server = serve(lambda _path: OK)
    await server.start()
    with pytest.raises(ValueError, match="line break"):
        await client.post(server.url(), b"", {"X-A": "1\r\nX-B: 2"}, vetted=False, timeout_s=1)
    assert server.connections == 0


async def test_vetted_connections_go_only_to_allowed_addresses(serve: Serve) -> None:
    server = serve(lambda _path: OK)
    await server.start()
    strict = Client(AddressPolicy(), max_idle=4)
    allowing = Client(AddressPolicy(["127.0.0.1/32"]), max_idle=4)
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(UrlRefused):
            await post(strict, server.url(host=host), vetted=True)
    assert await post(allowing, server.url(), vetted=True) == Head(200, None)
    assert server.connections == 1


async def test_refused_connections_name_host_and_port(client: Client) -> None:
    with pytest.raises(ConnectFailed) as failure:
        await post(client, "http://127.0.0.1:9/hook")
    assert (failure.value.host, failure.value.port) == ("127.0.0.1", 9)


async def test_tls_verifies_the_receiver_certificate(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = make_tls_files(tmp_path)
    server = serve(lambda _path: OK, tls=files.server_context())
    await server.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(files.ca))
    trusting = Client(AddressPolicy(), max_idle=4)
    assert await post(trusting, server.url(scheme="https")) == Head(200, None)
    monkeypatch.setenv("SSL_CERT_FILE", str(files.other_ca))
    distrusting = Client(AddressPolicy(), max_idle=4)
    with pytest.raises(ConnectFailed) as failure:
        await post(distrusting, server.url(scheme="https"))
    assert isinstance(failure.value.cause, ssl.SSLError)
