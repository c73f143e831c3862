"""network: which addresses an action may connect to.

Every outbound request of every action (HTTP through :mod:`openlam.actions.httpkit`, the
browser's navigations and sub-requests) is checked here: the host is resolved, and EVERY
address it resolves to must be public — not loopback, private, link-local, unique-local,
multicast, reserved or unspecified, whatever form it is written in (IPv4-mapped and
IPv4-compatible IPv6, 6to4, Teredo and NAT64 are judged by the IPv4 address inside). This
is the workspace's protection against server-side request forgery: a plan (or a page, or
a redirect) cannot make an action reach the machine's own services, the cloud metadata
endpoint (169.254.169.254) or the local network.

The user opens exceptions in ``openlam.toml``::

    [network]
    allow_private = false                          # true: no address checks at all
    allow_networks = ["10.20.0.0/16", "::1/128"]   # these networks are reachable
    allow_hosts = ["intranet.example", "*.corp.example"]  # these names, whatever they resolve to

``[web] allow_private`` and ``[web] allow_networks`` are read too (a deprecated alias from
before ``[network]`` existed; both tables add up).

An endpoint the user configured — a Stripe ``base_url``, a SearXNG or Mastodon server, a
webhook URL kept as a secret, an MCP server's or OpenAPI service's URL — is reachable
whatever its address: the user chose it, no plan did (the plan cannot change openlam.toml
or the secrets). Redirects away from it are checked like any other request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from openlam.errors import ActionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (RFC 4291 §2.5.5.1)
TABLE = "network"
DEPRECATED_TABLE = "web"


class AddressRefused(ActionError):
    """A connection the address rules forbid; nothing was sent."""


@dataclass(frozen=True)
class NetworkRules:
    """The ``[network]`` table of openlam.toml (plus the deprecated ``[web]`` keys)."""

    allow_private: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> NetworkRules:
        """The rules of a workspace; no settings (or no table) means the strict default."""
        raw = getattr(settings, "raw", None) or {}
        allow_private = False
        networks: list[IPNetwork] = []
        hosts: list[str] = []
        for table in (TABLE, DEPRECATED_TABLE):
            section = raw.get(table, {})
            if not isinstance(section, dict):
                raise ActionError(f"[{table}] in openlam.toml must be a table")
            try:
                if "allow_private" in section:
                    value = section["allow_private"]
                    if not isinstance(value, bool):
                        raise ValueError(f"allow_private must be true or false, not {value!r}")
                    allow_private = allow_private or value
                networks += [
                    ipaddress.ip_network(str(n), strict=False)
                    for n in _strings(section, "allow_networks")
                ]
                if table == TABLE:
                    hosts += [
                        h.strip().lower().rstrip(".")
                        for h in _strings(section, "allow_hosts")
                        if h.strip()
                    ]
            except (TypeError, ValueError) as exc:
                raise ActionError(
                    f"[{table}] in openlam.toml is invalid: {exc}; allow_private "
                    "is true or false, allow_networks a list of networks such "
                    'as "10.0.0.0/8", allow_hosts a list of host names'
                ) from None
        return cls(allow_private, tuple(networks), tuple(hosts))

    def trusting(self, urls: Iterable[str]) -> NetworkRules:
        """These rules, plus the hosts of ``urls`` allowed whatever they resolve to: for an
        endpoint the user configured (a Stripe base_url, a webhook URL kept as a secret),
        which no plan, page or redirect chose."""
        hosts = [urlsplit(u).hostname or "" for u in urls]
        extra = tuple(h.lower().rstrip(".") for h in hosts if h)
        return replace(self, allow_hosts=self.allow_hosts + extra) if extra else self

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is named in ``allow_hosts`` (exactly, or by a ``*.`` suffix)."""
        name = host.strip("[]").lower().rstrip(".")
        return any(
            name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in self.allow_hosts
        )

    def refusal(self, address: IPAddress) -> str | None:
        """None if ``address`` may be reached, else the kind of address it is."""
        if self.allow_private or any(address in net for net in self.allow_networks):
            return None
        return non_public_kind(address)


def _strings(section: dict[str, Any], key: str) -> list[str]:
    value = section.get(key, [])
    if isinstance(value, str) or not isinstance(value, list):
        raise ValueError(f"{key} must be a list, not {value!r}")
    return [str(v) for v in value]


def non_public_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is (``"loopback"``…), or None if public.

    IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, Teredo, NAT64) are
    judged by the IPv4 address inside them; an IPv4-compatible address is refused even
    around a public IPv4 address (the form is deprecated and no public host uses it).
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is None and any(address in net for net in NAT64):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        compatible = address in IPV4_COMPATIBLE and int(address) > 1
        if embedded is None and compatible:
            embedded = ipaddress.IPv4Address(int(address))
        if embedded is not None and (kind := non_public_kind(embedded)):
            return kind
        if compatible:
            return "reserved"
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved or not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def literal(host: str) -> IPAddress | None:
    """The address ``host`` is, when it is an IP literal (``[::1]`` too), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order (an IP literal is
    itself). Tests replace this function to stand in for DNS."""
    if (address := literal(host)) is not None:
        return [address]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ActionError(
            f"cannot resolve the host {host!r} ({exc.strerror})",
            transient=exc.errno == socket.EAI_AGAIN,
        ) from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ActionError(f"the host {host!r} has no address")
    return addresses


async def checked_addresses(
    rules: NetworkRules, host: str, port: int, what: str = ""
) -> list[IPAddress]:
    """Resolve ``host`` and check every address it resolves to; returns them all, or
    raises :class:`AddressRefused` naming the first refused one and how to allow it.

    ``what`` names the request in the message (default ``host:port``)."""
    addresses = await resolve(host, port)
    if rules.host_allowed(host):
        return addresses
    for address in addresses:
        kind = rules.refusal(address)
        if kind:
            raise AddressRefused(refusal_message(host, address, kind, what or f"{host}:{port}"))
    return addresses


def refusal_message(host: str, address: IPAddress, kind: str, what: str) -> str:
    bare = host.strip("[]")
    named = literal(host) is None
    which = (
        f"{bare} resolves to {address}, a {kind} address"
        if named
        else f"{bare} is a {kind} address"
    )
    also = f', or "{bare}" to [{TABLE}] allow_hosts' if named else ""
    return (
        f"refused to connect to {what}: {which} (SSRF protection); to allow it, add "
        f'"{ipaddress.ip_network(address)}" to [{TABLE}] allow_networks in openlam.toml'
        f"{also}, or set [{TABLE}] allow_private = true"
    )
