"""Decide which URLs the bridge may call: URL syntax, and no private addresses (SSRF guard).

Per-job URLs are untrusted input. Unless private URLs are allowed, a URL whose host is,
or resolves to, a loopback, private, link-local, CGNAT, multicast, broadcast,
documentation, benchmarking, reserved or unspecified address is refused — IPv4-mapped,
NAT64 and 6to4 forms are unwrapped first, and one forbidden address among several is
enough.

`check_url` judges the URL's syntax before any connection. `AddressPolicy.vet_all` judges
addresses where bridge.delivery.client opens a connection: the client resolves the host (an IP
literal resolves to itself), passes every answer through `vet_all` and connects to exactly
the addresses it returns: what was vetted is what gets called, and a rebinding DNS server
gets no second question between the check and the connect. That client never follows redirects
(a 3xx could point anywhere) and uses no proxy but the operator's egress proxy
(WEBHOOK_PROXY_URL): then the proxy resolves and connects, the client vets what it can before
(IP literals, the addresses it resolves the name to), and the proxy is the boundary.

`allowed_cidrs` (WEBHOOK_ALLOWED_CIDRS) are networks the operator lets per-job URLs reach
although they are forbidden otherwise, e.g. an internal receiver's subnet.

Refusals raise UrlRefused; its reason is the error of the `blocked_url` dead letter.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence

from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
URLS_CACHED = 4096  # verdicts on URLs' syntax (one per webhook and per-job URL in use)
_SCHEMES = frozenset({"http", "https"})
_SHOWN_HOST_CHARS = 100
# WHATWG's "ends in a number": no DNS name has an all-numeric last label, but getaddrinfo
# reads hosts like 127.1, 2130706433 or 0x7f.1 as IPv4 addresses.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)


class UrlRefused(Exception):
    """A URL the policy will not call. `.reason` is one line naming the host, never userinfo.

    Not an OSError, so that no `except OSError` on the connection path (a failed lookup, a
    failed connect) can take a refusal for a network error and carry on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _networks(*rows: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(cidr), reason) for cidr, reason in rows)


# Most specific first: the first match names the reason.
_FORBIDDEN = _networks(
    ("169.254.169.254/32", "metadata"),  # AWS, GCP, Azure, OpenStack instance metadata
    ("fd00:ec2::254/128", "metadata"),  # AWS IPv6 instance metadata
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "reserved"),  # deprecated IPv4-compatible addresses
    ("64:ff9b:1::/48", "private"),  # local-use NAT64
    ("100::/64", "reserved"),  # discard-only
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo among them
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved"),  # SRv6 segment ids
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),  # deprecated site-local
    ("ff00::/8", "multicast"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def forbidden_reason(address: IPAddress) -> str | None:
    """Why `address` must not be called ("loopback", "private", ...); None when routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return forbidden_reason(embedded)
    for network, reason in _FORBIDDEN:
        if address in network:
            return reason
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return "reserved"
    # Backstop for special ranges not listed above, as far as this Python knows them.
    return None if address.is_global else "reserved"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # These forms reach the embedded IPv4 address, so that address is the one to judge.
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def check_url(url: str, *, require_https: bool) -> None:
    """Refuse a URL that is not a plain absolute http(s) URL with a host.

    Syntax only: which addresses the host may reach is AddressPolicy's job.
    """
    if len(url) > MAX_URL_LENGTH:  # before the cache: it would keep the long URL
        raise UrlRefused(f"URL is {len(url)} characters long, over {MAX_URL_LENGTH}")
    reason = _syntax_refusal(url, require_https)
    if reason is not None:
        raise UrlRefused(reason)


@functools.lru_cache(maxsize=URLS_CACHED)
def _syntax_refusal(url: str, require_https: bool) -> str | None:
    """Why `url` is refused, or None. Cached: every delivery to an API webhook or a per-job
    URL checks its URL again, and parsing it is a good part of a delivery's CPU."""
    try:
        _check_syntax(url, require_https)
    except UrlRefused as refused:
        return refused.reason
    return None


def _check_syntax(url: str, require_https: bool) -> None:
    if any(_is_unsafe_char(char) for char in url):
        raise UrlRefused("URL contains whitespace or control characters")
    parsed = _parse(url)
    if parsed.scheme not in _SCHEMES:
        raise UrlRefused(f"URL scheme {parsed.scheme[:16]!r} is not http or https")
    host = parsed.raw_host
    if not host:
        raise UrlRefused("URL has no host")
    if require_https and parsed.scheme != "https":
        raise UrlRefused(f"{_shown(host)}: https is required")
    _check_host_syntax(host)


def _is_unsafe_char(char: str) -> bool:
    # CR/LF could split headers or log lines; spaces make parsers disagree about the host.
    return char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F


def _parse(url: str) -> URL:
    try:
        return URL(url)
    except (ValueError, IndexError):  # yarl raises IndexError for "http://[]@/"
        # yarl's message can quote the URL, password included, so it is not passed on.
        raise UrlRefused("URL cannot be parsed") from None


def _check_host_syntax(host: str) -> None:
    if "%" in host:  # an IPv6 zone id names a local interface, never a remote receiver
        raise UrlRefused(f"{_shown(host)}: zone ids are not allowed")
    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.fullmatch(last_label) and _ip_or_none(host) is None:
        raise UrlRefused(f"{_shown(host)}: not a canonical IP address")


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """`10.1.0.0/16`, `fd00:1::/64` or a single address; raises ValueError naming the bad one."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip()))
        except ValueError as error:
            raise ValueError(f"{cidr[:60]!r} is not a CIDR network ({error})") from None
    return tuple(networks)


class AddressPolicy:
    """Which resolved addresses may be called: not forbidden, or inside an allowed network."""

    def __init__(self, allowed_cidrs: Sequence[str] = ()) -> None:
        self._allowed = parse_networks(allowed_cidrs)

    def reason(self, address: IPAddress) -> str | None:
        """Why `address` is refused; None when routable or allowed by the operator."""
        forms = _forms(address)
        if any(form in network for network in self._allowed for form in forms):
            return None
        return forbidden_reason(address)

    def vet(self, host: str, address_text: str) -> None:
        """Raise UrlRefused unless `host`, resolved to `address_text`, may be called."""
        address = _ip_or_none(address_text)
        if address is None:
            raise UrlRefused(f"{_shown(host)}: resolved to an unreadable address")
        reason = self.reason(address)
        if reason is None:
            return
        if host == address_text:
            raise UrlRefused(f"{_shown(host)}: {reason} address")
        raise UrlRefused(f"{_shown(host)}: resolves to {reason} address {address}")

    def vet_all(self, host: str, addresses: Iterable[str]) -> list[str]:
        """`host`'s resolved addresses, de-duplicated in order, once every one is vetted.

        One forbidden answer refuses the name: the client falls back from one address to the
        next when a connect fails, so every answer is one it may end up calling.
        """
        unique = list(dict.fromkeys(addresses))
        for address in unique:
            self.vet(host, address)
        return unique


def _forms(address: IPAddress) -> tuple[IPAddress, ...]:
    """The address and the IPv4 address it reaches, if it embeds one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return (address, embedded)
    return (address,)


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _shown(host: str) -> str:
    # Keeps the reason one short line however long the host is.
    return host if len(host) <= _SHOWN_HOST_CHARS else host[:_SHOWN_HOST_CHARS] + "..."
