"""Refusing callback URLs that point inside the operator's network (SSRF guard).

``check_url_host`` resolves the URL's host and returns its addresses only if *every* one is public;
the dispatcher then connects to one of those addresses (not to the name again), so a DNS answer
that changes between the check and the connection cannot slip a private address in.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from c2c.errors import RequestRejected

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

MALFORMED = 4

# Explicit, so the answer does not depend on the Python version's ipaddress tables.
_NOT_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata lives here)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")  # everything else is not public
_NOT_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix: the last 32 bits are IPv4
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")

# Characters of an inet_aton spelling: 127.1, 0x7f.1, 0177.0.0.1, 2130706433.
_LEGACY_NUMERIC = re.compile(r"[0-9A-Fa-fXx.]+")


class UnsafeCallbackAddress(RequestRejected):
    """The callback URL's host is, or resolves to, an address that is not public."""

    def __init__(self, message: str) -> None:
        super().__init__(MALFORMED, message)


def is_public_address(ip: str) -> bool:
    """True only for a global unicast address; False for anything unparsable."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return _is_public(address)


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in net for net in _NOT_PUBLIC_V4) and address.is_global
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _is_public(embedded)
    if address.scope_id is not None or address not in _GLOBAL_UNICAST_V6:
        return False
    return not any(address in net for net in _NOT_PUBLIC_V6) and address.is_global


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to this IPv6 address really reaches, where there is one."""
    if address in _IPV4_MAPPED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def literal_address(host: str) -> Address | None:
    """The address a host *spells*, if it is numeric, including legacy IPv4 forms.

    ``socket.inet_aton`` semantics (what the C resolver and browsers apply): ``127.1``,
    ``0x7f.1``, ``0177.0.0.1`` and ``2130706433`` all mean 127.0.0.1.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    candidate = host[:-1] if host.endswith(".") else host
    if candidate and _LEGACY_NUMERIC.fullmatch(candidate) and any(c.isdigit() for c in candidate):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


def resolve_with_getaddrinfo(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host`` (OSError when it cannot resolve)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_url_host(
    url: str, resolve: Resolver = resolve_with_getaddrinfo, *, allow_private: bool = False
) -> list[str]:
    """The public addresses ``url``'s host resolves to, in resolver order, without duplicates.

    Raises UnsafeCallbackAddress (a RequestRejected with code 4) if the URL has no http(s) host or
    if ANY address is not public (unless ``allow_private``, for tests and labs); resolver errors
    propagate as OSError so the dispatcher can retry later.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise UnsafeCallbackAddress("callback URL cannot be parsed") from exc
    host = parts.hostname
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise UnsafeCallbackAddress("callback URL has no http(s) host")

    literal = literal_address(host)
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    unique = list(dict.fromkeys(_canonical(a) for a in addresses))
    if not unique:
        raise OSError(f"no address for {host!r}")
    if not allow_private:
        refused = [a for a in unique if not is_public_address(a)]
        if refused:
            raise UnsafeCallbackAddress(f"callback host {host!r} resolves to non-public {refused}")
    return unique


def _canonical(address: str) -> str:
    # getaddrinfo may append a zone ('fe80::1%eth0'); keep it, ip_address understands it.
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address
