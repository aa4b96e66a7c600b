"""The one set of private-target rules the API and every sender apply."""

from __future__ import annotations

import httpx
import pytest

from services.deliverer.outcome import OutcomeKind, Reason
from services.deliverer.targets import check_target, is_public, refused_host


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("169.254.169.254", False),  # link-local: the cloud metadata service
        ("192.0.0.192", False),  # IETF protocol assignments (old OCI metadata)
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("fd00:ec2::254", False),
        ("ff02::1", False),
        # IPv6 that carries IPv4: judged by the IPv4 address inside.
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 (RFC 8215)
        ("::7f00:1", False),  # deprecated IPv4-compatible form
        ("2001::1", False),  # Teredo
    ],
)
def test_address_rules(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize(
    "host",
    ["localhost", "api.localhost", "metadata.google.internal", "[::1]", "127.0.0.1"],
)
async def test_internal_hosts_are_refused_without_connecting(host: str) -> None:
    outcome = await refused_host(host, allow_private=False)

    assert outcome is not None
    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )
    assert host in outcome.error


async def test_everything_passes_when_the_operator_allows_private_targets() -> None:
    assert await refused_host("127.0.0.1", allow_private=True) is None
    assert await check_target(httpx.URL("http://[::1]/"), allow_private=True) is None


async def test_a_public_address_passes() -> None:
    assert await check_target(httpx.URL("https://8.8.8.8/hook"), False) is None


async def test_a_name_that_does_not_resolve_is_retryable() -> None:
    outcome = await refused_host("no-such-host.invalid", allow_private=False)

    assert outcome is not None
    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.RETRYABLE,
        Reason.CONNECTION_ERROR,
    )


async def test_nat64_in_a_url_is_judged_by_its_ipv4_address() -> None:
    outcome = await check_target(httpx.URL("http://[64:ff9b::7f00:1]:8080/"), False)

    assert outcome is not None and outcome.reason is Reason.INVALID_CONFIG
