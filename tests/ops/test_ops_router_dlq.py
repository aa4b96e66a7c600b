"""The router's dead letters: listed with their reason and what still decodes."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from services.ops.dlq import ROUTER_REPUBLISH_HINT
from services.router.app import (
    ERROR_CLASS_HEADER,
    ORIGINAL_BYTES_HEADER,
    REASON_HEADER,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER,
)
from switchboard.cli import app
from tests.ops.helpers import make_alert, make_command, produce


def router_headers(
    reason: str, error_class: str, offset: int, extra: list | None = None
) -> list[tuple[str, str]]:
    """Headers as the router writes them on a dead letter."""
    return [
        (REASON_HEADER, reason),
        (ERROR_CLASS_HEADER, error_class),
        (SOURCE_TOPIC_HEADER, "alerts"),
        (SOURCE_PARTITION_HEADER, "2"),
        (SOURCE_OFFSET_HEADER, str(offset)),
        *(extra or []),
    ]


@pytest.fixture
def router_dead_letters(settings, codec, make_topic):
    """A private router dead-letter topic holding four kinds of refused input."""
    topic = make_topic("routerdlq")
    alert = make_alert("tenant-r")
    command = make_command(str(uuid.uuid4()), str(uuid.uuid4()))
    produce(
        settings,
        topic,
        [
            (
                "tenant-r/a-json",
                b'{"tenant_id": "tenant-r", "summary": "[/x] sent as JSON"}',
                router_headers(
                    "not an Avro single-object encoded message",
                    "UnknownSchemaError",
                    17,
                ),
            ),
            (
                f"tenant-r/{alert['alert_id']}",
                codec.encode("AlertEvent", alert),
                router_headers(
                    "alert too large for a Kafka record", "AlertTooLarge", 18
                ),
            ),
            (
                "tenant-r/a-huge",
                None,
                router_headers(
                    "alert too large for a Kafka record",
                    "AlertTooLarge",
                    19,
                    [(ORIGINAL_BYTES_HEADER, "2000000")],
                ),
            ),
            (
                "tenant-q/a-command",
                codec.encode("DeliveryCommand", command),
                router_headers(
                    "expected a AlertEvent, got a DeliveryCommand v1",
                    "UnknownSchemaError",
                    20,
                ),
            ),
        ],
    )
    return topic, alert


def _cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_router_dead_letters_show_reason_source_and_what_decodes(router_dead_letters):
    topic, alert = router_dead_letters

    listed = json.loads(
        _cli("dlq", "list", "router", "--topic", topic, "--json").stdout
    )
    table = _cli("dlq", "list", "router", "--topic", topic).stdout

    assert listed["total"] == 4
    assert listed["republish"] == ROUTER_REPUBLISH_HINT
    items = {item["offset"]: item for item in listed["items"]}
    assert items[0]["key"] == "tenant-r/a-json"
    assert items[0]["reason"] == "not an Avro single-object encoded message"
    assert items[0]["error_class"] == "UnknownSchemaError"
    assert items[0]["source"] == "alerts[2]@17"
    assert items[0]["original"] == (
        '57 bytes, JSON, not Avro: {"tenant_id": "tenant-r", "summary": '
        '"[/x] sent as JSON"}'
    )
    assert items[1]["alert"]["alert_id"] == alert["alert_id"]
    assert items[1]["original"].startswith(f"AlertEvent tenant-r/{alert['alert_id']}")
    assert items[2]["original"].startswith("2000000 bytes, too large to keep")
    assert items[3]["original"] == (
        "Avro DeliveryCommand v1, does not decode as an AlertEvent"
    )
    # The table shows the same, and says how to publish the events again.
    assert "UnknownSchemaError: not an Avro single-object encoded message" in table
    assert "[/x] sent as JSON" in table
    assert "switchboard emit" in table


def test_router_dead_letters_filter_by_tenant_and_error_class(router_dead_letters):
    topic, _alert = router_dead_letters
    base = ("dlq", "list", "router", "--topic", topic, "--json")

    by_class = json.loads(_cli(*base, "--reason", "AlertTooLarge").stdout)
    by_tenant = json.loads(_cli(*base, "--tenant", "tenant-q").stdout)

    assert sorted(item["offset"] for item in by_class["items"]) == [1, 2]
    assert [item["offset"] for item in by_tenant["items"]] == [3]


def test_a_router_topic_read_as_a_channel_type_is_shown_as_the_routers(
    router_dead_letters,
):
    topic, _alert = router_dead_letters

    listed = json.loads(
        _cli("dlq", "list", "webhook", "--topic", topic, "--json").stdout
    )
    replay = CliRunner().invoke(
        app, ["dlq", "replay", "webhook", "--topic", topic, "--all"]
    )

    assert listed["total"] == 4
    assert {item["error_class"] for item in listed["items"]} == {
        "UnknownSchemaError",
        "AlertTooLarge",
    }
    assert replay.exit_code == 1
    assert "are not replayed" in replay.output


def test_router_dead_letters_are_not_replayed_and_say_how_to_republish(
    router_dead_letters,
):
    topic, _alert = router_dead_letters

    replay = CliRunner().invoke(app, ["dlq", "replay", "router", "--all"])
    by_job = CliRunner().invoke(
        app, ["dlq", "list", "router", "--topic", topic, "--job", str(uuid.uuid4())]
    )

    assert replay.exit_code == 1
    assert "publish the corrected events to the alerts topic again" in replay.output
    assert by_job.exit_code == 1
    assert "--job and --channel do not apply" in by_job.output
