"""One HTTP attempt; the client's exceptions are translated into outcomes here and nowhere else.

URLs the operator configured are trusted; per-job URLs are checked against the URL policy at
every attempt and connected only to resolved addresses it accepts (unless private URLs are
allowed). Redirects are never followed and a response is read within the byte budget of
`bridge.delivery.http1`. With an egress proxy, every attempt goes through it
(`bridge.delivery.proxy`); a refusal by the proxy is a connection error naming the proxy.
"""

from __future__ import annotations

import os
import ssl
import time
from typing import Literal

import msgspec

from bridge.config.proxy import ProxyUrl
from bridge.config.secret import redact_url
from bridge.delivery.client import Client, ConnectFailed, Disconnected, parse_url, system_resolve
from bridge.delivery.http1 import ResponseError
from bridge.delivery.proxy import ProxyAnswerError, ProxyRefused
from bridge.policy import urls

Outcome = Literal["success", "http_error", "timeout", "connection_error", "blocked"]
_RETRY_AFTER_STATUSES = frozenset({429, 503})


class Request(msgspec.Struct, frozen=True):
    """A signed POST, ready to send."""

    url: str
    body: bytes
    headers: dict[str, str]
    trusted: bool
    timeout_s: float | None = None  # the webhook's own, else WEBHOOK_TIMEOUT


class AttemptResult(msgspec.Struct, frozen=True):
    """What one attempt gave; `message` reads like `status code: 200` or the network error."""

    outcome: Outcome
    status_code: int | None
    message: str
    duration_s: float
    retry_after: str | None = None
    signal: str | None = None  # the receiver's `webhook-delivery` header, lower case

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    @property
    def duration_ms(self) -> int:
        return round(self.duration_s * 1000)


class Sender:
    """Sends requests over a shared pool of keep-alive connections."""

    def __init__(
        self,
        *,
        timeout_s: float,
        pool_size: int,
        allow_private_urls: bool,
        require_https: bool,
        allowed_cidrs: tuple[str, ...] = (),
        proxy: ProxyUrl | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._vet = not allow_private_urls
        self._require_https = require_https
        policy = urls.AddressPolicy(allowed_cidrs)
        self._client = Client(policy, max_idle=pool_size, proxy=proxy)

    async def start(self) -> None:
        self._client.start()

    async def close(self) -> None:
        self._client.close()

    async def post(self, request: Request) -> AttemptResult:
        started = time.monotonic()
        timeout_s = request.timeout_s or self._timeout_s
        try:
            if not request.trusted:
                urls.check_url(request.url, require_https=self._require_https)
            head = await self._client.post(
                request.url,
                request.body,
                request.headers,
                vetted=self._vet and not request.trusted,
                timeout_s=timeout_s,
            )
        except Exception as error:
            return _failure(error, time.monotonic() - started, timeout_s)
        duration_s = time.monotonic() - started
        status = head.status
        if 200 <= status < 300:
            message = f"status code: {status}"
            return AttemptResult("success", status, message, duration_s, signal=head.signal)
        message = f"unexpected status code: {status}"
        retry_after = head.retry_after if status in _RETRY_AFTER_STATUSES else None
        return AttemptResult("http_error", status, message, duration_s, retry_after, head.signal)


async def url_refusal(
    url: str, *, require_https: bool, allow_private: bool, allowed_cidrs: tuple[str, ...]
) -> str | None:
    """Why a URL given through the admin API is refused now, or None (SPEC §9). Deliveries
    vet it again: a name that does not resolve yet is let through to be vetted then."""
    try:
        urls.check_url(url, require_https=require_https)
        if allow_private:
            return None
        parsed = parse_url(url)
        try:
            addresses = await system_resolve(parsed.host, parsed.port)
        except OSError:
            return None
        urls.AddressPolicy(allowed_cidrs).vet_all(parsed.host, addresses)
    except urls.UrlRefused as refused:
        return refused.reason
    return None


def _failure(error: Exception, duration_s: float, timeout_s: float) -> AttemptResult:
    if isinstance(error, urls.UrlRefused):
        return AttemptResult("blocked", None, error.reason, duration_s)
    if isinstance(error, TimeoutError):
        return AttemptResult("timeout", None, f"timeout after {timeout_s:g}s", duration_s)
    return AttemptResult("connection_error", None, describe_error(error), duration_s)


def describe_error(error: BaseException) -> str:
    """One line for a network error, e.g. `connection refused (127.0.0.1:9)`."""
    if isinstance(error, ConnectFailed):
        return f"{_os_reason(error.cause)} ({error.where})"
    if isinstance(error, ProxyRefused | ProxyAnswerError):
        return str(error)  # names the proxy by host:port only
    if isinstance(error, Disconnected):
        return "server disconnected"
    if isinstance(error, ResponseError):
        return f"invalid response: {error}"
    # an unexpected error may quote the URL, password included
    text = redact_url(str(error).splitlines()[0]) if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _os_reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError):
        reason = getattr(error, "reason", None) or "handshake failed"
        return "tls: " + reason.lower().replace("_", " ")
    # asyncio's own loop puts "connect call failed (...)" in strerror; the errno reads better
    text = os.strerror(error.errno) if error.errno else error.strerror
    return (text or str(error) or type(error).__name__).lower()
