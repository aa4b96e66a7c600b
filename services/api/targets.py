"""Refuse channel targets on loopback, private, link-local or metadata addresses.

A customer must not be able to point a webhook (or an SMTP, SNMP or MQTT host) at
the operator's own network. Every URL field of a channel's config and secrets,
and the ``host`` field of the socket-based channel types, is checked here when
a channel is saved, unless the operator sets ``allow_private_targets``. The
rules are the deliverer's (:mod:`services.deliverer.targets`), which applies
them again at every send.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time

from pydantic import AnyUrl, BaseModel
from pydantic_core import Url

from services.deliverer.targets import (
    address_problem,
    bare_host,
    literal_address,
    name_problem,
)

# Channel types whose config names a host directly instead of a URL.
HOST_FIELD_TYPES = frozenset({"email", "snmp", "mqtt"})
HOST_FIELD = "host"

RESOLVE_TIMEOUT_S = 2.0
# Answers (and failures) are reused for a minute, so a slow resolver delays one
# write per host and minute rather than every write.
RESOLVE_CACHE_S = 60.0
RESOLVE_CACHE_SIZE = 10_000

_resolver = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="resolve")
_resolved: dict[str, tuple[float, list[str]]] = {}


def refused_targets(
    channel_type: str, config: BaseModel, secrets: BaseModel
) -> list[tuple[str, str]]:
    """(field, problem) for every target of a channel on a non-public address."""
    problems = []
    for prefix, model in (("config", config), ("secrets", secrets)):
        for name, host in _hosts(channel_type, model, prefix == "config"):
            problem = _host_problem(host)
            if problem:
                problems.append((f"{prefix}.{name}", problem))
    return problems


def _hosts(
    channel_type: str, model: BaseModel, is_config: bool
) -> list[tuple[str, str]]:
    found = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, AnyUrl | Url) and value.host:
            found.append((name, value.host))
        elif is_config and name == HOST_FIELD and channel_type in HOST_FIELD_TYPES:
            found.append((name, str(value)))
    return found


def _host_problem(host: str) -> str | None:
    return name_problem(host) or address_problem(host, _addresses(host))


def _addresses(host: str) -> list[str]:
    literal = literal_address(host)
    if literal is not None:
        return [str(literal)]
    name = bare_host(host)
    cached = _resolved.get(name)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    addresses = _resolve(name)
    if len(_resolved) >= RESOLVE_CACHE_SIZE:
        _resolved.clear()
    _resolved[name] = (time.monotonic() + RESOLVE_CACHE_S, addresses)
    return addresses


def _resolve(name: str) -> list[str]:
    # A name that does not resolve here cannot reach a private address from here
    # either; deliverers resolve and check again at every send.
    future = _resolver.submit(socket.getaddrinfo, name, None)
    try:
        infos = future.result(timeout=RESOLVE_TIMEOUT_S)
    except (OSError, UnicodeError, concurrent.futures.TimeoutError):
        return []
    return sorted({str(info[4][0]).split("%")[0] for info in infos})
