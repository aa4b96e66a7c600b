"""The local stack: idempotent start, status, clean-up after a crash, clear errors.

Error paths run against a private state folder and free ports, so the shared
stack the rest of the suite uses is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard import stack
from switchboard.settings import Settings

SWITCHBOARD = str(Path(sys.executable).parent / "switchboard")


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A loopback port some other process is listening on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def free_port() -> int:
    """A free loopback port whose next port is free too (components use both)."""
    while True:
        with socket.socket() as probe, socket.socket() as neighbour:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            try:
                neighbour.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SWITCHBOARD, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=180,
    )


def test_up_twice_is_harmless_and_status_shows_every_component(
    settings: Settings,
) -> None:
    again = run_cli("stack", "up")
    status = run_cli("stack", "status")

    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already running") == 3
    assert status.returncode == 0
    for name in ("kafka", "postgres", "mosquitto"):
        assert name in status.stdout
    assert all(item.answers for item in stack.status(settings))


def test_kafka_port_taken_is_one_clear_error(
    tmp_path: Path, occupied_port: int
) -> None:
    settings = Settings(
        state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{occupied_port}"
    )

    with pytest.raises(stack.StackError, match=f"port {occupied_port} is in use"):
        stack.KafkaComponent(settings).up()


def test_missing_java_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = Settings(state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{free_port()}")

    with pytest.raises(stack.StackError, match="`java` not found"):
        stack.KafkaComponent(settings).up()


def test_maven_failure_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local repository path under a regular file cannot be created.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("MAVEN_OPTS", f"-Dmaven.repo.local={blocker}/repository")
    settings = Settings(state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{free_port()}")

    with pytest.raises(stack.StackError, match="Maven could not resolve"):
        stack.KafkaComponent(settings).up()


def test_postgres_port_taken_is_one_clear_error(
    tmp_path: Path, occupied_port: int
) -> None:
    settings = Settings(
        state_dir=tmp_path,
        database_url=f"postgresql://switchboard:pw@127.0.0.1:{occupied_port}/switchboard",
    )

    with pytest.raises(stack.StackError, match=f"port {occupied_port} is in use"):
        stack.PostgresComponent(settings).up()


def test_cli_reports_failure_in_one_line_and_exits_non_zero(occupied_port: int) -> None:
    result = run_cli(
        "stack",
        "up",
        env={
            "SWITCHBOARD_STACK_COMPONENTS": "mosquitto",
            "SWITCHBOARD_MQTT_PORT": str(occupied_port),
            "SWITCHBOARD_STATE_DIR": "/tmp/switchboard-test-unused",
        },
    )

    assert result.returncode == 1
    assert result.stderr.startswith(f"error: mosquitto: port {occupied_port} is in use")
    assert "external, answers" in result.stdout


def test_down_after_a_crash_cleans_up_and_up_works_again(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, mqtt_port=free_port())
    mosquitto = stack.MosquittoComponent(settings)
    mosquitto.up()
    pid = int(mosquitto.pid_file.read_text())

    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)  # this test process started the broker, so it reaps it
    crashed = mosquitto.status()
    mosquitto.down()

    assert crashed.pid is None and not crashed.answers
    assert not mosquitto.pid_file.exists()
    assert mosquitto.up().startswith("started")
    assert mosquitto.down() == "stopped"
    assert not mosquitto.answers()


def test_status_exits_non_zero_when_a_component_does_not_answer(tmp_path: Path) -> None:
    result = run_cli(
        "stack",
        "status",
        env={
            "SWITCHBOARD_STATE_DIR": str(tmp_path),
            "SWITCHBOARD_MQTT_PORT": str(free_port()),
        },
    )

    assert result.returncode == 1
    assert "mosquitto" in result.stdout
