"""Services with a metrics port export their own consumer group's lag."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from switchboard.settings import Settings

SWITCHBOARD = str(Path(sys.executable).parent / "switchboard")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape_until(url: str, needle: str, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        try:
            text = httpx.get(url, timeout=2).text
        except httpx.TransportError:
            text = ""
        if needle in text:
            return text
        time.sleep(0.3)
    return text


def test_recorder_exports_the_lag_of_its_group(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "recorder.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [SWITCHBOARD, "recorder"],
            env={**os.environ, "SWITCHBOARD_METRICS_PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        text = scrape_until(
            f"http://127.0.0.1:{port}/metrics",
            'switchboard_consumer_lag{group="switchboard.recorder"',
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    lines = [
        line
        for line in text.splitlines()
        if line.startswith('switchboard_consumer_lag{group="switchboard.recorder"')
    ]
    partitions = {line.split('partition="')[1].split('"')[0] for line in lines}
    assert partitions == {str(p) for p in range(settings.topic_partitions)}, (
        log.read_text()
    )
    assert all(float(line.rsplit(" ", 1)[1]) >= 0 for line in lines)
