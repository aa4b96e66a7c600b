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
from switchboard.secrets import SecretBox
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
    pid = int(mosquitto.pid_file.read_text().split()[0])

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


def test_a_pid_file_naming_a_reused_pid_never_stops_that_process(
    tmp_path: Path,
) -> None:
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    settings = Settings(state_dir=tmp_path, mqtt_port=free_port())
    mosquitto = stack.MosquittoComponent(settings)
    mosquitto.home.mkdir(parents=True)
    # What a pid file left by a crash looks like once its pid went to another
    # process: the pid matches, the recorded start time does not.
    mosquitto.pid_file.write_text(f"{stranger.pid} 1")
    try:
        outcome = mosquitto.down()
        alive = stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()

    assert outcome == "not running"
    assert alive
    assert not mosquitto.pid_file.exists()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[stack.PostgresComponent]:
    """A PostgreSQL cluster of this test's own, on a free port; stopped afterwards."""
    url = f"postgresql://switchboard:right@127.0.0.1:{free_port()}/switchboard"
    postgres = stack.PostgresComponent(Settings(state_dir=tmp_path, database_url=url))
    postgres.up()
    yield postgres
    postgres.down()


def test_a_changed_password_is_one_clear_error_and_the_server_keeps_running(
    private_postgres: stack.PostgresComponent, tmp_path: Path
) -> None:
    running_pid = private_postgres.status().pid
    url = private_postgres.settings.database_url.replace(":right@", ":wrong@")
    changed = stack.PostgresComponent(Settings(state_dir=tmp_path, database_url=url))

    with pytest.raises(stack.StackError, match="could not create database") as error:
        changed.up()

    assert "password authentication failed" in str(error.value).splitlines()[0]
    assert private_postgres.status().pid == running_pid
    assert private_postgres.answers()


def test_a_server_that_will_not_start_is_one_clear_error(
    private_postgres: stack.PostgresComponent,
) -> None:
    private_postgres.down()
    config = private_postgres.data_dir / "postgresql.conf"
    config.write_text(config.read_text() + "\nshared_buffers = banana\n")

    with pytest.raises(stack.StackError, match="did not start") as error:
        private_postgres.up()

    assert str(private_postgres.log_file) in str(error.value).splitlines()[0]
    assert "banana" in str(error.value)


def test_a_port_conflict_starts_nothing(tmp_path: Path, occupied_port: int) -> None:
    kafka_port, mqtt_port = free_port(), free_port()
    settings = Settings(
        state_dir=tmp_path,
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        mqtt_port=mqtt_port,
        database_url=f"postgresql://switchboard:pw@127.0.0.1:{occupied_port}/sb",
    )
    reported: list[tuple[str, str]] = []

    with pytest.raises(stack.StackError) as refused:
        stack.up(
            settings, report=lambda name, outcome: reported.append((name, outcome))
        )

    message = str(refused.value)
    assert message.startswith(f"postgres: port {occupied_port} is in use")
    assert message.endswith("(nothing was started)")
    assert reported == []
    assert not stack.KafkaComponent(settings).pid_file.exists()
    assert not stack.port_answers("127.0.0.1", kafka_port)
    assert not stack.MosquittoComponent(settings).answers()


def test_every_port_conflict_is_named_at_once(tmp_path: Path) -> None:
    with socket.socket() as kafka_taker, socket.socket() as mqtt_taker:
        for taker in (kafka_taker, mqtt_taker):
            taker.bind(("127.0.0.1", free_port()))
            taker.listen()
        kafka_port = kafka_taker.getsockname()[1]
        mqtt_port = mqtt_taker.getsockname()[1]
        result = run_cli(
            "stack",
            "up",
            env={
                "SWITCHBOARD_STATE_DIR": str(tmp_path),
                "SWITCHBOARD_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
                "SWITCHBOARD_MQTT_PORT": str(mqtt_port),
                "SWITCHBOARD_DATABASE_URL": (
                    f"postgresql://switchboard:pw@127.0.0.1:{free_port()}/sb"
                ),
            },
        )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: 2 problems, so nothing was started")
    assert f"kafka: port {kafka_port} is in use" in result.stderr
    assert f"mosquitto: port {mqtt_port} is in use" in result.stderr
    assert "started" not in result.stdout
    assert not (tmp_path / "postgres" / "data").exists()


@pytest.mark.parametrize("own_key", [False, True], ids=["development", "own"])
def test_status_warns_once_about_the_development_key(
    settings: Settings, tmp_path: Path, own_key: bool
) -> None:
    env = {"SWITCHBOARD_STATE_DIR": str(tmp_path)}
    if own_key:
        env["SWITCHBOARD_SECRET_KEY"] = SecretBox.generate_key()

    result = run_cli("stack", "status", env=env)

    warnings = [
        line for line in result.stderr.splitlines() if "development secret key" in line
    ]
    assert len(warnings) == (0 if own_key else 1)


def test_first_error_finds_the_cause_among_this_runs_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("[t] ERROR an old run's failure\n")
    since = log.stat().st_size
    with log.open("a") as more:
        more.write("[t] INFO starting\n")
        more.write("[t] ERROR Socket server failed to bind to 127.0.0.1:39092\n")
        more.write("[t] ERROR shutdown noise\n")

    assert stack.first_error(log, since) == (
        ": [t] ERROR Socket server failed to bind to 127.0.0.1:39092"
    )
    assert stack.first_error(tmp_path / "missing.log") == ""


def test_cluster_ids_never_start_with_a_dash() -> None:
    """One id in 64 would otherwise be read as an option by Kafka's storage tool."""
    cluster_ids = [stack._new_cluster_id() for _ in range(5000)]

    assert not any(cluster_id.startswith("-") for cluster_id in cluster_ids)
    assert all(len(cluster_id) == 22 for cluster_id in cluster_ids)
    assert len(set(cluster_ids)) == len(cluster_ids)
