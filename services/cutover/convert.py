"""Turning an old integration's ``config`` into a channel's config and secrets.

One converter per old type (webhook, snmp, email, mqtt) renames the old keys to
the fields of the channel type's ``Config`` and ``Secrets`` models and adapts
values whose form changed (SNMP version names, the email TLS flag, the webhook
signing secret). Converters do not validate: the result goes through the API's
validation in :mod:`services.cutover.create`, and every problem is reported
under the new field name together with the old key it came from.

Old keys a converter does not know are reported as warnings, never silently
lost; old keys that hold secrets go to ``Secrets`` and are never shown. The old
webhook kept credentials in plain headers and in the URL's user and password;
they move to the channel's encrypted secret headers, since the API refuses them
in plain configuration.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from services.cutover.legacy import LegacyIntegration
from services.deliverer.channels.webhook.config import is_credential_header

# Header names whose values reports mask, wherever they appear: wider than the
# names the webhook channel keeps secret, since a report shows what it cannot
# be sure about.
CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|cookie|password", re.IGNORECASE)
STANDARD_WEBHOOKS_PREFIX = "whsec_"
# Implicit TLS (SMTPS) port; any other port with TLS on means STARTTLS.
SMTPS_PORT = 465
JINJA_MARKERS = ("{{", "{%", "{#")
# The standard ports, for an old config that named none.
SMTP_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": SMTPS_PORT}
MQTT_DEFAULT_PORTS = {False: 1883, True: 8883}


class Unconvertible(Exception):
    """Raised for an integration that no channel type can represent."""

    def __init__(self, field_name: str, problem: str) -> None:
        """Name the old field at fault and the problem."""
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True)
class Draft:
    """A channel before validation: type, config, secrets and what to tell."""

    channel_type: str
    config: dict[str, Any]
    secrets: dict[str, Any] = field(repr=False)
    warnings: tuple[str, ...] = ()
    # (field, problem) found while converting, reported like validation problems.
    problems: tuple[tuple[str, str], ...] = ()
    # New field path ("config.host") -> old key ("config.smtp_host").
    origins: dict[str, str] = field(default_factory=dict)


@dataclass
class _Builder:
    """Collects fields from the old config while remembering where each came from."""

    old: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def get(self, old_key: str) -> Any:
        """The old value (None when missing or null), marking the key as used."""
        self.used.add(old_key)
        return self.old.get(old_key)

    def put(self, part: str, name: str, old_key: str, value: Any) -> None:
        """Set ``part.name`` from ``old_key``; a None value is left to the default."""
        self.origins[f"{part}.{name}"] = f"config.{old_key}"
        if value is not None:
            target = self.config if part == "config" else self.secrets
            target[name] = value

    def copy(self, part: str, name: str, old_key: str | None = None) -> None:
        """Carry an old key over unchanged (under ``name``)."""
        key = old_key or name
        self.put(part, name, key, self.get(key))

    def draft(self, channel_type: str) -> Draft:
        """The finished draft, warning about old keys nobody used."""
        unused = sorted(set(self.old) - self.used)
        if unused:
            self.warnings.append(
                f"old config keys not carried over: {', '.join(unused)}"
            )
        return Draft(
            channel_type,
            self.config,
            self.secrets,
            tuple(self.warnings),
            tuple(self.problems),
            self.origins,
        )


def convert(integration: LegacyIntegration) -> Draft:
    """The channel draft of an old integration; :class:`Unconvertible` if none."""
    converter = CONVERTERS.get(str(integration.type).strip().lower())
    if converter is None:
        raise Unconvertible(
            "type",
            f"unknown integration type {integration.type!r}; Switchboard converts "
            f"{', '.join(sorted(CONVERTERS))}",
        )
    if not isinstance(integration.config, dict):
        raise Unconvertible("config", "config is not a JSON object")
    return converter(_Builder(dict(integration.config)))


def _webhook(old: _Builder) -> Draft:
    url, basic = _without_userinfo(old.get("url"))
    old.put("config", "url", "url", url)
    headers = old.get("headers")
    if headers is None or isinstance(headers, dict):
        _split_headers(old, headers or {}, basic)
    else:
        # Not a map: validation names the old key; the URL's credential stays.
        old.put("config", "headers", "headers", headers)
        secret_headers = {"Authorization": basic} if basic else None
        old.put("secrets", "secret_headers", "url", secret_headers)
    secret = old.get("secret")
    if isinstance(secret, str) and secret:
        old.put("secrets", "signing_secret", "secret", signing_secret(secret))
        old.warnings.append(
            "requests are now signed per Standard Webhooks with the same secret "
            "bytes; receivers verify the webhook-signature header"
        )
    else:
        old.put("secrets", "signing_secret", "secret", secret or None)
    return old.draft("webhook")


def _split_headers(old: _Builder, headers: dict[str, Any], basic: str | None) -> None:
    """Plain headers to the config; credentials to the encrypted secret headers."""
    plain = {k: v for k, v in headers.items() if not is_credential_header(str(k))}
    secret = {k: v for k, v in headers.items() if is_credential_header(str(k))}
    if basic is not None:
        if any(str(k).lower() == "authorization" for k in secret):
            # Two credentials for one request: the operator must choose.
            old.problems.append(
                (
                    "config.url",
                    "the URL has a user and password and the headers an "
                    "Authorization; keep one of them",
                )
            )
        else:
            secret["Authorization"] = basic
            old.warnings.append(
                "the URL's user and password moved to an Authorization: Basic "
                "header in the encrypted secret headers; requests are as before"
            )
    old.put("config", "headers", "headers", plain)
    old.put("secrets", "secret_headers", "headers", secret or None)
    moved = sorted((str(k) for k in headers if str(k) in secret), key=str.lower)
    for name in moved:
        old.warnings.append(
            f"header {name} moved to the encrypted secret headers "
            "(secrets.secret_headers); it is sent as before"
        )


def _without_userinfo(url: Any) -> tuple[Any, str | None]:
    """The URL without user and password, and them as a Basic Authorization value.

    HTTP clients send a URL's user and password as Basic authentication, so the
    header keeps every request as it was while the URL holds no credential.
    """
    if not isinstance(url, str):
        return url, None
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return url, None
    if "@" not in parts.netloc:
        return url, None
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    stripped = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return stripped, f"Basic {token}"


def signing_secret(secret: str) -> str:
    """The old HMAC secret as a Standard Webhooks key over the same bytes."""
    if secret.startswith(STANDARD_WEBHOOKS_PREFIX):
        return secret
    return STANDARD_WEBHOOKS_PREFIX + base64.b64encode(secret.encode()).decode()


def _snmp(old: _Builder) -> Draft:
    old.copy("config", "host")
    old.copy("config", "port")
    version = _snmp_version(old.get("version"))
    if version in (None, "v2c", "v3"):
        old.put("config", "version", "version", version)
    else:
        old.problems.append(
            (
                "config.version",
                f"SNMP version {version!r} is not supported; "
                "Switchboard sends v2c or v3",
            )
        )
    old.copy("config", "username")
    old.put(
        "config",
        "auth_protocol",
        "auth_protocol",
        _protocol(old.get("auth_protocol"), {"SHA1": "SHA", "SHA128": "SHA"}),
    )
    old.put(
        "config",
        "priv_protocol",
        "priv_protocol",
        _protocol(old.get("priv_protocol"), {"AES128": "AES"}),
    )
    # The credentials the version and protocols need are checked as the API
    # checks them at save (the model's secret_problems), under these names.
    for name in ("community", "auth_key", "priv_key"):
        old.copy("secrets", name)
    return old.draft("snmp")


def _snmp_version(value: Any) -> Any:
    """v2c or v3 from the spellings the old system accepted ("2c", "3", "v3")."""
    if value is None:
        return None
    text = str(value).strip().lower().removeprefix("v")
    return {"2c": "v2c", "2": "v2c", "3": "v3"}.get(text, str(value))


def _protocol(value: Any, aliases: dict[str, str]) -> Any:
    if not isinstance(value, str) or not value.strip():
        return None
    name = re.sub(r"[-_ ]", "", value.strip().upper())
    return aliases.get(name, name)


def _email(old: _Builder) -> Draft:
    old.copy("config", "host", "smtp_host")
    port = old.get("smtp_port")
    security = _email_security(old.get("smtp_tls"), port)
    old.put("config", "security", "smtp_tls", security)
    if port is None:
        port = SMTP_DEFAULT_PORTS.get(security)
    old.put("config", "port", "smtp_port", port)
    old.copy("config", "username")
    old.copy("secrets", "password")
    old.copy("config", "from_address")
    old.put("config", "to", "recipients", _recipients(old.get("recipients")))
    return old.draft("email")


def _email_security(value: Any, port: Any) -> Any:
    """none, starttls or tls from the old flag (a boolean or a word)."""
    if value is None:
        return None
    if isinstance(value, bool):
        if not value:
            return "none"
        return "tls" if str(port) == str(SMTPS_PORT) else "starttls"
    word = str(value).strip().lower()
    return {
        "true": "starttls",
        "false": "none",
        "ssl": "tls",
        "implicit": "tls",
        "": "none",
    }.get(word, word)


def _recipients(value: Any) -> Any:
    """A list of addresses; the old system also took one comma-separated string."""
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[,;]", value) if part.strip()]
    return value


def _mqtt(old: _Builder) -> Draft:
    old.copy("config", "host", "broker_host")
    tls = old.get("use_tls")
    old.put("config", "tls", "use_tls", tls)
    port = old.get("broker_port")
    old.put(
        "config",
        "port",
        "broker_port",
        port if port is not None else MQTT_DEFAULT_PORTS[bool(tls)],
    )
    topic = old.get("topic")
    old.put("config", "topic_template", "topic", _literal_template(topic))
    if topic is None:
        # The model has a default topic; publishing somewhere new would be a
        # silent change, so a missing old topic is reported instead.
        old.problems.append(("config.topic_template", "Field required"))
    old.copy("config", "qos")
    old.copy("config", "username")
    old.copy("secrets", "password")
    return old.draft("mqtt")


def _literal_template(topic: Any) -> Any:
    """The old literal topic as a template that renders to exactly itself."""
    if isinstance(topic, str) and any(marker in topic for marker in JINJA_MARKERS):
        return "{% raw %}" + topic + "{% endraw %}"
    return topic


CONVERTERS: dict[str, Callable[[_Builder], Draft]] = {
    "webhook": _webhook,
    "snmp": _snmp,
    "email": _email,
    "mqtt": _mqtt,
}
