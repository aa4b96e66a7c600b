"""The private-target check on every kind of host a channel can name."""

from __future__ import annotations

import pytest

from services.api.models.channels import CONFIG_MODELS, SECRETS_MODELS
from services.api.targets import refused_targets
from switchboard.domain import ChannelType


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
