"""Slack, Teams and PagerDuty senders: message building and sends per second.

For each channel type it measures, in one process:

- build: messages built per second for an ordinary alert, and the time to fit
  an alert with 2 MB of details into the vendor's limit;
- send: attempts per second through the real ``Sender`` to the local vendor
  receiver (which checks every request), with a fixed concurrency.

The receiver runs in a thread of the same process, so the send figure is a
floor for the sender, not a figure for the vendor.

Run: ``.venv/bin/python bench/vendor_senders.py [--sends 400]``. Needs no stack.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.deliverer.alert_view import alert_view  # noqa: E402
from services.deliverer.channels.base import ResolvedChannel  # noqa: E402
from services.deliverer.channels.pagerduty import config as pagerduty  # noqa: E402
from services.deliverer.channels.pagerduty.event import build_event  # noqa: E402
from services.deliverer.channels.pagerduty.sender import Sender as PagerDuty  # noqa: E402
from services.deliverer.channels.slack import config as slack  # noqa: E402
from services.deliverer.channels.slack.message import build_message as slack_message  # noqa: E402
from services.deliverer.channels.slack.sender import Sender as Slack  # noqa: E402
from services.deliverer.channels.teams import config as teams  # noqa: E402
from services.deliverer.channels.teams.card import build_message as teams_message  # noqa: E402
from services.deliverer.channels.teams.sender import Sender as Teams  # noqa: E402
from services.deliverer.outcome import OutcomeKind  # noqa: E402
from services.receivers.pagerduty import PagerDutyReceiver  # noqa: E402
from services.receivers.slack import SlackReceiver  # noqa: E402
from services.receivers.teams import TeamsReceiver  # noqa: E402
from switchboard.settings import Settings  # noqa: E402
from tests.deliverer.channels.vendor_channels import make_command  # noqa: E402

CONCURRENCY = 16
BUILDS = 2000
HUGE_DETAILS = "détails 🚨 " * 200_000  # about 2.4 MB of UTF-8


def _slack_build(command: dict[str, Any]) -> Any:
    alert = command["alert"]
    return slack_message(alert_view(command), alert["severity"], alert["kind"])


def _teams_build(command: dict[str, Any]) -> Any:
    alert = command["alert"]
    return teams_message(alert_view(command), alert["severity"], alert["kind"])


def _pagerduty_build(command: dict[str, Any]) -> Any:
    config = pagerduty.Config()
    return build_event(command["alert"], "k" * 32, command["alert"]["summary"], config)


def bench_build(name: str, build: Callable[[dict[str, Any]], Any]) -> None:
    """Print builds per second and the time to fit oversized details."""
    commands = [make_command(name) for _ in range(BUILDS)]
    started = time.perf_counter()
    for command in commands:
        build(command)
    rate = BUILDS / (time.perf_counter() - started)
    huge = make_command(name, details=HUGE_DETAILS)
    started = time.perf_counter()
    build(huge)
    fit_ms = (time.perf_counter() - started) * 1000
    print(f"{name:<10} build {rate:8.0f}/s   fit 2.4 MB details {fit_ms:6.1f} ms")


async def bench_send(name: str, sender: Any, channel_for: Callable, sends: int) -> None:
    """Print attempts per second through ``sender`` with fixed concurrency."""
    commands = [make_command(name) for _ in range(sends)]
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(command: dict[str, Any]) -> OutcomeKind:
        async with slots:
            return (await sender.send(command, channel_for(command))).kind

    started = time.perf_counter()
    kinds = await asyncio.gather(*(one(c) for c in commands))
    elapsed = time.perf_counter() - started
    delivered = sum(kind is OutcomeKind.DELIVERED for kind in kinds)
    print(f"{name:<10} send  {sends / elapsed:8.0f}/s   delivered {delivered}/{sends}")
    await sender.close()


def _channel(command: dict[str, Any], config: Any, secrets: Any) -> ResolvedChannel:
    return ResolvedChannel(
        command["channel_id"],
        command["tenant_id"],
        "bench",
        command["channel_type"],
        True,
        config,
        secrets,
    )


async def main(sends: int) -> None:
    """Run every measurement once."""
    settings = Settings(allow_private_targets=True)
    for name, build in (
        ("slack", _slack_build),
        ("teams", _teams_build),
        ("pagerduty", _pagerduty_build),
    ):
        bench_build(name, build)
    with SlackReceiver() as s, TeamsReceiver() as t, PagerDutyReceiver() as p:
        slack_config = (slack.Config(), slack.Secrets(webhook_url=s.webhook_url))
        teams_config = (teams.Config(), teams.Secrets(webhook_url=t.webhook_url))
        pd_config = (
            pagerduty.Config(events_url=p.events_url),
            pagerduty.Secrets(routing_key=p.routing_key),
        )
        await bench_send(
            "slack", Slack(settings), lambda c: _channel(c, *slack_config), sends
        )
        await bench_send(
            "teams", Teams(settings), lambda c: _channel(c, *teams_config), sends
        )
        await bench_send(
            "pagerduty", PagerDuty(settings), lambda c: _channel(c, *pd_config), sends
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=400)
    asyncio.run(main(parser.parse_args().sends))
