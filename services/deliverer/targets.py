"""Refusing URL targets on loopback, private and link-local networks.

Customers configure target URLs; without this check a channel could make the
deliverer call services inside the operator's network. Operators of a private
deployment (and the tests) allow such targets with
``SWITCHBOARD_ALLOW_PRIVATE_TARGETS=true``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from services.deliverer.outcome import Outcome, Reason


def is_public(address: str) -> bool:
    """Whether an IP address is a public, routable unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


async def check_target(url: httpx.URL, allow_private: bool) -> Outcome | None:
    """None if ``url`` may be called; otherwise the outcome that refuses it."""
    if allow_private:
        return None
    host = url.host
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, url.port or 443, type=socket.SOCK_STREAM
            )
        except OSError as error:
            return Outcome.retryable(
                Reason.CONNECTION_ERROR, f"cannot resolve {host}: {error}"
            )
        addresses = [str(info[4][0]) for info in infos]
    if all(is_public(address) for address in addresses):
        return None
    return Outcome.permanent(
        Reason.INVALID_CONFIG, f"target {host} is not a public address"
    )
