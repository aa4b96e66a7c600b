"""The demo's processes: its API port, a service that exits, and restarts.

Real ``switchboard api`` processes on the shared stack (without the relay, so
they publish nothing), killed with SIGKILL as a fault drill would.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.demo.processes import (
    Pipeline,
    ServiceExited,
    ServiceProcess,
    Supervisor,
    free_port,
)
from services.demo.run import choose_api_port
from switchboard.settings import Settings

START_TIMEOUT_S = 60.0


def test_the_api_port_setting_is_used_when_free() -> None:
    port = free_port()

    assert choose_api_port(port) == (port, None)


def test_a_taken_api_port_falls_back_and_says_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]

        chosen, note = choose_api_port(port)

    assert chosen != port
    assert note is not None
    assert str(port) in note and str(chosen) in note
    assert "SWITCHBOARD_API_PORT" in note


@pytest.fixture
def api_pipeline(settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """A pipeline of one service: an API without the relay."""
    environment = dict(os.environ)
    environment.update(
        {
            "SWITCHBOARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "SWITCHBOARD_DATABASE_URL": settings.database_url,
            "SWITCHBOARD_METRICS_PORT": "0",
        }
    )
    pipeline = Pipeline(tmp_path, environment, [])
    pipeline.services["api"] = ServiceProcess(
        "api",
        ["api", "--port", str(pipeline.api_port), "--no-relay"],
        environment,
        tmp_path / "api.log",
    ).start()
    try:
        pipeline.wait_for_api()
        yield pipeline
    finally:
        pipeline.stop()


def _wait_until_answers(pipeline: Pipeline) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{pipeline.api_url}/healthz", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("the restarted API did not answer")


def test_a_killed_service_is_named_with_its_log_in_one_line(
    api_pipeline: Pipeline,
) -> None:
    api_pipeline.services["api"].kill()

    with pytest.raises(ServiceExited) as exited:
        api_pipeline.check()

    message = str(exited.value)
    assert "\n" not in message
    assert "api" in message and "SIGKILL" in message
    assert str(api_pipeline.services["api"].log_path) in message


def test_the_supervisor_restarts_a_killed_service_and_says_so(
    api_pipeline: Pipeline,
) -> None:
    lines: list[str] = []
    supervisor = Supervisor(api_pipeline, lines.append)
    service = api_pipeline.services["api"]
    # As if it had been up for a while: a crash now and then restarts at once.
    service.started_at -= 60

    service.kill()
    supervisor.step()

    assert service.running
    assert len(lines) == 1
    assert "api was killed by SIGKILL; restarting it (log:" in lines[0]
    assert str(service.log_path) in lines[0]
    _wait_until_answers(api_pipeline)

    # Exiting again right after its start: restarted after a pause, not at once.
    service.kill()
    supervisor.step()
    assert not service.running
    assert "restarting it in 1s" in lines[1]
    time.sleep(1.1)
    supervisor.step()
    assert service.running
    assert len(lines) == 2
    assert supervisor.restarts == {"api": 2}
    _wait_until_answers(api_pipeline)
