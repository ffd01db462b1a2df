"""Which addresses the URL fetcher may reach: public ones, plus what the operator allows.

An address is *internal* when it is not globally routable: private (10/8, 172.16/12, 192.168/16, fc00::/7),
loopback, link-local (169.254/16 with the cloud metadata service at 169.254.169.254, fe80::/10), shared
(100.64/10, where some clouds put their metadata service), multicast, reserved, documentation or unspecified.
IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, Teredo and the
NAT64 prefix ``64:ff9b::/96``) are judged by the IPv4 address inside.

The allow-list lets the operator reach internal hosts on purpose: the ``DATAMILL_FETCH_ALLOW`` setting holds
comma-separated entries, each a host name (``files.internal``), a wildcard (``*.corp.example``, any host under
it) or an address or network (``10.1.2.3``, ``10.1.0.0/16``, ``fd12::/16``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import ConfigError
from datamill.llm.guard import BLOCK_REMOTE_ENV, remote_blocked

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The environment variable holding the allow-list.
ALLOW_ENV = "DATAMILL_FETCH_ALLOW"
#: Largest body the fetcher reads by default (bytes).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
#: Longest a fetch may take by default, redirects and body included (seconds).
DEFAULT_TIMEOUT_S = 30.0
#: Most redirects followed by default.
DEFAULT_MAX_REDIRECTS = 5

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def internal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is internal (``"loopback"``, ``"private"``, ...), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = internal_reason(inner)
            return f"{reason} (inside {address})" if reason else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata lives here)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def parse_address(host: str) -> IPAddress | None:
    """The address a URL host names literally (``127.0.0.1``, ``::1``, ``[::1]``), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def normalize_host(host: str) -> str:
    """A host name in the form the allow-list compares: lowercase, without a trailing dot."""
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True)
class FetchPolicy:
    """What the fetcher may reach and how much it reads.

    Attributes:
        allow_hosts: host names (or ``*.suffix`` wildcards) reachable whatever they resolve to.
        allow_networks: networks reachable even though they are internal.
        max_bytes: the largest body read; a larger one fails the fetch.
        timeout_s: the longest a whole fetch (every redirect and the body) may take.
        max_redirects: the most redirects followed.
    """

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    @classmethod
    def with_allowed(cls, entries: Iterable[str], **limits: Any) -> FetchPolicy:
        """A policy allowing ``entries`` (host names, wildcards, addresses or networks).

        Raises:
            ConfigError: an entry that is neither a host name nor an address or network.
        """
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            host = normalize_host(entry)
            bare = host[2:] if host.startswith("*.") else host
            if not bare or "/" in bare or any(c.isspace() for c in bare):
                raise ConfigError(f"{ALLOW_ENV}: {raw!r} is neither a host name nor an address or network")
            hosts.add(host)
        return cls(frozenset(hosts), tuple(networks), **limits)

    def host_allowed(self, host: str) -> bool:
        """True when the operator allowed ``host`` by name."""
        name = normalize_host(host)
        if name in self.allow_hosts:
            return True
        return any(h.startswith("*.") and name.endswith(h[1:]) for h in self.allow_hosts)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``host`` at ``address`` may not be reached, or None when it may."""
        if not (self.host_allowed(host) or any(address in net for net in self.allow_networks)):
            reason = internal_reason(address)
            if reason is not None:
                return f"{host} is {address}, a {reason} address; allow it with {ALLOW_ENV} if it is meant"
        if remote_blocked() and not address.is_loopback:
            return f"remote requests are blocked ({BLOCK_REMOTE_ENV}=1): {host} is {address}"
        return None
