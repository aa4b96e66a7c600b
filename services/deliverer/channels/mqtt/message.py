"""Building the MQTT publication for one delivery command: topic and payload.

The payload is JSON carrying the job id as ``id``: every attempt of a job
publishes the same id, so a subscriber can drop a duplicate (QoS 1 may deliver
twice, and a retried attempt may follow a publish whose PUBACK was lost).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.deliverer import templates

# MQTT 3.1.1 section 1.5.3: a topic is a UTF-8 string of at most 65535 bytes.
MAX_TOPIC_BYTES = 65_535

# Characters that would add topic levels or wildcards if a value carried them.
_TOPIC_UNSAFE = str.maketrans({"/": "_", "+": "_", "#": "_", "\x00": "_"})

PAYLOAD_VERSION = 1


class TopicError(ValueError):
    """A rendered topic that an MQTT broker would refuse."""


@dataclass(frozen=True)
class Publication:
    """What to publish: topic and the JSON payload bytes."""

    topic: str
    payload: bytes


def build_publication(
    command: dict[str, Any], topic_template: str, channel_name: str = ""
) -> Publication:
    """The publication of ``command``; raises TemplateError or TopicError."""
    context = templates.alert_context(command, channel_name)
    return Publication(render_topic(topic_template, context), payload(command))


def render_topic(topic_template: str, context: dict[str, Any]) -> str:
    """Render the topic with every substituted string made level-safe."""
    topic = templates.render(topic_template, _topic_safe(context)).strip()
    if not topic:
        raise TopicError("the topic template renders an empty topic")
    if topic.startswith("$"):
        raise TopicError("topics starting with $ are reserved for the broker")
    if any(char in topic for char in "+#\x00"):
        raise TopicError("a publish topic must not contain +, # or NUL")
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise TopicError(f"the topic is longer than {MAX_TOPIC_BYTES} bytes")
    return topic


def _topic_safe(value: Any) -> Any:
    if isinstance(value, str):
        return value.translate(_TOPIC_UNSAFE)
    if isinstance(value, templates.Labels):
        # Stays Labels, so a label the alert lacks still reads as empty text.
        return templates.Labels({k: _topic_safe(v) for k, v in value.items()})
    if isinstance(value, dict):
        return {key: _topic_safe(item) for key, item in value.items()}
    return value


def payload(command: dict[str, Any]) -> bytes:
    """The JSON payload: job identity and the alert event."""
    body = {
        "version": PAYLOAD_VERSION,
        "id": command["job_id"],
        "attempt": command["attempt"],
        "tenant_id": command["tenant_id"],
        "channel_id": command["channel_id"],
        "rule_id": command.get("rule_id"),
        "is_test": bool(command.get("is_test")),
        "alert": {key: _json_value(value) for key, value in command["alert"].items()},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)
    return value
