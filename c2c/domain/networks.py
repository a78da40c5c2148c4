"""Client addresses and networks: keys' --allow-ip lists, and who the client is behind a proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidrs(raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDRs, normalised ('10.0.0.7' -> '10.0.0.7/32'); a bad
    one raises ValueError naming it."""
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or CIDR network") from None
    if not networks:
        raise ValueError("no address given")
    return tuple(networks)


@lru_cache(maxsize=256)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) is that IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def address_in(text: str | None, cidrs: Iterable[str]) -> bool:
    """Whether the address ``text`` is in one of the networks (a malformed address is not)."""
    address = _address(text)
    if address is None:
        return False
    return any(address in network for network in _networks(tuple(cidrs)))


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted_proxies: Sequence[str]) -> str | None:
    """The client's address: the TCP peer, unless the peer is a trusted proxy, in which case
    the nearest address in X-Forwarded-For that is not a trusted proxy itself (walking from the
    right, as each proxy appends the address it saw; anything left of an untrusted hop could be
    forged by the client). None when it cannot be told."""
    if not address_in(peer, trusted_proxies) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if _address(hop) is None:
            return None  # a garbled header from a trusted proxy: no client can be named
        if not address_in(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer
