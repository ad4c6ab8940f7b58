"""What unsigned callbacks have instead of a signature: a source allow-list."""

from __future__ import annotations

import ipaddress
from functools import cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_source(remote_addr: str | None, networks: tuple[str, ...]) -> bool:
    """Whether a request from this address may call us; an empty allow-list allows everyone."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # a dual-stack socket shows IPv4 callers as ::ffff:a.b.c.d
    return any(address in network for network in _parsed(networks))


@cache
def _parsed(networks: tuple[str, ...]) -> tuple[Network, ...]:
    # A malformed entry raises: a typo in the allow-list must not quietly open or close it.
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)
