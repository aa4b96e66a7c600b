"""Kafka or PostgreSQL down, or a database not migrated: one clear line, exit 1.

Every command runs as its own process, as an operator starts it, with one
address pointing at a port nothing listens on (or at an empty database); the
other address is the shared stack's, which these commands only read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from switchboard.settings import database_address

SWITCHBOARD = str(Path(sys.executable).parent / "switchboard")
PASSWORD = "pw-never-printed"


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SWITCHBOARD, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "SWITCHBOARD_STACK_COMPONENTS": "", **env},
        timeout=120,
    )


def _assert_one_clear_line(result: subprocess.CompletedProcess, start: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {start}"), result.stderr


KAFKA_COMMANDS = [
    ["topics", "create"],
    ["dlq", "list", "webhook"],
    ["dlq", "replay", "webhook", "--all", "--dry-run"],
    ["groups"],
]


@pytest.mark.parametrize("args", KAFKA_COMMANDS, ids=" ".join)
def test_kafka_down_is_one_line_naming_its_address(settings, args):
    address = f"127.0.0.1:{_unused_port()}"

    result = _run(args, {"SWITCHBOARD_KAFKA_BOOTSTRAP": address})

    _assert_one_clear_line(result, f"kafka at {address} does not answer")
    assert "switchboard stack status" in result.stderr


DATABASE_COMMANDS = [
    ["migrate"],
    ["dlq", "list", "webhook"],
    ["dlq", "replay", "webhook", "--all", "--dry-run"],
    ["jobs", "retry", "--all", "--dry-run"],
    ["secrets", "rotate", "--dry-run"],
    ["tenant", "create", "never-created"],
    ["tenant", "revoke", "sbk_00000000"],
    ["recorder"],
    ["relay"],
    ["api", "--port", "1"],
]


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_database_down_is_one_line_naming_its_address(settings, args):
    port = _unused_port()
    url = f"postgresql://switchboard:{PASSWORD}@127.0.0.1:{port}/switchboard"

    result = _run(args, {"SWITCHBOARD_DATABASE_URL": url})

    _assert_one_clear_line(
        result, f"postgres at 127.0.0.1:{port}/switchboard: cannot connect"
    )
    assert "SWITCHBOARD_DATABASE_URL" in result.stderr


UNMIGRATED_COMMANDS = [
    ["dlq", "list", "webhook"],
    ["jobs", "retry", "--all", "--dry-run"],
    ["secrets", "rotate", "--dry-run"],
    ["tenant", "create", "never-created"],
    ["recorder"],
    ["relay"],
    ["api", "--port", "1"],
]


@pytest.mark.parametrize("args", UNMIGRATED_COMMANDS, ids=" ".join)
def test_a_database_not_migrated_says_to_migrate(settings, scratch_database, args):
    result = _run(args, {"SWITCHBOARD_DATABASE_URL": scratch_database})

    _assert_one_clear_line(
        result, f"postgres at {database_address(scratch_database)}: "
    )
    assert "not migrated" in result.stderr
    assert "run `switchboard migrate`" in result.stderr
