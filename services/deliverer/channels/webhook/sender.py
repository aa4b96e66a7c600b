"""The generic webhook channel: a signed JSON POST per attempt.

Signed as the Standard Webhooks specification describes, with the
``standardwebhooks`` library: ``webhook-id`` is the job id (the same on every
attempt, so receivers can deduplicate), ``webhook-timestamp`` the time of this
attempt, ``webhook-signature`` the HMAC-SHA256 of ``id.timestamp.body``.

Redirects: 307 and 308 are followed once, with the same method, body and
signature headers; any other redirect is a permanent failure naming the status
and the Location. Everything else is classified by :func:`classify_http`.

Every request carries the channel's plain headers and its secret headers. The
deliverer removes secret values from error text; the sender also removes the
bare tokens of secret headers (a receiver refusing ``Bearer abc`` tends to quote
only ``abc``), which only the webhook channel knows how to find.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.webhook.config import credential_variants
from services.deliverer.channels.webhook.payload import build_payload, encode_payload
from services.deliverer.clients import ClientPool
from services.deliverer.http_post import read_bounded
from services.deliverer.outcome import Outcome, Reason, classify_http
from services.deliverer.redact import redact, secret_values
from services.deliverer.targets import check_target
from services.deliverer.text import truncate_chars
from switchboard.settings import Settings

# Of the response body read (see http_post.read_bounded), this much is kept for
# the attempt log.
MAX_RESPONSE_CHARS = 1000
FOLLOWED_REDIRECTS = frozenset({307, 308})
USER_AGENT = "Switchboard-Webhook/1"
# Connections per channel; the deliverer runs at most as many attempts at once.
CONNECTIONS_PER_CHANNEL = 16


@dataclass(frozen=True)
class Redirect:
    """A 307 or 308 answer: where the same request goes next."""

    status_code: int
    url: httpx.URL


class Sender:
    """Posts signed webhook payloads with one connection pool for the process."""

    def __init__(self, settings: Settings) -> None:
        """Prepare the per-channel HTTP clients, created on first use."""
        self._allow_private = settings.allow_private_targets
        self._clients = ClientPool(
            CONNECTIONS_PER_CHANNEL,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
        )
        self._signers: dict[str, Webhook] = {}

    async def send(self, command: dict[str, Any], channel: ResolvedChannel) -> Outcome:
        """POST the command's payload to the channel's URL and classify the answer."""
        body = encode_payload(build_payload(command))
        secret_headers = getattr(channel.secrets, "secret_headers", None) or {}
        headers = {
            **channel.config.headers,
            **secret_headers,
            **self._signature_headers(command["job_id"], body, channel.secrets),
            "content-type": "application/json",
        }
        url = httpx.URL(str(channel.config.url))
        async with self._clients.client(channel.id) as client:
            outcome = await self._post_following(client, url, body, headers, channel)
        return _without_credentials(outcome, secret_headers)

    async def _post_following(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        body: bytes,
        headers: dict[str, str],
        channel: ResolvedChannel,
    ) -> Outcome:
        timeout_s = channel.config.timeout_s
        outcome = await self._post(client, url, body, headers, timeout_s)
        if not isinstance(outcome, Redirect):
            return outcome
        followed = await self._post(client, outcome.url, body, headers, timeout_s)
        if isinstance(followed, Redirect):
            return Outcome.permanent(
                Reason.HTTP_REDIRECT,
                f"HTTP {followed.status_code} redirect to {followed.url} "
                "after a redirect already followed",
                followed.status_code,
            )
        return followed

    async def close(self) -> None:
        """Close every channel's connections."""
        await self._clients.close()

    def _signature_headers(
        self, job_id: str, body: bytes, secrets: Any
    ) -> dict[str, str]:
        secret = getattr(secrets, "signing_secret", None)
        signer = None
        if secret:
            signer = self._signers.get(secret)
            if signer is None:
                signer = self._signers[secret] = Webhook(secret)
        return signature_headers(signer, job_id, datetime.now(UTC), body)

    async def _post(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        body: bytes,
        headers: dict[str, str],
        timeout_s: float,
    ) -> Outcome | Redirect:
        """One request: its outcome, or the redirect to follow."""
        refused = await check_target(url, self._allow_private)
        if refused is not None:
            return refused
        try:
            request = client.build_request(
                "POST", url, content=body, headers=headers, timeout=timeout_s
            )
            response = await client.send(request, stream=True)
            try:
                text = await _bounded_body(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException as error:
            return Outcome.retryable(Reason.TIMEOUT, _describe(error))
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            return Outcome.permanent(Reason.INVALID_CONFIG, _describe(error))
        except httpx.HTTPError as error:
            return Outcome.retryable(Reason.CONNECTION_ERROR, _describe(error))
        location = response.headers.get("location")
        if response.status_code in FOLLOWED_REDIRECTS and location:
            return Redirect(response.status_code, response.url.join(location))
        return classify_http(response.status_code, response.headers, text)


def signature_headers(
    signer: Webhook | None, message_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers of one request; unsigned without a secret."""
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
    }
    if signer is not None:
        headers["webhook-signature"] = signer.sign(message_id, timestamp, body)
    return headers


async def _bounded_body(response: httpx.Response) -> str:
    raw = await read_bounded(response)
    text = raw.decode(response.encoding or "utf-8", errors="replace")
    return truncate_chars(text.strip(), MAX_RESPONSE_CHARS)


def _without_credentials(outcome: Outcome, secret_headers: dict[str, str]) -> Outcome:
    """``outcome`` with the secret headers' values and bare tokens removed."""
    if not outcome.error or not secret_headers:
        return outcome
    hidden = secret_values(
        [*secret_headers.values(), *credential_variants(secret_headers)]
    )
    error = redact(outcome.error, hidden)
    return outcome if error == outcome.error else replace(outcome, error=error)


def _describe(error: httpx.HTTPError) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
