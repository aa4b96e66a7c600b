"""Removing channel secrets from error text before it leaves the deliverer.

Job events, dead-letter headers and logs carry error text that third-party
libraries build, and those often quote the request URL. Where a URL is itself a
secret (a Slack or Teams webhook URL embeds the token), every form of it that a
library may print is replaced, not only the exact string.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

REDACTED = "[redacted]"

# Shorter values (a port, a flag) would blank out unrelated words of the text.
MIN_SECRET_CHARS = 4


def secret_values(secrets: Any) -> tuple[str, ...]:
    """Every string to remove for a channel's secrets, longest first."""
    if isinstance(secrets, BaseModel):
        secrets = secrets.model_dump(mode="json")
    found: list[str] = []
    _collect(secrets, found)
    variants: set[str] = set()
    for value in found:
        variants |= _variants(value)
    usable = (v for v in variants if len(v) >= MIN_SECRET_CHARS)
    return tuple(sorted(usable, key=len, reverse=True))


def redact(text: str | None, secrets: tuple[str, ...]) -> str | None:
    """``text`` with every secret value replaced by a marker."""
    if not text:
        return text
    for value in secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


def _variants(value: str) -> set[str]:
    variants = {value, value.rstrip("/")}
    if value.startswith("whsec_"):
        variants.add(value.removeprefix("whsec_"))
    parts = urlsplit(value)
    if parts.scheme and parts.netloc:
        # Libraries print URLs normalised or cut; the path and query carry the token.
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(tail.strip("/")) >= MIN_SECRET_CHARS:
            variants |= {tail, tail.strip("/")}
        if parts.query:
            variants.add(parts.query)
    return variants
