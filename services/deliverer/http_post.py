"""POSTing JSON to a vendor endpoint whose URL may be a secret.

Slack and Teams webhook URLs embed their credentials, so nothing here ever
puts a URL into an outcome's error text or a log line. :class:`JsonPoster`
owns one pooled ``httpx.AsyncClient`` per sender and is the single boundary
where transport exceptions become outcomes:

======================================  =======================================
``httpx.TimeoutException`` (connect,    retryable, ``Reason.TIMEOUT``
read, write, pool)
``httpx.NetworkError`` (connect, read,  retryable, ``Reason.CONNECTION_ERROR``
write, close errors)
``httpx.ProtocolError`` (remote or      retryable, ``Reason.CONNECTION_ERROR``
local protocol violations),
``httpx.ProxyError``
``httpx.InvalidURL``,                   permanent, ``Reason.INVALID_CONFIG``
``httpx.UnsupportedProtocol``
any other ``httpx.HTTPError``           retryable, ``Reason.INTERNAL_ERROR``
(a body that does not decode)
name resolution failure                 retryable, ``Reason.CONNECTION_ERROR``
private or loopback target (unless      permanent, ``Reason.INVALID_CONFIG``
``allow_private_targets``; the rules
are :mod:`services.deliverer.targets`)
======================================  =======================================

Responses are classified by the caller's function, so each vendor's error
bodies are read by the channel that knows them. Of a body, at most
:data:`MAX_RESPONSE_BYTES` are read: a target streaming an endless answer
must not hold the attempt until its deadline, nor the process's memory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.deliverer.outcome import Outcome, Reason
from services.deliverer.redact import redact, secret_values
from services.deliverer.targets import refused_host
from switchboard.settings import Settings

# httpx logs every request URL at INFO; webhook URLs carry tokens, so its
# request lines must never reach the handlers.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

USER_AGENT = "Switchboard/0.1 (+alert notifications)"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# Vendors answer with a short status or error document; as for webhooks, more
# is never needed.
MAX_RESPONSE_BYTES = 4096
BODY_FRAMING_HEADERS = frozenset(
    {"content-encoding", "content-length", "transfer-encoding"}
)

Classifier = Callable[[httpx.Response], Outcome]


class JsonPoster:
    """Sends one JSON document per call over a reused connection pool."""

    def __init__(self, settings: Settings) -> None:
        self._allow_private = settings.allow_private_targets
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def post(
        self,
        url: str,
        body: bytes,
        timeout_s: float,
        classify: Classifier,
        headers: Mapping[str, str] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> Outcome:
        """POST ``body`` (JSON bytes) to ``url`` and classify what came back.

        The error text of the outcome never contains ``url`` (nor its path or
        query) or any of ``secrets`` (e.g. a routing key inside the body).
        """
        host = urlsplit(url).hostname or ""
        refused = await refused_host(host, self._allow_private)
        if refused is not None:
            return _redacted(refused, url, secrets)
        try:
            response = await self._bounded_post(url, body, timeout_s, headers)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            return _redacted(transport_outcome(error, url), url, secrets)
        return _redacted(classify(response), url, secrets)

    async def _bounded_post(
        self,
        url: str,
        body: bytes,
        timeout_s: float,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        """The response with at most MAX_RESPONSE_BYTES of its body read."""
        request = self._client.build_request(
            "POST",
            url,
            content=body,
            headers={"content-type": JSON_CONTENT_TYPE, **(headers or {})},
            timeout=httpx.Timeout(timeout_s),
        )
        response = await self._client.send(request, stream=True)
        try:
            content = await read_bounded(response)
        finally:
            await response.aclose()
        # Classifiers read .text and .json(); they get the bounded body, and
        # its headers minus those describing the body as sent (already decoded).
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in BODY_FRAMING_HEADERS
        ]
        return httpx.Response(
            response.status_code, headers=kept, content=content, request=request
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


async def read_bounded(response: httpx.Response) -> bytes:
    """At most MAX_RESPONSE_BYTES of a streamed response's body; the rest unread."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)[:MAX_RESPONSE_BYTES]


def transport_outcome(error: httpx.HTTPError | httpx.InvalidURL, url: str) -> Outcome:
    """The outcome of a request that got no HTTP response; never echoes ``url``."""
    text = redact(f"{type(error).__name__}: {error}", secret_values([url]))
    if isinstance(error, httpx.TimeoutException):
        return Outcome.retryable(Reason.TIMEOUT, text)
    if isinstance(error, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return Outcome.permanent(Reason.INVALID_CONFIG, "the target URL is not usable")
    if isinstance(error, httpx.NetworkError | httpx.ProtocolError | httpx.ProxyError):
        return Outcome.retryable(Reason.CONNECTION_ERROR, text)
    # Anything else from httpx (a body that does not decode) is ours to look at.
    return Outcome.retryable(Reason.INTERNAL_ERROR, text)


def _redacted(outcome: Outcome, url: str, secrets: tuple[str, ...]) -> Outcome:
    # Some vendors quote the request path (a token) or body in their errors.
    if not outcome.error:
        return outcome
    error = redact(outcome.error, secret_values([url, *secrets]))
    return dataclasses.replace(outcome, error=error)


def json_bytes(document: Any) -> bytes:
    """Compact UTF-8 JSON, the form whose size vendors limit."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def response_text(response: httpx.Response, max_chars: int = 1000) -> str:
    """The start of a response body as text, for error messages."""
    try:
        text = response.text
    except (UnicodeError, LookupError):
        # httpx decodes with the declared charset, and some codecs (UTF-16
        # without a BOM) raise even in replace mode; the answer still counts.
        text = response.content.decode("utf-8", errors="replace")
    return text[:max_chars].strip()
