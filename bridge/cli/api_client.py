"""The admin HTTP API as the CLI calls it: one request, one answer, errors made one line.

urllib's exceptions are translated here and nowhere else, into one exception:

    ApiError                    `exit_code` is what `webhook-bridge` exits with
    ├── unreachable             refused, DNS, TLS, no answer in time: 1, names the API's URL
    ├── 4xx answer              the API's `error` line after the status: 2 (bad usage)
    └── 5xx or non-JSON answer  1

The token goes into the Authorization header and nowhere else: not in a message, not in a repr.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from bridge.config.values import ConfigError

DEFAULT_API = "http://127.0.0.1:8080"
# `webhooks test` waits for one delivery, which may take WEBHOOK_TIMEOUT (15 s by default)
TIMEOUT_S = 30.0
EXIT_FAILURE, EXIT_USAGE = 1, 2
MAX_ERROR_CHARS = 300


class ApiError(Exception):
    """The API could not be reached, refused the request or failed; one line for the user."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: `body` as received, `data` its JSON (None when empty)."""

    status: int
    headers: Message
    body: bytes
    data: Any


@dataclass(frozen=True)
class AdminApi:
    """The admin API at `base_url` (a path prefix is kept: `https://ops.example.com/bridge`)."""

    base_url: str
    token: str | None = field(default=None, repr=False)
    timeout_s: float = TIMEOUT_S

    def call(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Answer:
        request = self._request(method, path, body, headers or {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, answer_headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:  # before URLError: it is one
            raise self._refused(error.code, error.read(), error.reason) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise self._unreachable(error) from None
        return Answer(status, answer_headers, raw, self._decoded(status, raw))

    def _request(
        self, method: str, path: str, body: Any, headers: Mapping[str, str]
    ) -> urllib.request.Request:
        sent = {"Accept": "application/json", **headers}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        url = self.base_url.rstrip("/") + path
        return urllib.request.Request(url, data=data, headers=sent, method=method)

    def _refused(self, status: int, body: bytes, reason: str) -> ApiError:
        line = error_line(body).removeprefix(f"{status}: ") or reason or "no reason given"
        if status == 401 and not self.token:
            line += " (no token given: set ADMIN_TOKEN or pass --token)"
        return ApiError(f"{status} {line}", EXIT_USAGE if status < 500 else EXIT_FAILURE)

    def _unreachable(self, error: BaseException) -> ApiError:
        cause = getattr(error, "reason", error)  # URLError wraps the socket's error
        if isinstance(cause, TimeoutError):
            why = f"no answer within {self.timeout_s:g} s"
        else:
            why = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        why = why[:1].lower() + why[1:]
        return ApiError(f"cannot reach the admin API at {self.base_url}: {why}", EXIT_FAILURE)

    def _decoded(self, status: int, raw: bytes) -> Any:
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise ApiError(
                f"the admin API at {self.base_url} answered {status} with a body that is not JSON",
                EXIT_FAILURE,
            ) from None


def error_line(body: bytes) -> str:
    """The `error` of a JSON error body, else the body's text, as one short line."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        text = data["error"]
    return printable(" ".join(text.split()))[:MAX_ERROR_CHARS]


def printable(text: str) -> str:
    """`text` with control characters (a terminal's escapes among them) shown as `?`."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def checked_api_url(text: str) -> str:
    """`--api` or BRIDGE_API: an http(s) URL with a host; anything else is bad usage."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"--api/BRIDGE_API: expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def checked_token(token: str | None) -> str | None:
    """A token that fits in a header; the message never shows it."""
    if token and not all(ch.isprintable() for ch in token):
        raise ConfigError("--token/ADMIN_TOKEN: contains a line break or control character")
    return token or None
