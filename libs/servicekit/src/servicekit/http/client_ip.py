"""The client's address, believing forwarding headers only from trusted proxies."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from starlette.datastructures import Headers

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from starlette.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_FORWARDED_FOR = re.compile(r'for="?\[?([^\]";,]+)\]?(?::\d+)?"?', re.IGNORECASE)


def parse_networks(entries: Iterable[str]) -> list[IPNetwork]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks (a bare address is a /32 or /128)."""
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries]


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in trusted)


def _forwarded_chain(headers: Headers) -> list[str]:
    """Hop addresses, client first: from ``Forwarded`` (RFC 7239) or ``X-Forwarded-For``."""
    forwarded = headers.getlist("forwarded")
    if forwarded:
        return [m.group(1) for value in forwarded for m in _FORWARDED_FOR.finditer(value)]
    return [
        hop.strip()
        for value in headers.getlist("x-forwarded-for")
        for hop in value.split(",")
        if hop.strip()
    ]


def client_ip(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The address of the client that sent the request.

    Forwarding headers are read only when the socket peer is a trusted proxy; then the
    chain is walked from the right, skipping trusted proxies, and the first other hop is
    the client. A header sent by anyone else is ignored, so it cannot be spoofed.
    """
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return str(peer)
    for hop in reversed(_forwarded_chain(Headers(scope=scope))):
        if _ip(hop) is None:
            break  # garbage or an obfuscated identifier: stop believing the chain
        if not _trusted(hop, trusted_proxies):
            return hop
    return str(peer)
