"""Every library logger goes through the one root configuration of switchboard.logs.

A process set up for JSON logs must write nothing else to stderr: not aiomqtt's
bare warnings, not uvicorn's or librdkafka's own formats, not Python warnings
or a thread's traceback.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.logs import LIBRARY_LOGGERS, ROOT_LOGGERS, configure_logging
from switchboard.settings import Settings

PENDING = "There are %d pending publish calls."

# Real libraries against the real stack: aiomqtt publishing more at once than
# its warning threshold, uvicorn behind the webhook receiver and httpx calling
# it, a Kafka producer (and librdkafka's own log) whose broker is not there.
SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, socket, sys, threading, time, warnings
    import aiomqtt, httpx
    from services.receivers.webhook import WebhookReceiver
    from switchboard.kafka import make_producer
    from switchboard.logs import configure_logging
    from switchboard.settings import Settings

    configure_logging("INFO", "json")
    settings = Settings()

    async def publish() -> None:
        async with aiomqtt.Client(settings.mqtt_host, settings.mqtt_port) as client:
            await asyncio.gather(
                *(client.publish(sys.argv[1], b"x", qos=1) for _ in range(40))
            )

    asyncio.run(publish())

    receiver = WebhookReceiver("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    receiver.start()
    httpx.post(receiver.url("/hook"), content=b"{}")
    receiver.stop()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    producer = make_producer(down, log_level=3)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        producer.poll(0.2)

    logging.getLogger("pysnmp").info("library chatter")
    logging.getLogger("pysnmp").warning("library warning")
    warnings.warn("a python warning", UserWarning, stacklevel=1)
    crash = threading.Thread(target=lambda: 1 / 0, name="crashing")
    crash.start()
    crash.join()
    logging.getLogger("services.demo").info("our line", extra={"n": 1})
    """
)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the process's logging back as it was after a test configures it."""
    root = logging.getLogger()
    names = (*ROOT_LOGGERS, *LIBRARY_LOGGERS)
    saved = {
        name: (
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
            list(logging.getLogger(name).handlers),
            list(logging.getLogger(name).filters),
        )
        for name in names
    }
    root_state = (root.level, list(root.handlers))
    excepthook = threading.excepthook
    yield
    threading.excepthook = excepthook
    logging.captureWarnings(False)
    root.setLevel(root_state[0])
    root.handlers = root_state[1]
    for name, (level, propagate, handlers, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers = handlers
        logger.filters = filters


def test_a_json_process_writes_only_json_lines(
    settings: Settings, tmp_path: Path, unique: str
) -> None:
    script = tmp_path / "libraries.py"
    script.write_text(SCRIPT)

    done = subprocess.run(
        [sys.executable, str(script), f"switchboard-test/{unique}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    messages = {r["message"] for r in records}
    assert "our line" in messages
    assert "library warning" in messages
    assert "kafka client error" in messages
    assert "librdkafka log" in messages
    assert any("a python warning" in m for m in messages)
    crash = next(r for r in records if r["message"] == "uncaught exception in thread")
    assert (
        crash["in_thread"] == "crashing" and "ZeroDivisionError" in crash["exception"]
    )
    assert "library chatter" not in messages
    assert not [m for m in messages if "pending publish" in m]
    assert all(r["level"] != "INFO" or r["logger"] == "services.demo" for r in records)


def test_pending_publish_calls_are_debug(
    restored_logging: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Normal flow under load: hidden at INFO, a DEBUG line at DEBUG."""
    caplog.handler.setLevel(logging.DEBUG)  # pytest's own capture sees it all
    configure_logging("INFO", "json")
    logging.getLogger("mqtt").warning(PENDING, 16)
    logging.getLogger("mqtt").warning("Message queue is full. Discarding message.")

    assert [r.levelname for r in caplog.records] == ["DEBUG", "WARNING"]
    shown = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [r["message"] for r in shown] == [
        "Message queue is full. Discarding message."
    ]

    configure_logging("DEBUG", "json")
    logging.getLogger("mqtt").warning(PENDING, 16)

    shown = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["level"], r["message"]) for r in shown] == [
        ("DEBUG", "There are 16 pending publish calls.")
    ]


def test_configuring_twice_keeps_one_handler_and_others_handlers(
    restored_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    root = logging.getLogger()
    before = list(root.handlers)

    configure_logging("INFO", "text")
    configure_logging("DEBUG", "json")

    added = [h for h in root.handlers if h not in before]
    assert len(added) == 1
    assert all(h in root.handlers for h in before)  # pytest's capture stays
    assert logging.getLogger("switchboard").getEffectiveLevel() == logging.DEBUG
    # Library loggers stay at WARNING even at DEBUG: httpx logs tokened URLs.
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("some.other.library").getEffectiveLevel() == (
        logging.WARNING
    )
