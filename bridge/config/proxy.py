"""The egress proxy (WEBHOOK_PROXY_URL): `http://[user:pass@]host:port`, validated once.

Its credentials become the `Proxy-Authorization: Basic` value, kept as a Secret; everything
the bridge shows of the proxy (`shown`, `endpoint`) leaves them out.
"""

from __future__ import annotations

import base64

from yarl import URL

from bridge.config.secret import REDACTED, Secret


class ProxyUrl:
    """Where deliveries go first; `authorization` is the Proxy-Authorization value, if any."""

    __slots__ = ("authorization", "host", "port")

    def __init__(self, host: str, port: int, authorization: Secret | None) -> None:
        self.host, self.port, self.authorization = host, port, authorization

    @property
    def endpoint(self) -> str:
        """`host:port` (IPv6 in brackets): how errors and logs name the proxy."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}"

    @property
    def shown(self) -> str:
        """The URL with its credentials redacted, for the settings view."""
        userinfo = f"{REDACTED}@" if self.authorization is not None else ""
        return f"http://{userinfo}{self.endpoint}"

    def __repr__(self) -> str:
        return f"ProxyUrl({self.shown!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProxyUrl):
            return NotImplemented
        mine = (self.host, self.port, self.authorization)
        return mine == (other.host, other.port, other.authorization)

    def __hash__(self) -> int:
        return hash((self.host, self.port))


def parse_proxy_url(text: str) -> ProxyUrl:
    """Raise ValueError (never quoting the credentials) unless `text` is an http proxy URL
    with a host and a port, and nothing after them but `/`."""
    try:
        url = URL(text)
        port = url.explicit_port
    except ValueError:  # yarl's message may quote the URL, password included
        raise ValueError("not a URL (expected http://[user:pass@]host:port)") from None
    if url.scheme != "http":
        raise ValueError("expected http://[user:pass@]host:port (https:// proxies: no)")
    if not url.raw_host or not port:
        raise ValueError("expected http://[user:pass@]host:port, with the port")
    if url.raw_path not in ("", "/") or url.raw_query_string or url.raw_fragment:
        raise ValueError("a proxy URL has no path, query or fragment")
    return ProxyUrl(url.raw_host, port, _authorization(url))


def _authorization(url: URL) -> Secret | None:
    if url.user is None:
        return None
    raw = f"{url.user}:{url.password or ''}".encode()
    return Secret("Basic " + base64.b64encode(raw).decode("ascii"))
