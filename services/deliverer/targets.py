"""Refusing channel targets on loopback, private, link-local or metadata addresses.

Customers configure target URLs and hosts; without this check a channel could
make the deliverer call services inside the operator's network. The rules live
here, once, for both places that apply them: the API when a channel is saved
(``services.api.targets``), and every sender when it sends, since a name that
did not resolve at save time, or resolves elsewhere now, must not reach the
operator's network either. Operators of a private deployment (and the tests)
allow such targets with ``SWITCHBOARD_ALLOW_PRIVATE_TARGETS=true``.

The rules:

- a host named ``localhost``, ``*.localhost`` or a cloud metadata name is
  refused by its name (metadata names resolve only inside the cloud);
- every address the host resolves to must be public: globally routable
  unicast, neither loopback, private, shared, link-local (which holds the
  169.254.169.254 metadata address), unspecified, reserved nor multicast;
- an IPv6 address that carries an IPv4 address (IPv4-mapped ``::ffff:0:0/96``,
  NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged by that IPv4 address,
  since that is where its packets end up.

The check and the connection resolve separately; a name that changes its
answer in between (DNS rebinding) is not caught here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from services.deliverer.outcome import Outcome, Reason

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata names that only resolve from inside the cloud, so DNS outside
# would not reveal them.
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
)

# RFC 6052's well-known prefix: the last 32 bits are the IPv4 address.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_IPV4_MASK = 0xFFFF_FFFF

# IETF protocol assignments (RFC 6890), not globally reachable; older Pythons
# count only parts of it as private, and Oracle Cloud's legacy metadata
# address 192.0.0.192 is in it.
NOT_PUBLIC_NETWORKS = (ipaddress.IPv4Network("192.0.0.0/24"),)


def bare_host(host: str) -> str:
    """``host`` as resolvers take it: no IPv6 brackets, no trailing dot, lowercase."""
    return host.strip().strip("[]").rstrip(".").lower()


def name_problem(host: str) -> str | None:
    """Why ``host`` is refused by its name alone, or None."""
    name = bare_host(host)
    if name in METADATA_HOSTS or name == "localhost" or name.endswith(".localhost"):
        return f"{host} is an internal host; targets must be public"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells, or None for a name."""
    try:
        return ipaddress.ip_address(bare_host(host).split("%", 1)[0])
    except ValueError:
        return None


def address_problem(host: str, addresses: list[str]) -> str | None:
    """Why ``host``, resolving to ``addresses``, is refused (its first bad one)."""
    for address in addresses:
        if is_public(address):
            continue
        if literal_address(host) is not None:
            return f"{host} is not a public address"
        return f"{host} resolves to {address}, which is not a public address"
    return None


def is_public(address: str | IPAddress) -> bool:
    """Whether an address is public, globally routable unicast (see the module)."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        ip = embedded_ipv4(ip) or ip
    if any(ip in network for network in NOT_PUBLIC_NETWORKS):
        return False
    # is_global is False for loopback, RFC 1918, shared (100.64/10), link-local,
    # unspecified and documentation nets; multicast and (for IPv6, e.g. the
    # deprecated IPv4-compatible ::/96) reserved ranges can still pass it.
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 or 6to4 address carries, or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & NAT64_IPV4_MASK)
    return ip.sixtofour


async def refused_host(host: str, allow_private: bool) -> Outcome | None:
    """None if a sender may connect to ``host``; otherwise the outcome refusing it.

    A refused host is a permanent ``invalid_config``; a name that does not
    resolve now is a retryable ``connection_error``, as connecting would be.
    """
    if allow_private:
        return None
    problem = name_problem(host)
    if problem is None:
        try:
            addresses = await _resolve(host)
        except (OSError, UnicodeError) as error:
            detail = getattr(error, "strerror", None) or str(error)
            return Outcome.retryable(
                Reason.CONNECTION_ERROR, f"cannot resolve {host}: {detail}"
            )
        problem = address_problem(host, addresses)
    if problem is None:
        return None
    return Outcome.permanent(
        Reason.INVALID_CONFIG, f"{problem}; private targets are not allowed"
    )


async def check_target(url: httpx.URL, allow_private: bool) -> Outcome | None:
    """None if ``url`` may be called; otherwise the outcome that refuses it."""
    # The ASCII form: resolvers take international names in punycode.
    return await refused_host(url.raw_host.decode("ascii"), allow_private)


async def _resolve(host: str) -> list[str]:
    literal = literal_address(host)
    if literal is not None:
        return [str(literal)]
    infos = await asyncio.get_running_loop().getaddrinfo(
        bare_host(host), None, type=socket.SOCK_STREAM
    )
    return [str(info[4][0]) for info in infos]
