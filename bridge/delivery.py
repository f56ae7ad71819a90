"""One HTTP attempt with aiohttp; aiohttp's exceptions are translated here and nowhere else.

Two client sessions share the process: one for URLs the operator configured (trusted), one
whose resolver vets every address of per-job URLs before connecting to exactly those
(untrusted). Redirects are never followed and at most 64 KiB of a response body is read.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import aiohttp
import msgspec

from bridge import urlpolicy
from bridge.secrets import redact_url

Outcome = Literal["success", "http_error", "timeout", "connection_error", "blocked"]
MAX_RESPONSE_BYTES = 64 * 1024
_RETRY_AFTER_STATUSES = frozenset({429, 503})


class Request(msgspec.Struct, frozen=True):
    """A signed POST, ready to send."""

    url: str
    body: bytes
    headers: dict[str, str]
    trusted: bool


class AttemptResult(msgspec.Struct, frozen=True):
    """What one attempt gave; `message` reads like `status code: 200` or the network error."""

    outcome: Outcome
    status_code: int | None
    message: str
    duration_s: float
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    @property
    def duration_ms(self) -> int:
        return round(self.duration_s * 1000)


class Deliverer:
    """Sends requests over a shared connection pool."""

    def __init__(
        self,
        *,
        timeout_s: float,
        pool_size: int,
        allow_private_urls: bool,
        require_https: bool,
        allowed_cidrs: tuple[str, ...] = (),
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._pool_size = pool_size
        self._allow_private = allow_private_urls
        self._require_https = require_https
        self._address_policy = urlpolicy.AddressPolicy(allowed_cidrs)
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    async def start(self) -> None:
        """Create the pools inside the running loop (aiohttp's resolver needs one)."""
        self._sessions = {True: self._session(vetted=False), False: self._session(vetted=True)}

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._sessions.values()))

    async def post(self, request: Request) -> AttemptResult:
        started = time.monotonic()
        try:
            if not request.trusted:
                urlpolicy.check_url(request.url, require_https=self._require_https)
            status, retry_after = await self._send(request)
        except Exception as error:
            return _failure(error, time.monotonic() - started, self._timeout_s)
        duration_s = time.monotonic() - started
        if 200 <= status < 300:
            return AttemptResult("success", status, f"status code: {status}", duration_s)
        message = f"unexpected status code: {status}"
        return AttemptResult("http_error", status, message, duration_s, retry_after)

    async def _send(self, request: Request) -> tuple[int, str | None]:
        session = self._sessions[request.trusted]
        async with session.post(
            request.url, data=request.body, headers=request.headers, allow_redirects=False
        ) as response:
            await _drain(response)
            retry_after = None
            if response.status in _RETRY_AFTER_STATUSES:
                retry_after = response.headers.get("Retry-After")
            return response.status, retry_after

    def _session(self, *, vetted: bool) -> aiohttp.ClientSession:
        """A pool; `vetted` ones connect only to addresses the URL policy accepted."""
        vetting: dict[str, Any] = {}
        if vetted and not self._allow_private:
            policy = self._address_policy
            vetting = {
                "resolver": urlpolicy.VettingResolver(policy),
                "socket_factory": policy.socket_factory,
            }
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, limit_per_host=0, ttl_dns_cache=10, **vetting
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            trust_env=False,
            skip_auto_headers=("User-Agent",),
        )


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read at most MAX_RESPONSE_BYTES; a longer or stalled body closes the connection."""
    received = 0
    try:
        while received < MAX_RESPONSE_BYTES:
            chunk = await response.content.read(MAX_RESPONSE_BYTES - received)
            if not chunk:
                return
            received += len(chunk)
    except (aiohttp.ClientError, TimeoutError):
        pass  # the status line already decided the outcome
    response.close()


def _failure(error: Exception, duration_s: float, timeout_s: float) -> AttemptResult:
    refused = urlpolicy.refused_from(error)
    if refused is not None:
        return AttemptResult("blocked", None, refused.reason, duration_s)
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return AttemptResult("timeout", None, f"timeout after {timeout_s:g}s", duration_s)
    return AttemptResult("connection_error", None, describe_error(error), duration_s)


def describe_error(error: BaseException) -> str:
    """One line for a network error, e.g. `connection refused (127.0.0.1:9)`."""
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error.strerror or type(error.os_error).__name__
        return f"{reason.lower()} ({error.host}:{error.port})"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"invalid response: {error.message}"
    # an unexpected error may quote the URL, password included
    text = redact_url(str(error).splitlines()[0]) if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
