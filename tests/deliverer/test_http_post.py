"""Every httpx exception maps to one outcome, and never echoes the secret URL."""

from __future__ import annotations

import httpx
import pytest

from services.deliverer.http_post import response_text, transport_outcome
from services.deliverer.outcome import OutcomeKind, Reason

URL = "https://hooks.slack.com/services/T0001/B0001/s3cr3tT0ken?sig=abc123"
REQUEST = httpx.Request("POST", URL)

RETRYABLE, PERMANENT = OutcomeKind.RETRYABLE, OutcomeKind.PERMANENT


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (httpx.ConnectTimeout, RETRYABLE, Reason.TIMEOUT),
        (httpx.ReadTimeout, RETRYABLE, Reason.TIMEOUT),
        (httpx.WriteTimeout, RETRYABLE, Reason.TIMEOUT),
        (httpx.PoolTimeout, RETRYABLE, Reason.TIMEOUT),
        (httpx.ConnectError, RETRYABLE, Reason.CONNECTION_ERROR),
        (httpx.ReadError, RETRYABLE, Reason.CONNECTION_ERROR),
        (httpx.WriteError, RETRYABLE, Reason.CONNECTION_ERROR),
        (httpx.CloseError, RETRYABLE, Reason.CONNECTION_ERROR),
        (httpx.RemoteProtocolError, RETRYABLE, Reason.CONNECTION_ERROR),
        (httpx.LocalProtocolError, RETRYABLE, Reason.CONNECTION_ERROR),
        (httpx.ProxyError, RETRYABLE, Reason.CONNECTION_ERROR),
        (httpx.DecodingError, RETRYABLE, Reason.INTERNAL_ERROR),
        (httpx.TooManyRedirects, RETRYABLE, Reason.INTERNAL_ERROR),
        (httpx.UnsupportedProtocol, PERMANENT, Reason.INVALID_CONFIG),
    ],
)
def test_each_transport_error_maps_to_one_outcome_without_the_url(error, kind, reason):
    # Libraries put the URL into their messages; the outcome must not carry it.
    outcome = transport_outcome(error(f"failed for {URL}", request=REQUEST), URL)

    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert "s3cr3tT0ken" not in (outcome.error or "")
    assert "abc123" not in (outcome.error or "")


def test_invalid_url_is_permanent_configuration_error():
    outcome = transport_outcome(httpx.InvalidURL(f"bad {URL}"), URL)

    assert (outcome.kind, outcome.reason) == (PERMANENT, Reason.INVALID_CONFIG)
    assert "s3cr3tT0ken" not in outcome.error


def test_a_body_in_an_undecodable_charset_still_gives_error_text():
    response = httpx.Response(
        200, headers={"content-type": "text/plain; charset=utf-16"}, content=b"ok!"
    )

    assert response_text(response) == "ok!"
