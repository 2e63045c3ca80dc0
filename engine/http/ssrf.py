"""The target policy: which addresses a task may make the worker call.

Every address a host resolves to is classified and checked; one bad address blocks the whole
host (a name that resolves to a public and a private address is how DNS rebinding starts).
This module is the one guard for every outgoing request: task calls (both executors), and
anything else the engine sends (webhook deliveries, say) goes through :func:`check_url` or an
executor made by :func:`engine.http.create_executor`. The aiohttp executor checks inside its
resolver, so the connection goes to exactly the addresses checked; the httpx executor checks
with :func:`check_url` and connects to the checked address (see ``httpx_executor``).

Rules, in order:

* unspecified (``0.0.0.0/8``, ``::``), multicast and reserved addresses: always blocked;
* cloud metadata endpoints (``169.254.169.254`` ...): blocked unless a CIDR in
  ``allowed_hosts`` names them; ``allow_private`` alone does not open them;
* loopback, private (RFC 1918, ULA, CGNAT, documentation, ...) and link-local: blocked unless
  ``allow_private`` or a CIDR in ``allowed_hosts`` contains the address;
* with ``allowed_hosts`` set, the host must also match a name entry (``api.example.org``,
  ``*.example.org`` for its subdomains) or every address must lie in a CIDR entry.

IPv4 embedded in IPv6 (``::ffff:127.0.0.1``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) is
judged as the IPv4 address it carries.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from yarl import URL

from engine.http.messages import HttpError
from engine.http.urls import parse_target_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: host name -> IP address strings; the default asks the system resolver
Resolver = Callable[[str], Awaitable[Sequence[str]]]


class AddressClass(StrEnum):
    PUBLIC = "public"  #: routable on the internet
    LOOPBACK = "loopback"  #: 127.0.0.0/8, ::1
    PRIVATE = "private"  #: RFC 1918, ULA, CGNAT, documentation, benchmarking, ...
    LINK_LOCAL = "link-local"  #: 169.254.0.0/16, fe80::/10
    METADATA = "cloud metadata"  #: instance metadata services
    UNSPECIFIED = "unspecified"  #: 0.0.0.0/8, ::
    MULTICAST = "multicast"  #: 224.0.0.0/4, ff00::/8
    RESERVED = "reserved"  #: 240.0.0.0/4, broadcast, IETF reserved IPv6


ALWAYS_BLOCKED = frozenset(
    {AddressClass.UNSPECIFIED, AddressClass.MULTICAST, AddressClass.RESERVED}
)
PRIVATE_CLASSES = frozenset({AddressClass.LOOPBACK, AddressClass.PRIVATE, AddressClass.LINK_LOCAL})

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IPv6
    )
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


def parse_ip(host: str) -> IPAddress | None:
    """The address if ``host`` is an IP literal (brackets and zone id allowed), else ``None``."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify_address(address: IPAddress) -> AddressClass:
    """What kind of address this is, judging embedded IPv4 by the IPv4 address."""
    address = embedded_ipv4(address) or address
    if address in METADATA_ADDRESSES:
        return AddressClass.METADATA
    if address.is_unspecified or address in _THIS_NETWORK:
        return AddressClass.UNSPECIFIED
    if address.is_loopback:
        return AddressClass.LOOPBACK
    if address.is_link_local:
        return AddressClass.LINK_LOCAL
    if address.is_multicast:
        return AddressClass.MULTICAST
    if address.is_reserved:
        return AddressClass.RESERVED
    if address.is_private or not address.is_global:
        return AddressClass.PRIVATE
    return AddressClass.PUBLIC


def _normalise_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    return host if host.isascii() else host.encode("idna").decode("ascii")


@dataclass(frozen=True)
class TargetPolicy:
    """Which targets tasks may call (``JOBQUEUE_ALLOW_PRIVATE_NETWORKS``, ``..._ALLOWED_HOSTS``)."""

    #: allow loopback, private and link-local addresses (not metadata endpoints)
    allow_private: bool = False
    #: host names (``api.example.org``, ``*.example.org``), IP addresses or CIDRs; empty: any
    #: public host
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _ = self.networks, self.host_patterns  # reject a bad entry now, not at the first call

    @cached_property
    def networks(self) -> tuple[IPNetwork, ...]:
        found = []
        for entry in self.allowed_hosts:
            if "/" in entry or parse_ip(entry) is not None:
                try:
                    found.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
                except ValueError as exc:
                    raise ValueError(f"allowed_hosts: {entry!r} is not a valid CIDR") from exc
        return tuple(found)

    @cached_property
    def host_patterns(self) -> tuple[str, ...]:
        names = [e for e in self.allowed_hosts if "/" not in e and parse_ip(e) is None]
        for name in names:
            label = name.removeprefix("*.")
            if not label or "*" in label or any(c in label for c in " :/@?#"):
                raise ValueError(f"allowed_hosts: {name!r} is not a host name or *.domain")
        return tuple(_normalise_host(name) for name in names)

    def host_allowed(self, host: str) -> bool:
        """``host`` matches a name entry exactly or as a subdomain of a ``*.`` entry."""
        host = _normalise_host(host)
        for pattern in self.host_patterns:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False

    def in_networks(self, address: IPAddress) -> bool:
        candidates = [address, embedded_ipv4(address)]
        return any(a is not None and a in net for a in candidates for net in self.networks)

    def verdict(self, host: str, address: IPAddress) -> str | None:
        """``None`` if ``host`` may be called at ``address``, else why not (for the error)."""
        kind = classify_address(address)
        listed = self.in_networks(address)
        if kind in ALWAYS_BLOCKED:
            return f"{kind} addresses are never called"
        if kind is AddressClass.METADATA and not listed:
            return "cloud metadata endpoints are blocked unless a CIDR in allowed_hosts names them"
        if kind in PRIVATE_CLASSES and not (self.allow_private or listed):
            return (
                f"{kind} addresses are blocked "
                "(set JOBQUEUE_ALLOW_PRIVATE_NETWORKS=true or list the CIDR in allowed_hosts)"
            )
        if self.allowed_hosts and not (listed or self.host_allowed(host)):
            return "the host is not in JOBQUEUE_ALLOWED_HOSTS"
        return None


def _show(address: IPAddress) -> str:
    mapped = getattr(address, "ipv4_mapped", None)
    return f"::ffff:{mapped}" if mapped is not None else str(address)


def check_addresses(host: str, addresses: Iterable[str | IPAddress], policy: TargetPolicy) -> None:
    """Raise ``HttpError("blocked_target")`` naming host and address unless all are allowed."""
    seen = False
    for raw in addresses:
        seen = True
        address = raw if not isinstance(raw, str) else parse_ip(raw)
        if address is None:
            raise HttpError(
                "blocked_target", f"target {host!r} resolved to {raw!r}, not an IP address"
            )
        reason = policy.verdict(host, address)
        if reason is not None:
            kind = classify_address(address)
            shown = _show(address)
            what = (
                f"target address {shown} ({kind})"
                if parse_ip(host) is not None
                else f"target host {host!r} resolves to {shown} ({kind}), which"
            )
            raise HttpError("blocked_target", f"{what} is blocked by the target policy: {reason}")
    if not seen:
        raise HttpError("network", f"target {host!r} resolved to no address")


async def system_resolve(host: str) -> list[str]:
    """Every address the system resolver gives for ``host`` (IPv4 and IPv6)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, kw_only=True)
class CheckedTarget:
    """A URL that passed the target policy, and the addresses it was judged at."""

    url: URL
    #: the host as in the URL (IDNA-encoded, lower case; brackets stripped from IPv6)
    host: str
    #: the checked addresses, in resolver order: connect only to these (DNS rebinding)
    addresses: tuple[str, ...]


async def check_url(
    url: str | URL, policy: TargetPolicy, *, resolve: Resolver | None = None
) -> CheckedTarget:
    """Check one outgoing URL against ``policy``: the guard every outgoing request goes through.

    The URL must be absolute ``http``/``https`` with a canonical host (``invalid_request``);
    an IP literal is judged as it is, a name is resolved (``resolve``, default the system
    resolver) and every address it resolves to must be allowed (``blocked_target``, naming host
    and address). A name that does not resolve raises ``network``. Connect to
    ``CheckedTarget.addresses`` only: resolving again could give a rebinding DNS server's second
    answer.
    """
    target = parse_target_url(url)
    host = target.raw_host or ""
    literal = parse_ip(host)
    if literal is not None:
        check_addresses(host, [literal], policy)
        return CheckedTarget(url=target, host=host, addresses=(str(literal),))
    try:
        addresses = await (resolve or system_resolve)(host)
    except OSError as exc:
        raise HttpError("network", f"cannot resolve host {host!r}: {exc}") from exc
    check_addresses(host, addresses, policy)
    return CheckedTarget(url=target, host=host, addresses=tuple(str(a) for a in addresses))
