"""The private-target check on every kind of host a channel can name."""

from __future__ import annotations

import pytest

from services.api.models.channels import CONFIG_MODELS, SECRETS_MODELS
from services.api.targets import refused_targets
from switchboard.domain import ChannelType

# What each socket-based channel needs besides its host to be valid.
HOST_CHANNEL_FIELDS = {
    "email": {"from_address": "alerts@example.com", "to": ["noc@example.net"]},
    "snmp": {},
    "mqtt": {},
}
HOST_CHANNEL_SECRETS = {"email": {}, "snmp": {"community": "public"}, "mqtt": {}}


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://8.8.8.8/hook", False),
        ("https://hooks.example.com/hook", False),
        ("http://127.0.0.1/", True),
        ("http://127.1.2.3:8080/", True),
        ("http://[::1]/", True),
        ("http://10.0.0.8/", True),
        ("http://172.16.5.4/", True),
        ("http://192.168.0.1/", True),
        ("http://100.64.0.1/", True),
        ("http://169.254.169.254/latest/meta-data/", True),
        ("http://[fd00:ec2::254]/", True),
        ("http://[fe80::1]/", True),
        ("http://[::ffff:127.0.0.1]/", True),
        ("http://[64:ff9b::7f00:1]/", True),  # NAT64 of 127.0.0.1
        ("http://[64:ff9b::808:808]/", False),  # NAT64 of 8.8.8.8
        ("http://[2002:a9fe:a9fe::]/", True),  # 6to4 of 169.254.169.254
        ("http://[2002:808:808::1]/", False),  # 6to4 of 8.8.8.8
        ("http://[::7f00:1]/", True),  # IPv4-compatible, deprecated
        ("http://192.0.0.192/", True),
        ("http://0.0.0.0/", True),
        ("http://224.0.0.1/", True),
        ("http://localhost:9000/", True),
        ("http://api.localhost/", True),
        ("http://metadata.google.internal/", True),
    ],
)
def test_webhook_urls(url: str, refused: bool) -> None:
    config = CONFIG_MODELS[ChannelType.WEBHOOK].model_validate({"url": url})
    secrets = SECRETS_MODELS[ChannelType.WEBHOOK]()

    problems = refused_targets("webhook", config, secrets)

    assert [field for field, _ in problems] == (["config.url"] if refused else [])


def test_secret_urls_are_checked_without_revealing_the_secret() -> None:
    config = CONFIG_MODELS[ChannelType.SLACK]()
    secrets = SECRETS_MODELS[ChannelType.SLACK].model_validate(
        {"webhook_url": "http://10.1.1.1/services/T0/B0/s3cr3t-token"}
    )

    problems = refused_targets("slack", config, secrets)

    assert [field for field, _ in problems] == ["secrets.webhook_url"]
    assert "s3cr3t" not in problems[0][1]


@pytest.mark.parametrize("channel_type", ["email", "snmp", "mqtt"])
@pytest.mark.parametrize("host", ["127.0.0.1", "64:ff9b::a00:1", "localhost"])
def test_socket_hosts(channel_type: str, host: str) -> None:
    config = CONFIG_MODELS[ChannelType(channel_type)].model_validate(
        {"host": host, **HOST_CHANNEL_FIELDS[channel_type]}
    )
    secrets = SECRETS_MODELS[ChannelType(channel_type)].model_validate(
        HOST_CHANNEL_SECRETS[channel_type]
    )

    problems = refused_targets(channel_type, config, secrets)

    assert [field for field, _ in problems] == ["config.host"]
