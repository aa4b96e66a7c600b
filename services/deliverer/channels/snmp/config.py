"""Configuration of the SNMP trap channel (v2c community or v3 USM)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from services.deliverer.channels.base import ChannelConfigBase, ChannelSecretsBase

# Placeholder private enterprise number; operators with their own IANA number set
# enterprise_oid. Documented in mibs/SWITCHBOARD-MIB.txt.
DEFAULT_ENTERPRISE_OID = "1.3.6.1.4.1.99999"
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class Config(ChannelConfigBase):
    """Target, SNMP version and security, and the enterprise OID."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(162, ge=1, le=65535)
    version: Literal["v2c", "v3"] = "v2c"
    notification: Literal["trap", "inform"] = "trap"
    enterprise_oid: str = DEFAULT_ENTERPRISE_OID
    username: str | None = Field(None, max_length=32)
    auth_protocol: Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5"] | None = (
        None
    )
    priv_protocol: Literal["AES", "AES192", "AES256", "DES"] | None = None

    @field_validator("enterprise_oid")
    @classmethod
    def _check_oid(cls, value: str) -> str:
        if not _OID.match(value):
            raise ValueError(f"not a well-formed OID: {value!r}")
        return value

    @model_validator(mode="after")
    def _check_v3(self) -> Config:
        if self.version == "v3" and not self.username:
            raise ValueError("SNMPv3 needs a username")
        if self.priv_protocol and not self.auth_protocol:
            raise ValueError("privacy needs authentication (set auth_protocol)")
        return self


class Secrets(ChannelSecretsBase):
    """Community string (v2c) or USM keys (v3)."""

    community: str | None = Field(None, min_length=1, max_length=255)
    auth_key: str | None = Field(None, min_length=8, max_length=255)
    priv_key: str | None = Field(None, min_length=8, max_length=255)
