"""Slack, Teams and PagerDuty read a bounded part of a response, however long."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.pagerduty.config import Config as PagerDutyConfig
from services.deliverer.channels.pagerduty.config import Secrets as PagerDutySecrets
from services.deliverer.channels.pagerduty.sender import Sender as PagerDutySender
from services.deliverer.channels.slack.config import Config as SlackConfig
from services.deliverer.channels.slack.config import Secrets as SlackSecrets
from services.deliverer.channels.slack.sender import Sender as SlackSender
from services.deliverer.channels.teams.config import Config as TeamsConfig
from services.deliverer.channels.teams.config import Secrets as TeamsSecrets
from services.deliverer.channels.teams.sender import Sender as TeamsSender
from services.deliverer.outcome import OutcomeKind, Reason
from tests.deliverer.channels.vendor_channels import (
    LOOPBACK_SETTINGS,
    make_command,
    resolved,
)

CHUNK = b"x" * 65_536
DEADLINE_S = 5.0
# Far less than the deadline: reading a bounded part takes milliseconds.
PROMPT_S = 2.0


class _EndlessAnswer(BaseHTTPRequestHandler):
    """Answers 500 with a body that goes on until the client hangs up."""

    def do_POST(self) -> None:  # noqa: N802 (the http.server naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(500)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        try:
            while True:
                self.wfile.write(CHUNK)
        except OSError:
            pass  # The client stopped reading and closed the connection.

    def log_message(self, *_args: Any) -> None:
        """Quiet: the test reads outcomes, not access logs."""


@pytest.fixture
def endless_url() -> Iterator[str]:
    """The URL of a local server whose error answers never end."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EndlessAnswer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _channel(channel_type: str, url: str, command: dict[str, Any]) -> ResolvedChannel:
    if channel_type == "slack":
        config, secrets = (
            SlackConfig(timeout_s=DEADLINE_S),
            SlackSecrets(webhook_url=url),
        )
    elif channel_type == "teams":
        config, secrets = (
            TeamsConfig(timeout_s=DEADLINE_S),
            TeamsSecrets(webhook_url=url),
        )
    else:
        config = PagerDutyConfig(events_url=url, timeout_s=DEADLINE_S)
        secrets = PagerDutySecrets(routing_key="R" * 32)
    return resolved(command, config, secrets)


SENDERS = {"slack": SlackSender, "teams": TeamsSender, "pagerduty": PagerDutySender}


@pytest.mark.parametrize("channel_type", sorted(SENDERS))
async def test_an_endless_error_body_is_cut_not_read_until_the_deadline(
    endless_url: str, channel_type: str
) -> None:
    sender = SENDERS[channel_type](LOOPBACK_SETTINGS)
    command = make_command(channel_type)
    started = time.monotonic()
    try:
        # Without a bound the read would only end at the deadline the
        # pipeline puts around a send, after holding everything read so far.
        async with asyncio.timeout(DEADLINE_S * 2):
            outcome = await sender.send(
                command, _channel(channel_type, endless_url, command)
            )
    finally:
        await sender.close()
    elapsed_s = time.monotonic() - started

    assert (outcome.kind, outcome.reason, outcome.status_code) == (
        OutcomeKind.RETRYABLE,
        Reason.HTTP_5XX,
        500,
    )
    assert elapsed_s < PROMPT_S
    assert len(outcome.error or "") <= 1100
