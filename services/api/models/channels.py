"""Channel bodies and answers, built from each channel type's own models.

The typed ``Config`` and ``Secrets`` of every channel package (``CHANNEL_SPECS``)
define what a channel accepts, so a field added there is accepted, validated
and documented here without any change to the API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from services.deliverer.channels import CHANNEL_SPECS, ChannelSpec
from switchboard.domain import ChannelType

ChannelName = Annotated[
    str,
    Field(
        min_length=1, max_length=200, description="A name for people, 1-200 characters."
    ),
]

EXAMPLES: dict[str, dict[str, Any]] = {
    "slack": {
        "config": {},
        "secrets": {"webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX"},
    },
    "pagerduty": {
        "config": {"component": "core-router", "group": "network"},
        "secrets": {"routing_key": "0123456789abcdef0123456789abcdef"},
    },
    "teams": {
        "config": {},
        "secrets": {
            "webhook_url": "https://prod-00.westeurope.logic.azure.com/workflows/"
            "abc/triggers/manual/paths/invoke?sig=XXXX"
        },
    },
    "webhook": {
        "config": {
            "url": "https://alerts.example.com/hooks/switchboard",
            "headers": {"X-Team": "noc"},
        },
        "secrets": {
            "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "secret_headers": {"Authorization": "Bearer 0123456789abcdef"},
        },
    },
    "snmp": {
        "config": {"host": "traps.example.com", "port": 162, "version": "v2c"},
        "secrets": {"community": "noc-traps"},
    },
    "email": {
        "config": {
            "host": "smtp.example.com",
            "port": 587,
            "security": "starttls",
            "username": "alerts",
            "from_address": "alerts@example.com",
            "to": ["noc@example.com"],
        },
        "secrets": {"password": "smtp-password"},
    },
    "mqtt": {
        "config": {
            "host": "mqtt.example.com",
            "port": 8883,
            "tls": True,
            "username": "switchboard",
            "topic_template": "alerts/{{ tenant_id }}/{{ severity }}",
            "qos": 1,
        },
        "secrets": {"password": "mqtt-password"},
    },
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _title(channel_type: ChannelType) -> str:
    return {"pagerduty": "PagerDuty", "snmp": "Snmp", "mqtt": "Mqtt"}.get(
        str(channel_type), str(channel_type).capitalize()
    )


def _required(model: type[BaseModel]) -> bool:
    return any(field.is_required() for field in model.model_fields.values())


def _part(model: type[BaseModel], description: str) -> Any:
    if _required(model):
        return (model, Field(description=description))
    return (model, Field(default_factory=model, description=description))


def _named(model: type[BaseModel], name: str) -> type[BaseModel]:
    # A subclass under a readable name keeps every field and validator and gives
    # the OpenAPI document "WebhookConfig" instead of the module path.
    return create_model(name, __base__=model, __doc__=model.__doc__)


def _config_model(spec: ChannelSpec) -> type[BaseModel]:
    return _named(spec.config_model, f"{_title(spec.channel_type)}Config")


def _secrets_model(spec: ChannelSpec) -> type[BaseModel]:
    return _named(spec.secrets_model, f"{_title(spec.channel_type)}Secrets")


def _create_model(spec: ChannelSpec) -> type[BaseModel]:
    kind = str(spec.channel_type)
    return create_model(
        f"{_title(spec.channel_type)}ChannelCreate",
        __base__=_Strict,
        __doc__=f"A new {kind} channel.",
        channel_type=(Literal[kind], Field(description="The channel type.")),
        name=(ChannelName, Field(description="A name for people.")),
        enabled=(bool, Field(True, description="Whether rules may deliver to it.")),
        config=_part(
            CONFIG_MODELS[spec.channel_type], f"The {kind} settings (not secret)."
        ),
        secrets=_part(
            SECRETS_MODELS[spec.channel_type],
            f"The {kind} secrets; write-only, encrypted at rest, never returned.",
        ),
    )


def _secrets_set_model(spec: ChannelSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (bool, Field(description=f"Whether `{name}` is set."))
        for name in spec.secrets_model.model_fields
    }
    return create_model(
        f"{_title(spec.channel_type)}SecretsSet",
        __doc__="Which secrets are set; their values are never returned.",
        **fields,
    )


def _public_model(spec: ChannelSpec) -> type[BaseModel]:
    kind = str(spec.channel_type)
    return create_model(
        f"{_title(spec.channel_type)}ChannelPublic",
        __doc__=f"A {kind} channel as the API shows it.",
        id=(uuid.UUID, Field(description="The channel id.")),
        channel_type=(Literal[kind], Field(description="The channel type.")),
        name=(str, Field(description="A name for people.")),
        enabled=(bool, Field(description="Whether rules may deliver to it.")),
        config=(
            CONFIG_MODELS[spec.channel_type],
            Field(description=f"The {kind} settings."),
        ),
        secrets_set=(
            _secrets_set_model(spec),
            Field(description="Which secrets are set."),
        ),
        created_at=(datetime, Field(description="When it was created.")),
        updated_at=(datetime, Field(description="When it last changed.")),
    )


CONFIG_MODELS = {t: _config_model(spec) for t, spec in CHANNEL_SPECS.items()}
SECRETS_MODELS = {t: _secrets_model(spec) for t, spec in CHANNEL_SPECS.items()}
CREATE_MODELS = {t: _create_model(spec) for t, spec in CHANNEL_SPECS.items()}
PUBLIC_MODELS = {t: _public_model(spec) for t, spec in CHANNEL_SPECS.items()}

ChannelCreate = Annotated[
    Union[tuple(CREATE_MODELS.values())],  # noqa: UP007 - built at run time
    Field(discriminator="channel_type"),
]
ChannelPublic = Annotated[
    Union[tuple(PUBLIC_MODELS.values())],  # noqa: UP007 - built at run time
    Field(discriminator="channel_type"),
]


class ChannelUpdate(_Strict):
    """A partial change; omitted fields stay as they are.

    ``config`` and ``secrets`` are merged into the stored ones field by field and
    the result is validated against the channel type's models; a field given as
    null returns to its default (or, for an optional secret, is cleared).
    """

    # Left out means unchanged; null is refused, since a channel always has a
    # name and a state.
    name: ChannelName = Field(None, description="A new name.")
    enabled: bool = Field(None, description="Enable or disable the channel.")
    config: dict[str, Any] | None = Field(
        None, description="Settings to change, as in the channel type's `config`."
    )
    secrets: dict[str, Any] | None = Field(
        None, description="Secrets to set, or null to clear an optional one."
    )


class ChannelList(BaseModel):
    """Every channel of the tenant, by name."""

    items: list[ChannelPublic] = Field(description="The channels.")


class TestQueued(BaseModel):
    """A test notification on its way; follow it as a job."""

    job_id: uuid.UUID = Field(description="The job to follow under notification-jobs.")
    event_id: uuid.UUID = Field(description="The synthetic alert event's id.")


def create_examples() -> dict[str, dict[str, Any]]:
    """One OpenAPI example request body per channel type."""
    return {
        kind: {
            "summary": f"A {kind} channel",
            "value": {
                "channel_type": kind,
                "name": f"NOC {kind}",
                "enabled": True,
                **example,
            },
        }
        for kind, example in EXAMPLES.items()
    }
