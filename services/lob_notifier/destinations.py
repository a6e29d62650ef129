"""Where webhooks may go: public https receivers, and what the operator names.

    policy = DestinationPolicy.parse("10.20.0.0/16,hooks.internal")  # the allow-list setting
    await policy.check("http://169.254.169.254/latest")             # raises Refused: must use https
    target = await policy.resolve("https://crm.example/hook")       # Target, or raises Refused

By default a receiver must be reached over `https` at a public address. A
destination whose name or any resolved address is loopback, link-local
(169.254.0.0/16, where cloud metadata services answer; fe80::/10),
private (RFC 1918, fc00::/7), shared/carrier-grade (100.64.0.0/10, used for
pod networks), unspecified, multicast or otherwise reserved is refused, so a
caller allowed to add subscribers cannot make the notifier call the node's
metadata service, the cluster's internal services or the gateway's admin
port. The operator's allow-list (CIDRs and host names) opens exactly those
destinations, over http or https: in-cluster receivers often speak plain
http, and the embedded default lists loopback for its own receivers.

The check runs when a subscriber is created and again before every
delivery, on the addresses the name resolves to then; the request goes to
the address that was checked (the Host header and TLS name stay the
host's), so a name that re-resolves to an internal address between the
check and the connection (DNS rebinding) does not get through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

from services.common.settings import ConfigError

__all__ = ["ALLOW_SETTING", "DestinationPolicy", "Refused", "Target"]

ALLOW_SETTING = "NOTIFIER_WEBHOOK_ALLOWED_DESTINATIONS"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class Refused(Exception):
    """The destination is not allowed; the message says why (without the URL's path or query)."""


class Unresolved(Refused):
    """The host name does not resolve (now)."""


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `address`, present `host` (Host header and TLS name)."""

    url: str  # the URL with the checked address in place of the host name
    host: str
    host_header: str  # the original `host[:port]`
    address: str


def _kind(address: IPAddress) -> str | None:
    """Why an address is not a public destination, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _kind(address.ipv4_mapped)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if address in _SHARED:
        return "a shared address (100.64.0.0/10, used by cluster networks)"
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return "a private address (fc00::/7)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address (RFC 1918 or another non-public range)"
    if not address.is_global:
        return "a non-public address"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class DestinationPolicy:
    def __init__(
        self, networks: tuple[IPNetwork, ...] = (), hosts: frozenset[str] = frozenset()
    ) -> None:
        self.networks = networks
        self.hosts = hosts

    @classmethod
    def parse(cls, value: str | None) -> DestinationPolicy:
        """The allow-list setting: comma-separated CIDRs (or single addresses) and host names."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in (value or "").split(","):
            item = raw.strip()
            if not item:
                continue
            if item[0].isdigit() or ":" in item:
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ConfigError(
                        f"{ALLOW_SETTING}: {item!r} is not a CIDR such as 10.0.0.0/8"
                    ) from None
            elif all(part.isalnum() or "-" in part for part in item.split(".") if part):
                hosts.add(item.lower().rstrip("."))
            else:
                raise ConfigError(f"{ALLOW_SETTING}: {item!r} is neither a CIDR nor a host name")
        return cls(tuple(networks), frozenset(hosts))

    def describe(self) -> str:
        items = [str(n) for n in self.networks] + sorted(self.hosts)
        return ", ".join(items) or "nothing"

    def _named(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def _allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def _https_problem(self) -> str:
        return f"must use https (http is allowed only to destinations named in {ALLOW_SETTING})"

    async def check(self, url: str) -> None:
        """For a new subscriber: refuses what is refused now, but accepts a name
        that does not resolve yet (the receiver may not exist yet; every
        delivery checks again), over https unless the allow-list names it."""
        try:
            await self.resolve(url)
        except Unresolved:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "https" and not self._named(parts.hostname or ""):
                raise Refused(self._https_problem()) from None

    async def resolve(self, url: str) -> Target:
        """The address to connect to, checked; raises Refused naming the reason."""
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        literal = _literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError):
                raise Unresolved(f"{host} does not resolve") from None
            addresses = []
            for info in infos:
                found = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                if found not in addresses:
                    addresses.append(found)
            if not addresses:
                raise Unresolved(f"{host} does not resolve")
        # Named by the operator: the host itself, or every address it resolves to.
        listed = self._named(host) or all(self._allowed(a) for a in addresses)
        if parts.scheme != "https" and not listed:
            raise Refused(self._https_problem())
        if not listed:
            # Every address must pass: a resolver may answer them in any order.
            for address in addresses:
                kind = _kind(address)
                if kind is not None and not self._allowed(address):
                    subject = f"{host} is" if literal is not None else f"{host} resolves to"
                    raise Refused(
                        f"{subject} {kind}; only destinations named in {ALLOW_SETTING} may be"
                    )
        chosen = addresses[0]
        shown = f"[{chosen}]" if chosen.version == 6 else str(chosen)
        netloc = f"{shown}:{port}"
        pinned = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return Target(url=pinned, host=host, host_header=parts.netloc, address=str(chosen))
