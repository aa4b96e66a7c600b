"""One local receiver per channel type, started together, with timed arrivals.

The receivers themselves live in :mod:`services.receivers`; this module starts
one of each, gives the channel bodies that point at them, and turns what they
received into :class:`Arrival` records (channel type, job id, receipt time), the
identity the demo and the end-to-end tests check against what the rules call
for. Slack, Teams and PagerDuty carry no job id of their own, so their channels
use a template that puts ``job=<id>`` into the text; PagerDuty's dedup key is
kept as well, since it must stay stable per alert.
"""

from __future__ import annotations

import asyncio
import email
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.receivers.mqtt import MqttRecorder, RecordedMessage
from services.receivers.pagerduty import PagerDutyReceiver
from services.receivers.slack import SlackReceiver
from services.receivers.smtp import SmtpReceiver
from services.receivers.snmp import TrapReceiver
from services.receivers.teams import TeamsReceiver
from services.receivers.vendor_http import Reply, Request
from services.receivers.webhook import WebhookReceiver
from switchboard.domain import ChannelType

CHANNEL_TYPES = tuple(str(t) for t in ChannelType)
JOB_TEMPLATE = "{{ summary }} job={{ job_id }}"
JOB_IN_TEXT = re.compile(
    r"job=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
EMAIL_MESSAGE_ID = re.compile(r"<([0-9a-f-]{36})\.switchboard@")
# Acknowledge and resolve carry no text, so no job id: only the dedup key and
# the action say which job they stand for.
PAGERDUTY_KINDS = {
    "trigger": "OPEN",
    "acknowledge": "ACKNOWLEDGED",
    "resolve": "CLOSED",
}
HOOK_PATH = "/hook"
PROBE_PATH = "/probe"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SNMP_COMMUNITY = "switchboard-demo"
# sysUpTime and snmpTrapOID lead every trap; the job id is the first alert object.
SNMP_JOB_VARBIND = 2
WATCH_INTERVAL_S = 0.02


@dataclass(frozen=True)
class Arrival:
    """One notification a receiver accepted."""

    channel_type: str
    job_id: str | None
    received_at: float
    dedup_key: str | None = None
    kind: str | None = None
    # The alert's event id where the payload carries it (webhook, MQTT), so a
    # job id on the wrong event's content is caught.
    event_id: str | None = None


@dataclass
class _Outage:
    """A receiver answering ``status`` to everything until ``until`` (monotonic)."""

    status: int = 503
    until: float = 0.0

    def active(self) -> bool:
        return time.monotonic() < self.until


class _TimedVendorMixin:
    """Stamps accepted requests and answers with an outage while one is on."""

    def _init_timing(self) -> None:
        self.stamped: list[tuple[float, bytes]] = []
        self.outage = _Outage()
        self.refused = 0

    def handle(self, request: Request) -> Reply:
        """Fail during an outage; else the vendor's answer, stamped if accepted."""
        if self.outage.active():
            self.refused += 1
            return self.error_reply(self.outage.status)  # type: ignore[attr-defined]
        reply = super().handle(request)  # type: ignore[misc]
        if 200 <= reply.status < 300:
            self.stamped.append((time.time(), request.body))
        return reply


class TimedSlack(_TimedVendorMixin, SlackReceiver):
    """The Slack receiver with receipt times and timed outages."""

    def __init__(self) -> None:
        super().__init__()
        self._init_timing()


class TimedTeams(_TimedVendorMixin, TeamsReceiver):
    """The Teams receiver with receipt times and timed outages."""

    def __init__(self) -> None:
        super().__init__()
        self._init_timing()


class TimedPagerDuty(_TimedVendorMixin, PagerDutyReceiver):
    """The PagerDuty receiver with receipt times and timed outages."""

    def __init__(self) -> None:
        super().__init__()
        self._init_timing()


class _StampedList(list):
    """A list that remembers when each item was appended."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:
        self.times.append(time.time())
        super().append(item)


class _TimedMqttRecorder(MqttRecorder):
    """The MQTT subscriber recorder, stamping each message on arrival."""

    def __init__(self, topic_filter: str, **options: Any) -> None:
        super().__init__(topic_filter, **options)
        self.messages = _StampedList()


@dataclass
class _MqttThread:
    """An MQTT subscriber recorder running on its own event loop thread."""

    topic_filter: str
    options: dict[str, Any]
    recorder: _TimedMqttRecorder | None = None
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _stop: asyncio.Event | None = None

    def start(self) -> None:
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        if not ready.wait(15):
            raise RuntimeError("MQTT subscriber did not connect")

    def _run(self, ready: threading.Event) -> None:
        self._loop.run_until_complete(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        async with _TimedMqttRecorder(self.topic_filter, **self.options) as recorder:
            self.recorder = recorder
            ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)


class _TrapWatcher:
    """Stamps snmptrapd's log records as they appear (it logs no receipt time)."""

    def __init__(self, receiver: TrapReceiver) -> None:
        self.receiver = receiver
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            count = len(self.receiver.traps())
            while len(self.times) < count:
                self.times.append(time.time())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class Receivers:
    """A receiver for each of the seven channel types, on loopback."""

    def __init__(
        self, work_dir: Path, mqtt_host: str, mqtt_port: int, tag: str
    ) -> None:
        """``tag`` keeps this run's MQTT topics apart from anyone else's."""
        self.tag = tag
        self.slack = TimedSlack()
        self.teams = TimedTeams()
        self.pagerduty = TimedPagerDuty()
        self.webhook = WebhookReceiver(SIGNING_SECRET)
        self.smtp = SmtpReceiver()
        self.smtp.handler.messages = _StampedList()
        self.snmp = TrapReceiver(work_dir / "snmptrapd", communities=(SNMP_COMMUNITY,))
        self._traps = _TrapWatcher(self.snmp)
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self._mqtt = _MqttThread(
            f"switchboard-demo/{tag}/#", {"hostname": mqtt_host, "port": mqtt_port}
        )

    def start(self) -> Receivers:
        """Start every receiver; returns once all listen."""
        for receiver in (self.slack, self.teams, self.pagerduty, self.webhook):
            receiver.start()
        self.smtp.start()
        self.snmp.start()
        self._traps.start()
        self._mqtt.start()
        return self

    def stop(self) -> None:
        """Stop every receiver (safe to call twice)."""
        self._mqtt.stop()
        self._traps.stop()
        for receiver in (self.slack, self.teams, self.pagerduty, self.webhook):
            receiver.stop()
        for stoppable in (self.smtp, self.snmp):
            try:
                stoppable.stop()
            except RuntimeError:
                pass

    def __enter__(self) -> Receivers:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        """Stop on leaving the block."""
        self.stop()

    def outage(self, channel_type: str, seconds: float, status: int = 503) -> None:
        """Make an HTTP vendor receiver refuse everything for ``seconds``."""
        vendors = {
            "slack": self.slack,
            "teams": self.teams,
            "pagerduty": self.pagerduty,
        }
        if channel_type not in vendors:
            raise ValueError(
                f"an outage needs an HTTP vendor receiver ({', '.join(vendors)}), "
                f"not {channel_type}"
            )
        vendors[channel_type].outage = _Outage(status, time.monotonic() + seconds)

    def addresses(self) -> dict[str, str]:
        """Where each receiver listens, for people to look at."""
        return {
            "slack": self.slack.base_url,
            "teams": self.teams.base_url,
            "pagerduty": self.pagerduty.base_url,
            "webhook": self.webhook.url(HOOK_PATH),
            "email": f"smtp://127.0.0.1:{self.smtp.port}",
            "snmp": f"udp://127.0.0.1:{self.snmp.port} (log {self.snmp.log_file})",
            "mqtt": f"mqtt://{self.mqtt_host}:{self.mqtt_port}"
            f" topic switchboard-demo/{self.tag}/#",
        }

    def channel_bodies(self, name_prefix: str = "Demo") -> dict[str, dict[str, Any]]:
        """The API body of one channel per type, pointing at these receivers."""
        return {
            "slack": _body(
                "slack",
                name_prefix,
                {"template": JOB_TEMPLATE},
                {"webhook_url": self.slack.webhook_url},
            ),
            "teams": _body(
                "teams",
                name_prefix,
                {"template": JOB_TEMPLATE},
                {"webhook_url": self.teams.webhook_url},
            ),
            "pagerduty": _body(
                "pagerduty",
                name_prefix,
                {"events_url": self.pagerduty.events_url, "template": JOB_TEMPLATE},
                {"routing_key": self.pagerduty.routing_key},
            ),
            "webhook": _body(
                "webhook",
                name_prefix,
                {"url": self.webhook.url(HOOK_PATH)},
                {"signing_secret": SIGNING_SECRET},
            ),
            "email": _body("email", name_prefix, self._email_config(), {}),
            "snmp": _body(
                "snmp",
                name_prefix,
                {"host": "127.0.0.1", "port": self.snmp.port, "version": "v2c"},
                {"community": SNMP_COMMUNITY},
            ),
            "mqtt": _body("mqtt", name_prefix, self._mqtt_config(), {}),
        }

    def _email_config(self) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.smtp.port,
            "security": "none",
            "from_address": "switchboard@demo.example.com",
            "to": ["noc@demo.example.com"],
        }

    def _mqtt_config(self) -> dict[str, Any]:
        return {
            "host": self.mqtt_host,
            "port": self.mqtt_port,
            "qos": 1,
            "topic_template": f"switchboard-demo/{self.tag}/{{{{ severity }}}}",
        }

    def arrivals(self) -> list[Arrival]:
        """Every notification accepted so far, by every receiver.

        The webhook receiver answers as planned (:meth:`WebhookReceiver.plan`)
        and does not keep the status it answered, so with a plan of failures
        its failed requests count here too.
        """
        found: list[Arrival] = []
        found += _vendor_arrivals("slack", self.slack.stamped)
        found += _vendor_arrivals("teams", self.teams.stamped)
        found += _pagerduty_arrivals(self.pagerduty.stamped)
        found += [
            Arrival("webhook", r.webhook_id, r.received_at, event_id=_event_id(r.body))
            for r in self.webhook.received(HOOK_PATH)
            if r.signature_valid
        ]
        found += self._email_arrivals()
        found += self._snmp_arrivals()
        found += self._mqtt_arrivals()
        return found

    def _email_arrivals(self) -> list[Arrival]:
        messages = self.smtp.handler.messages
        return [
            Arrival("email", _email_job(message.data), stamp)
            for message, stamp in zip(
                list(messages), list(messages.times), strict=False
            )
        ]

    def _snmp_arrivals(self) -> list[Arrival]:
        traps, times = self.snmp.traps(), list(self._traps.times)
        return [
            Arrival("snmp", _trap_job(trap), stamp)
            for trap, stamp in zip(traps, times, strict=False)
        ]

    def _mqtt_arrivals(self) -> list[Arrival]:
        recorder = self._mqtt.recorder
        if recorder is None:
            return []
        messages: list[RecordedMessage] = list(recorder.messages)
        return [
            Arrival(
                "mqtt",
                _mqtt_job(message.payload),
                stamp,
                event_id=_event_id(message.payload),
            )
            for message, stamp in zip(
                messages, list(recorder.messages.times), strict=False
            )
        ]


def _body(
    channel_type: str, prefix: str, config: dict[str, Any], secrets: dict[str, Any]
) -> dict[str, Any]:
    return {
        "channel_type": channel_type,
        "name": f"{prefix} {channel_type}",
        "config": config,
        "secrets": secrets,
    }


def _vendor_arrivals(
    channel_type: str, stamped: list[tuple[float, bytes]]
) -> list[Arrival]:
    return [
        Arrival(channel_type, _job_in_text(body), stamp)
        for stamp, body in list(stamped)
    ]


def _pagerduty_arrivals(stamped: list[tuple[float, bytes]]) -> list[Arrival]:
    found = []
    for stamp, body in list(stamped):
        event = json.loads(body)
        kind = PAGERDUTY_KINDS.get(event.get("event_action"))
        found.append(
            Arrival(
                "pagerduty", _job_in_text(body), stamp, event.get("dedup_key"), kind
            )
        )
    return found


def _job_in_text(body: bytes) -> str | None:
    match = JOB_IN_TEXT.search(body.decode("utf-8", errors="replace"))
    return match.group(1) if match else None


def _email_job(data: bytes) -> str | None:
    message_id = str(email.message_from_bytes(data).get("Message-ID", ""))
    match = EMAIL_MESSAGE_ID.search(message_id)
    return match.group(1) if match else None


def _trap_job(trap: Any) -> str | None:
    if len(trap.varbinds) <= SNMP_JOB_VARBIND:
        return None
    return trap.varbinds[SNMP_JOB_VARBIND].text


def _mqtt_job(payload: bytes) -> str | None:
    try:
        return json.loads(payload).get("id")
    except ValueError:
        return None


def _event_id(body: bytes) -> str | None:
    """The ``alert.event_id`` of a JSON body, or None."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    alert = document.get("alert") if isinstance(document, dict) else None
    return alert.get("event_id") if isinstance(alert, dict) else None
